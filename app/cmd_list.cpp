// `vit list`: the built-in models and the models in the Hub cache, with family, size and revision.
#include <fstream>
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "hub.hpp"
#include "progress.hpp"

namespace vit::app {

namespace fs = std::filesystem;

namespace {

struct ListOptions {
    std::string format = "text";
};

struct Entry {
    std::string name, source, family, commit;
    std::vector<std::string> refs;
    fs::path dir;
    std::int64_t size = 0;
    bool complete = true;
};

// What a directory's config.json says the model is: the project's own format, a transformers model_type, or a
// timm architecture.
std::string model_family(const fs::path& dir) {
    std::ifstream in(dir / "config.json");
    if (!in) return "unknown (no config.json)";
    try {
        const nlohmann::json j = nlohmann::json::parse(in);
        if (j.contains("model") && j["model"].is_object()) return "vit (project config)";
        if (j.contains("model_type") && j["model_type"].is_string())
            return j["model_type"].get<std::string>() + " (transformers)";
        if (j.contains("architecture") && j["architecture"].is_string())
            return j["architecture"].get<std::string>() + " (timm)";
    } catch (const nlohmann::json::exception&) {
        return "unknown (config.json is not JSON)";
    }
    return "unknown";
}

std::int64_t dir_size(const fs::path& dir) {
    std::int64_t n = 0;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
        if (fs::is_regular_file(it->path(), ec)) n += static_cast<std::int64_t>(fs::file_size(it->path(), ec));
    return n;
}

int run_list(const ListOptions& o) {
    std::vector<Entry> entries;
    for (const auto& [name, dir] : builtin_models())
        entries.push_back({name, "built-in", model_family(dir), "", {}, dir, dir_size(dir), true});
    const hub::Settings s = hub::Settings::from_env();
    for (const auto& m : hub::list_cached(s))
        entries.push_back({m.repo_id, "hub", model_family(m.dir), m.commit, m.refs, m.dir, m.size, m.complete});

    if (o.format == "json") {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& e : entries) {
            nlohmann::json j{{"name", e.name},       {"source", e.source},     {"family", e.family},
                             {"size_bytes", e.size}, {"path", e.dir.string()}, {"complete", e.complete}};
            if (e.source == "hub") {
                j["commit"] = e.commit;
                j["revisions"] = e.refs;
            }
            out.push_back(j);
        }
        std::cout << out.dump(2) << "\n";
        return kOk;
    }
    std::cout << std::left << std::setw(34) << "NAME" << std::setw(10) << "SOURCE" << std::setw(28) << "FAMILY"
              << std::setw(10) << "SIZE" << std::setw(22) << "REVISION"
              << "PATH\n";
    for (const auto& e : entries) {
        std::string rev = "-";
        if (e.source == "hub") {
            rev.clear();
            for (const auto& r : e.refs) rev += (rev.empty() ? "" : ",") + r;
            rev += (rev.empty() ? "" : " ") + e.commit.substr(0, 8);
            if (!e.complete) rev += " (incomplete)";
        }
        std::cout << std::setw(34) << e.name << std::setw(10) << e.source << std::setw(28) << e.family << std::setw(10)
                  << human_bytes(e.size) << std::setw(22) << rev << e.dir.string() << "\n";
    }
    return kOk;
}

}  // namespace

void setup_list(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<ListOptions>();
    auto* sub = app.add_subcommand("list", "List the built-in models and the models in the Hugging Face Hub cache");
    sub->add_option("-f,--format", opt->format, "Output format")
        ->check(CLI::IsMember({"text", "json"}))
        ->capture_default_str();
    sub->callback([opt, &run] { run = [opt] { return run_list(*opt); }; });
}

}  // namespace vit::app
