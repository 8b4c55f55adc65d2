// vit: classify images with Vision Transformers on the CPU. Entry point: subcommand dispatch and exit codes.
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "errors.hpp"
#include "ops.hpp"
#include "runtime_info.hpp"
#include "vit_build_info.hpp"

namespace {

// What a bug report needs: vit's version and commit, the libraries as loaded, the CPU ISA oneDNN dispatches to.
std::string version_text() {
    return std::string("vit ") + VIT_VERSION + " (git " + VIT_GIT_COMMIT + ")\n" +
           "oneDNN " + vit::onednn_version() + ", CPU ISA " + vit::cpu_isa_name() + "\n" +
           "OpenCV " + vit::opencv_version();
}

// OpenMP threads that finish a parallel region spin for a long time (libgomp: 300,000 iterations) before
// sleeping. On a shared machine a spinning thread takes the core from the one its team is waiting for, and a
// 2-thread ViT-S/16 pass went from ~180 ms to ~1300-1900 ms under load; a short spin keeps the quick hand-off
// on an idle machine and yields under load. libgomp reads its settings when it is loaded, before main, so the
// process re-executes itself once with the setting in its environment. A user's own OMP_WAIT_POLICY or
// GOMP_SPINCOUNT is left alone.
void tune_openmp_waiting(char** argv) {
    if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
    ::setenv("GOMP_SPINCOUNT", "10000", 1);
    ::execv("/proc/self/exe", argv);   // returns only on failure: then run with the defaults
}

}  // namespace

int main(int argc, char** argv) {
    tune_openmp_waiting(argv);
    CLI::App app{"vit: Vision Transformer image classification on the CPU"};
    app.require_subcommand(1);
    app.set_version_flag("--version", version_text,
                         "Print the version, git commit, oneDNN and OpenCV versions and CPU ISA");
    std::function<int()> run;
    vit::app::setup_classify(app, run);
    vit::app::setup_info(app, run);
    vit::app::setup_bench(app, run);
    vit::app::setup_eval(app, run);
    vit::app::setup_generate(app, run, VIT_VERSION);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // CLI11 prints help to stdout and errors to stderr; usage errors are fatal (exit 1).
        const int rc = app.exit(e);
        return rc == 0 ? 0 : vit::app::kFatal;
    }
    try {
        return run();
    } catch (const vit::ModelError& e) {
        std::cerr << "vit: error: " << e.what() << "\n";
    } catch (const vit::InputError& e) {
        std::cerr << "vit: error: " << e.what() << "\n";
    } catch (const std::exception& e) {
        std::cerr << "vit: error: " << e.what() << "\n";
    }
    return vit::app::kFatal;
}
