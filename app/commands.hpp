// One setup_ function per subcommand: each registers its options and sets `run` when selected.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace vit::app {

void setup_classify(CLI::App& app, std::function<int()>& run);
void setup_info(CLI::App& app, std::function<int()>& run);
void setup_bench(CLI::App& app, std::function<int()>& run);
void setup_eval(CLI::App& app, std::function<int()>& run);
void setup_pull(CLI::App& app, std::function<int()>& run);
void setup_list(CLI::App& app, std::function<int()>& run);
void setup_explain(CLI::App& app, std::function<int()>& run);
void setup_embed(CLI::App& app, std::function<int()>& run);
void setup_fit(CLI::App& app, std::function<int()>& run);
// Hidden: __generate man|bash|zsh (from the whole CLI definition, so call it last) and __models.
void setup_generate(CLI::App& app, std::function<int()>& run, const std::string& version);

}  // namespace vit::app
