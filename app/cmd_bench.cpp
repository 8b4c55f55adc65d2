// `vit bench`: times the forward pass on synthetic input (load, first inference, median/p90/p99, images/s,
// GFLOP/s, peak RSS), and with --ops the time of each op in it.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "op_profile.hpp"

namespace vit::app {

namespace {

struct BenchOptions {
    ModelOptions model;
    int batch_size = 1;
    int iterations = 20;
    int warmup = 3;
    std::string format = "text";
    bool ops = false;
};

// The timed passes' op times (op_profile), summed per op, and each pass's time over its linear layers' time.
struct OpTimes {
    std::vector<op_profile::Entry> ops;  // first-seen order
    std::vector<double> pass_over_linear;

    void add(std::vector<op_profile::Entry> pass, double pass_ms) {
        double linear = 0;
        for (auto& e : pass) {
            if (e.kind == op_profile::Kind::Linear) linear += e.ms;
            auto it = std::find_if(ops.begin(), ops.end(), [&](const auto& o) { return o.op == e.op; });
            if (it == ops.end()) {
                ops.push_back(std::move(e));
            } else {
                it->ms += e.ms;
                it->calls += e.calls;
            }
        }
        if (linear > 0) pass_over_linear.push_back(pass_ms / linear);
    }
};

double peak_rss_mb() {
    struct rusage ru {};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    const double pos = q * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(pos);
    const auto hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

int run_bench(const BenchOptions& o) {
    using clock = std::chrono::steady_clock;
    auto ms = [](clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
    const auto t0 = clock::now();
    auto model = load_model(o.model);
    const double load_ms = ms(clock::now() - t0);

    const std::int64_t B = o.batch_size;
    std::vector<float> input(static_cast<std::size_t>(B * model->input_size()));
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (auto& v : input) v = nd(rng);
    std::vector<float> logits(static_cast<std::size_t>(B * model->config().num_classes));

    auto t1 = clock::now();
    model->forward(input.data(), B, logits.data());
    const double first_ms = ms(clock::now() - t1);
    for (int i = 0; i < o.warmup; ++i) model->forward(input.data(), B, logits.data());
    std::vector<double> times;
    OpTimes op_times;
    op_profile::take();
    op_profile::enable(o.ops);
    for (int i = 0; i < o.iterations; ++i) {
        t1 = clock::now();
        model->forward(input.data(), B, logits.data());
        times.push_back(ms(clock::now() - t1));
        if (o.ops) op_times.add(op_profile::take(), times.back());
    }
    op_profile::enable(false);
    const double median = percentile(times, 0.5), p90 = percentile(times, 0.9), p99 = percentile(times, 0.99);
    const double ips = static_cast<double>(B) * 1000.0 / median;
    const double gflops = model->gflops_per_image() * ips;
    nlohmann::json j = {{"model", model->spec().config_path.string()},
                        {"precision", to_string(model->precision())},
                        {"threads", num_threads()},
                        {"cpu_isa", cpu_isa_name()},
                        {"batch_size", B},
                        {"iterations", o.iterations},
                        {"load_ms", load_ms},
                        {"first_inference_ms", first_ms},
                        {"median_ms", median},
                        {"p90_ms", p90},
                        {"p99_ms", p99},
                        {"ms_per_image", median / static_cast<double>(B)},
                        {"images_per_s", ips},
                        {"gflops_per_image", model->gflops_per_image()},
                        {"achieved_gflops", gflops},
                        {"peak_rss_mb", peak_rss_mb()}};
    const bool weights_7bit = model->precision() == Precision::INT8 && int8_weights_7bit();
    if (model->precision() == Precision::INT8) j["int8_weight_bits"] = weights_7bit ? 7 : 8;
    const double n = o.iterations;
    double linear_ms = 0, ops_ms = 0;
    if (o.ops) {
        std::stable_sort(op_times.ops.begin(), op_times.ops.end(),
                         [](const auto& a, const auto& b) { return a.ms > b.ms; });
        nlohmann::json list = nlohmann::json::array();
        for (const auto& e : op_times.ops) {
            list.push_back(
                {{"op", e.op}, {"ms_per_pass", e.ms / n}, {"calls_per_pass", static_cast<double>(e.calls) / n}});
            ops_ms += e.ms / n;
            if (e.kind == op_profile::Kind::Linear) linear_ms += e.ms / n;
        }
        j["ops"] = list;
        j["linear_ms_per_pass"] = linear_ms;
        j["pass_over_linear_median"] = op_times.pass_over_linear.empty() ? 0.0
                                                                         : percentile(op_times.pass_over_linear, 0.5);
    }
    if (o.format == "json") {
        std::cout << j.dump(2) << "\n";
        return kOk;
    }
    std::printf("model            %s\n", j["model"].get<std::string>().c_str());
    std::printf("precision        %s%s, %d threads, batch %lld, CPU ISA %s\n",
                j["precision"].get<std::string>().c_str(), weights_7bit ? " (7-bit weights: no AVX-512 VNNI)" : "",
                num_threads(), static_cast<long long>(B), cpu_isa_name().c_str());
    std::printf("load             %.1f ms\n", load_ms);
    std::printf("first inference  %.1f ms\n", first_ms);
    std::printf("per batch        median %.2f ms, p90 %.2f ms, p99 %.2f ms (%d iterations)\n", median, p90, p99,
                o.iterations);
    std::printf("per image        %.2f ms, %.1f images/s\n", median / static_cast<double>(B), ips);
    std::printf("compute          %.1f GFLOP/s (%.2f GFLOP per image)\n", gflops, model->gflops_per_image());
    std::printf("peak RSS         %.1f MB\n", peak_rss_mb());
    if (!o.ops) return kOk;
    double mean = 0;
    for (double t : times) mean += t / n;
    std::printf("\nops, mean per pass over the %d timed passes (a pass took %.2f ms on average):\n", o.iterations,
                mean);
    std::printf("%10s %7s %6s  %s\n", "ms/pass", "calls", "share", "op");
    for (const auto& e : op_times.ops)
        std::printf("%10.3f %7.4g %5.1f%%  %s\n", e.ms / n, static_cast<double>(e.calls) / n, 100 * e.ms / n / mean,
                    e.op.c_str());
    std::printf("%10.3f %7s %5.1f%%  %s\n", mean - ops_ms, "", 100 * (mean - ops_ms) / mean,
                "between the ops (patch unfolding, position embeddings, copies, the head's input)");
    std::printf("%10.3f %7s %5.1f%%  %s\n", linear_ms, "", 100 * linear_ms / mean, "all linear layers");
    std::printf("whole pass / its linear layers: %.3fx (median over the passes)\n",
                j["pass_over_linear_median"].get<double>());
    return kOk;
}

}  // namespace

void setup_bench(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<BenchOptions>();
    auto* sub = app.add_subcommand("bench", "Time the forward pass on synthetic input");
    opt->model.add_to(*sub);
    sub->add_option("-b,--batch-size", opt->batch_size, "Images per forward pass")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    sub->add_option("-n,--iterations", opt->iterations, "Timed iterations")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    sub->add_option("--warmup", opt->warmup, "Untimed iterations after the first")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    sub->add_flag("--ops", opt->ops,
                  "Also time each op of the timed passes (linear layers, norms, attention) and print where a pass's "
                  "time goes");
    sub->add_option("-f,--format", opt->format, "Output format")
        ->check(CLI::IsMember({"text", "json"}))
        ->capture_default_str();
    sub->callback([opt, &run] { run = [opt] { return run_bench(*opt); }; });
}

}  // namespace vit::app
