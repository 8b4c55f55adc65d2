// vit: classify images with Vision Transformers on the CPU. Entry point: subcommand dispatch and exit codes.
#include <iostream>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "errors.hpp"
#include "image_codecs.hpp"

int main(int argc, char** argv) {
    CLI::App app{"vit: Vision Transformer image classification on the CPU"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "vit 0.1.0");
    std::function<int()> run;
    vit::app::setup_classify(app, run);
    vit::app::setup_info(app, run);
    vit::app::setup_bench(app, run);
    vit::app::setup_eval(app, run);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // CLI11 prints help to stdout and errors to stderr; usage errors are fatal (exit 1).
        const int rc = app.exit(e);
        return rc == 0 ? 0 : vit::app::kFatal;
    }
    // The subcommands that decode images open OpenCV's decoders while the model loads.
    if (app.got_subcommand("classify") || app.got_subcommand("eval")) vit::preload_image_codecs();
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
