// `vit eval`: accuracy on a labelled ImageFolder (top-1, top-5, per class, confusion matrix, images/s).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "evaluate.hpp"
#include "output.hpp"
#include "process.hpp"

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

// printf into a string (the report goes out through one checked OutputSink).
template <typename... Args>
std::string fmt(const char* f, Args... args) {
    char buf[512];
    std::snprintf(buf, sizeof buf, f, args...);
    return buf;
}

int run_eval(const EvalCliOptions& o) {
    if (guard_standard_descriptors() & 2) throw std::runtime_error("stdout is closed: nowhere to write the report");
    install_interrupt_handlers();
    auto model = load_model(o.model);
    EvalOptions eo;
    eo.limit = o.limit;
    eo.pipeline.batch_size = o.batch_size;
    eo.pipeline.cancelled = [] { return interrupted(); };
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    eo.pipeline.decode_threads = o.decode_threads > 0 ? o.decode_threads : cores;  // idle priority, see classify
    const EvalResult r = evaluate(*model, o.root, eo);
    if (interrupted())
        throw std::runtime_error("interrupted after " + std::to_string(r.n + r.unreadable) +
                                 " images: no accuracy reported");
    const auto& labels = model->spec().labels;
    for (const auto& w : r.warnings) warn(text_field(w));
    for (const auto& e : r.errors) warn("unreadable: " + text_field(e));

    OutputSink out(STDOUT_FILENO, "stdout");
    auto accuracy = [&](std::size_t c) {  // NaN (null / "-") for a class with no images: not a score of 0
        return r.class_total[c] ? static_cast<double>(r.class_correct[c]) / static_cast<double>(r.class_total[c]) : NAN;
    };
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
            per.push_back({{"folder", r.classes[c].folder},
                           {"index", r.classes[c].index},
                           {"label", labels[r.classes[c].index]},
                           {"n", r.class_total[c]},
                           {"accuracy", accuracy(c)}});
        j["per_class"] = per;
        j["confusion"] = r.confusion;  // rows: folders in per_class order; columns: model classes
        out.write(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
        out.flush();
        return r.unreadable ? kSomeInputsFailed : kOk;
    }
    out.write(fmt("images      %lld (%lld unreadable) in %.1f s, %.1f images/s\n", static_cast<long long>(r.n),
                  static_cast<long long>(r.unreadable), r.seconds, r.images_per_s()));
    out.write(fmt("top-1       %.4f\n", r.top1()));
    out.write(fmt("top-5       %.4f\n", r.top5()));
    out.write(fmt("\nper class   %-24s %8s %8s\n", "", "images", "top-1"));
    for (std::size_t c = 0; c < r.classes.size(); ++c) {
        const std::string acc = r.class_total[c] ? fmt("%8.4f", accuracy(c)) : fmt("%8s", "-");
        out.write(fmt("            %-24s %8lld %s\n", text_field(labels[r.classes[c].index]).c_str(),
                      static_cast<long long>(r.class_total[c]), acc.c_str()));
    }
    // The confusion table is only readable for small label sets; json always has it.
    const int K = model->config().num_classes;
    if (K <= 20) {
        out.write(fmt("\nconfusion (rows: true folder, columns: predicted class index)\n%-16s", ""));
        for (int k = 0; k < K; ++k) out.write(fmt(" %6d", k));
        out.write("\n");
        for (std::size_t c = 0; c < r.classes.size(); ++c) {
            out.write(fmt("%-16.16s", text_field(r.classes[c].folder).c_str()));
            for (int k = 0; k < K; ++k) out.write(fmt(" %6lld", static_cast<long long>(r.confusion[c][k])));
            out.write("\n");
        }
    } else {
        out.write(fmt("\n(confusion matrix omitted for %d classes: use --format json)\n", K));
    }
    out.flush();
    return r.unreadable ? kSomeInputsFailed : kOk;
}

}  // namespace

void setup_eval(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<EvalCliOptions>();
    auto* sub = app.add_subcommand("eval", "Measure accuracy on a labelled folder (ROOT/<class>/<images>)");
    opt->model.add_to(*sub);
    sub->add_option("root", opt->root, "ImageFolder root")->required();
    sub->add_option("-f,--format", opt->format, "Output format")
        ->check(CLI::IsMember({"text", "json"}))
        ->capture_default_str();
    sub->add_option("-l,--limit", opt->limit, "Evaluate at most N images, taken round-robin across classes")
        ->check(CLI::Range(std::int64_t{0}, std::numeric_limits<std::int64_t>::max()));
    sub->add_option("-b,--batch-size", opt->batch_size, "Images per forward pass")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    sub->add_option("--decode-threads", opt->decode_threads, "Decode/preprocess threads (0 = auto)")
        ->check(CLI::Range(0, 1024));
    sub->callback([opt, &run] { run = [opt] { return run_eval(*opt); }; });
}

}  // namespace vit::app
