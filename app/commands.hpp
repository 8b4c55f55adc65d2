// One setup_ function per subcommand: each registers its options and sets `run` when selected.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace vit::app {

void setup_classify(CLI::App& app, std::function<int()>& run);
void setup_info(CLI::App& app, std::function<int()>& run);
void setup_bench(CLI::App& app, std::function<int()>& run);
void setup_eval(CLI::App& app, std::function<int()>& run);
void setup_explain(CLI::App& app, std::function<int()>& run);

}  // namespace vit::app
