// Hidden subcommands for packaging and shell completion (left out of --help, the man page and the completions):
//   vit __generate man|bash|zsh   writes the man page / a completion script generated from the CLI definition
//   vit __models                  prints the model names --model accepts: built-in, then Hugging Face cache
#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "docgen.hpp"

namespace vit::app {

namespace fs = std::filesystem;

namespace {

// The Hugging Face hub cache, as huggingface_hub finds it: $HF_HUB_CACHE, $HF_HOME/hub,
// $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub.
fs::path hf_hub_cache() {
    auto env = [](const char* name) -> std::string { const char* v = std::getenv(name); return v && *v ? v : ""; };
    if (const auto v = env("HF_HUB_CACHE"); !v.empty()) return v;
    if (const auto v = env("HF_HOME"); !v.empty()) return fs::path(v) / "hub";
    if (const auto v = env("XDG_CACHE_HOME"); !v.empty()) return fs::path(v) / "huggingface/hub";
    return fs::path(env("HOME")) / ".cache/huggingface/hub";
}

int list_model_names() {
    std::vector<std::string> builtin, cached;
    std::error_code ec;
    for (fs::directory_iterator it(builtin_models_dir(), ec), end; !ec && it != end; it.increment(ec))
        if (fs::exists(it->path() / "config.json", ec)) builtin.push_back(it->path().filename().string());
    // models--ORG--NAME -> ORG/NAME (hub repo ids cannot contain "--", so the first one separates them).
    for (fs::directory_iterator it(hf_hub_cache(), ec), end; !ec && it != end; it.increment(ec)) {
        const std::string d = it->path().filename().string();
        const std::string prefix = "models--";
        if (d.rfind(prefix, 0) != 0 || !fs::is_directory(it->path() / "snapshots", ec)) continue;
        std::string id = d.substr(prefix.size());
        if (const auto sep = id.find("--"); sep != std::string::npos) id.replace(sep, 2, "/");
        cached.push_back(id);
    }
    std::sort(builtin.begin(), builtin.end());
    std::sort(cached.begin(), cached.end());
    for (const auto& n : builtin) std::cout << n << "\n";
    for (const auto& n : cached) std::cout << n << "\n";
    return kOk;
}

}  // namespace

void setup_generate(CLI::App& app, std::function<int()>& run, const std::string& version) {
    auto what = std::make_shared<std::string>();
    auto* gen = app.add_subcommand("__generate", "Write the man page or a shell completion script to stdout");
    gen->group("");   // hidden
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
