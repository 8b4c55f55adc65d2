// `vit classify`: classify files, folders and path lists; stream one record per input in input order.
#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "common.hpp"
#include "input_cli.hpp"
#include "output.hpp"

namespace vit::app {

namespace {

struct ClassifyOptions {
    ModelOptions model;
    InputCliOptions input;
    int top_k = 5;
    std::string format = "text";
    bool logits = false;
};

int run_classify(const ClassifyOptions& o) {
    if (o.input.append && o.format == "json")
        throw std::runtime_error("--append cannot add to a --format json array: use jsonl, csv, tsv or text");
    InputRun run(o.input);
    auto model = load_model(o.model);  // model problems are fatal before any output is written
    run.list_inputs();
    AtomicOutput* file = run.file();
    OutputSink sink(run.out_fd(), run.out_name());
    auto writer = make_writer(o.format, sink, o.top_k, o.logits, !(file && file->continues_existing()));
    PipelineOptions po = run.pipeline();
    po.top_k = o.top_k;
    po.keep_logits = o.logits;
    writer->begin();
    return run.stream(
        *model, po, [&](ClassifyResult& r) { writer->write(r); },
        [&] {
            writer->end();
            if (file) file->commit();
        },
        [&] { return sink.failed(); });
}

}  // namespace

void setup_classify(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<ClassifyOptions>();
    auto* sub = app.add_subcommand("classify", "Classify images: files, folders, '-' (stdin) or --files-from lists");
    opt->model.add_to(*sub);
    sub->add_option("-k,--top-k", opt->top_k, "Number of classes reported per image")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    sub->add_option("-f,--format", opt->format, "Output format")
        ->check(CLI::IsMember({"text", "json", "jsonl", "csv", "tsv"}))
        ->capture_default_str();
    sub->add_flag("--logits", opt->logits, "Add the raw logits of all classes to each record");
    add_input_options(*sub, opt->input, {"classified", "results", true, "a record"});
    sub->callback([opt, sub, &run] {
        // Nothing to classify and nobody piping into it: show how to call it rather than wait on the terminal.
        if (wants_help(opt->input)) run = [sub] { return std::cerr << sub->help("vit"), kFatal; };
        else run = [opt] { return run_classify(*opt); };
    });
}

}  // namespace vit::app
