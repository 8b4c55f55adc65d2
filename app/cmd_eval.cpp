// `vit eval`: accuracy on a labelled ImageFolder (top-1, top-5, per class, confusion matrix, images/s).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "evaluate.hpp"

namespace vit::app {

namespace {

struct EvalCliOptions {
    ModelOptions model;
    std::string root;
    std::string format = "text";
    std::int64_t limit = 0;
    int batch_size = 32;
    int decode_threads = 0;
};

int run_eval(const EvalCliOptions& o) {
    auto model = load_model(o.model);
    EvalOptions eo;
    eo.limit = o.limit;
    eo.pipeline.batch_size = o.batch_size;
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    eo.pipeline.decode_threads = o.decode_threads > 0 ? o.decode_threads : cores;   // idle priority, see classify
    const EvalResult r = evaluate(*model, o.root, eo);
    const auto& labels = model->spec().labels;
    for (const auto& w : r.warnings) warn(w);
    for (const auto& e : r.errors) warn("unreadable: " + e);

    if (o.format == "json") {
        nlohmann::json j;
        j["root"] = o.root;
        j["n"] = r.n;
        j["unreadable"] = r.unreadable;
        j["top1"] = r.top1();
        j["top5"] = r.top5();
        j["images_per_s"] = r.images_per_s();
        j["seconds"] = r.seconds;
        nlohmann::json per = nlohmann::json::array();
        for (std::size_t c = 0; c < r.classes.size(); ++c)
            per.push_back({{"folder", r.classes[c].folder}, {"index", r.classes[c].index},
                           {"label", labels[r.classes[c].index]}, {"n", r.class_total[c]},
                           {"accuracy", r.class_total[c] ? static_cast<double>(r.class_correct[c]) / r.class_total[c] : 0.0}});
        j["per_class"] = per;
        j["confusion"] = r.confusion;   // rows: folders in per_class order; columns: model classes
        std::cout << j.dump(2) << "\n";
        return r.unreadable ? kSomeInputsFailed : kOk;
    }
    std::printf("images      %lld (%lld unreadable) in %.1f s, %.1f images/s\n", static_cast<long long>(r.n),
                static_cast<long long>(r.unreadable), r.seconds, r.images_per_s());
    std::printf("top-1       %.4f\n", r.top1());
    std::printf("top-5       %.4f\n", r.top5());
    std::printf("\nper class   %-24s %8s %8s\n", "", "images", "top-1");
    for (std::size_t c = 0; c < r.classes.size(); ++c)
        std::printf("            %-24s %8lld %8.4f\n", labels[r.classes[c].index].c_str(),
                    static_cast<long long>(r.class_total[c]),
                    r.class_total[c] ? static_cast<double>(r.class_correct[c]) / r.class_total[c] : 0.0);
    // The confusion table is only readable for small label sets; json always has it.
    const int K = model->config().num_classes;
    if (K <= 20) {
        std::printf("\nconfusion (rows: true folder, columns: predicted class index)\n%-16s", "");
        for (int k = 0; k < K; ++k) std::printf(" %6d", k);
        std::printf("\n");
        for (std::size_t c = 0; c < r.classes.size(); ++c) {
            std::printf("%-16.16s", r.classes[c].folder.c_str());
            for (int k = 0; k < K; ++k) std::printf(" %6lld", static_cast<long long>(r.confusion[c][k]));
            std::printf("\n");
        }
    } else {
        std::printf("\n(confusion matrix omitted for %d classes: use --format json)\n", K);
    }
    return r.unreadable ? kSomeInputsFailed : kOk;
}

}  // namespace

void setup_eval(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<EvalCliOptions>();
    auto* sub = app.add_subcommand("eval", "Measure accuracy on a labelled folder (ROOT/<class>/<images>)");
    opt->model.add_to(*sub);
    sub->add_option("root", opt->root, "ImageFolder root")->required();
    sub->add_option("-f,--format", opt->format, "Output format")->check(CLI::IsMember({"text", "json"}))->capture_default_str();
    sub->add_option("-l,--limit", opt->limit, "Evaluate at most N images, taken round-robin across classes")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("-b,--batch-size", opt->batch_size, "Images per forward pass")->check(CLI::Range(1, 4096))->capture_default_str();
    sub->add_option("--decode-threads", opt->decode_threads, "Decode/preprocess threads (0 = auto)")->check(CLI::NonNegativeNumber);
    sub->callback([opt, &run] { run = [opt] { return run_eval(*opt); }; });
}

}  // namespace vit::app
