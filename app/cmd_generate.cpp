// Hidden subcommands for packaging and shell completion (left out of --help, the man page and the completions):
//   vit __generate man|bash|zsh   writes the man page / a completion script generated from the CLI definition
//   vit __models                  prints the model names --model accepts: built-in, then Hugging Face cache
#include <algorithm>
#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "docgen.hpp"
#include "hub.hpp"

namespace vit::app {

namespace fs = std::filesystem;

namespace {

// Built-in names, then the repo ids in the Hugging Face hub cache (found as huggingface_hub finds it).
int list_model_names() {
    for (const auto& [name, dir] : builtin_models()) std::cout << name << "\n";
    std::vector<std::string> cached;
    std::error_code ec;
    // models--ORG--NAME -> ORG/NAME (hub repo ids cannot contain "--", so the first one separates them).
    for (fs::directory_iterator it(hub::Settings::from_env().cache_dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string d = it->path().filename().string();
        const std::string prefix = "models--";
        if (d.rfind(prefix, 0) != 0 || !fs::is_directory(it->path() / "snapshots", ec)) continue;
        std::string id = d.substr(prefix.size());
        if (const auto sep = id.find("--"); sep != std::string::npos) id.replace(sep, 2, "/");
        cached.push_back(id);
    }
    std::sort(cached.begin(), cached.end());
    for (const auto& n : cached) std::cout << n << "\n";
    return kOk;
}

}  // namespace

void setup_generate(CLI::App& app, std::function<int()>& run, const std::string& version) {
    auto what = std::make_shared<std::string>();
    auto* gen = app.add_subcommand("__generate", "Write the man page or a shell completion script to stdout");
    gen->group("");  // hidden
    gen->add_option("what", *what, "man, bash or zsh")->required()->check(CLI::IsMember({"man", "bash", "zsh"}));
    gen->callback([&app, what, version, &run] {
        run = [&app, what, version] {
            std::cout << (*what == "man"    ? man_page(app, version)
                          : *what == "bash" ? bash_completion(app)
                                            : zsh_completion(app));
            return std::cout.flush() ? kOk : kFatal;
        };
    });
    auto* models = app.add_subcommand("__models", "Print the model names --model accepts");
    models->group("");
    models->callback([&run] { run = list_model_names; });
}

}  // namespace vit::app
