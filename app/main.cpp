// vit: classify images with Vision Transformers on the CPU. Entry point: subcommand dispatch and exit codes.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "errors.hpp"
#include "image_codecs.hpp"
#include "process.hpp"
#include "runtime.hpp"
#include "runtime_info.hpp"
#include "vit_build_info.hpp"

namespace {

// What a bug report needs: vit's version and commit, the libraries as loaded, the CPU ISA oneDNN dispatches to.
std::string version_text() {
    return std::string("vit ") + VIT_VERSION + " (git " + VIT_GIT_COMMIT + ")\n" + "oneDNN " + vit::onednn_version() +
           ", CPU ISA " + vit::cpu_isa_name() + "\n" + "OpenCV " + vit::opencv_version();
}

}  // namespace

int main(int argc, char** argv) {
    vit::app::guard_standard_descriptors();   // first: see process.hpp
    vit::app::route_signals_to_own_thread();  // before any thread starts: see process.hpp
    CLI::App app{"vit: Vision Transformer image classification on the CPU"};
    app.require_subcommand(1);
    app.set_version_flag("--version", version_text,
                         "Print the version, git commit, oneDNN and OpenCV versions and CPU ISA");
    std::function<int()> run;
    vit::app::setup_classify(app, run);
    vit::app::setup_info(app, run);
    vit::app::setup_bench(app, run);
    vit::app::setup_eval(app, run);
    vit::app::setup_pull(app, run);
    vit::app::setup_list(app, run);
    vit::app::setup_explain(app, run);
    vit::app::setup_embed(app, run);
    vit::app::setup_fit(app, run);
    vit::app::setup_generate(app, run, VIT_VERSION);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // CLI11 prints help to stdout and errors to stderr; usage errors are fatal (exit 1).
        const int rc = app.exit(e);
        return rc == 0 ? 0 : vit::app::kFatal;
    }
    // The subcommands that decode images open OpenCV's decoders while the model loads.
    if (app.got_subcommand("classify") || app.got_subcommand("eval")) {
        vit::start_threads();  // before the dlopen: see start_threads
        vit::preload_image_codecs();
    }
    int rc = vit::app::kFatal;
    try {
        rc = run();
    } catch (const vit::ModelError& e) {
        std::cerr << "vit: error: " << e.what() << "\n";
    } catch (const vit::InputError& e) {
        std::cerr << "vit: error: " << e.what() << "\n";
    } catch (const std::exception& e) {
        std::cerr << "vit: error: " << e.what() << "\n";
    }
    // A run that ends before the decoders finished loading in the background must not exit under them: the
    // libraries' static constructors would race the exit handlers (heap corruption, seen with `- </dev/zero`).
    vit::wait_image_codecs();
#if !defined(__SANITIZE_ADDRESS__)
    // OpenCV's codec libraries (GDAL, GDCM, OpenEXR...) spend ~5-10 ms in static destructors at exit, and nothing
    // of ours needs them (output is written and committed by now): flush and leave without. Not under ASan,
    // whose leak check runs at exit.
    if (vit::image_codecs_loaded()) {
        std::cout.flush();
        std::cerr.flush();
        std::fflush(nullptr);
        std::_Exit(rc);
    }
#endif
    return rc;
}
