// `vit explain`: where the model looked. Classifies like `vit classify` (same inputs, batching, records, exit codes)
// and adds per input an attention map (rollout or last-layer class attention) and a PNG overlay on the original.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>

#include "atomic_output.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "explain.hpp"
#include "inputs.hpp"
#include "output.hpp"
#include "overlay.hpp"
#include "pipeline.hpp"
#include "process.hpp"
#include "progress.hpp"

namespace vit::app {

namespace {

namespace fs = std::filesystem;

struct ExplainCliOptions {
    ModelOptions model;
    std::vector<std::string> inputs;
    std::string method = "rollout";
    std::string head_fusion = "mean";
    double discard_ratio = 0;
    int head = -1;
    std::string output_dir;
    bool side_by_side = false;
    bool overwrite = false;
    double alpha = 0.5;
    int top_k = 5;
    std::string format = "text";
    int batch_size = 8;
    int decode_threads = 0;
    bool recursive = false;
    std::string ext;
    std::string files_from;
    bool null_sep = false;
    std::string output;
    bool fail_fast = false;
    bool progress_on = false, progress_off = false;
    std::int64_t max_pixels = 100'000'000;
};

// DIR/<input stem>.png, one name per input in input order: a stem seen before gets -2, -3, ... (the first free one),
// so the names depend only on the input list.
class OverlayNames {
public:
    explicit OverlayNames(fs::path dir) : dir_(std::move(dir)) {}
    fs::path claim(const std::string& input) {
        std::string stem = input == "-" ? "stdin" : fs::path(input).stem().string();
        if (stem.empty() || stem == "." || stem == "..") stem = "image";
        std::string name = stem + ".png";
        for (int k = 2; !taken_.insert(name).second; ++k) name = stem + "-" + std::to_string(k) + ".png";
        return dir_ / name;
    }

private:
    fs::path dir_;
    std::set<std::string> taken_;
};

nlohmann::json rounded(const std::vector<float>& map) {
    nlohmann::json a = nlohmann::json::array();
    for (float v : map) a.push_back(std::round(static_cast<double>(v) * 1e6) / 1e6);
    return a;
}

int run_explain(const ExplainCliOptions& o) {
    if (o.inputs.empty() && o.files_from.empty())
        throw std::runtime_error("no inputs: give image files or folders, '-' for stdin, or --files-from");
    ExplainOptions eo;
    eo.method = parse_explain_method(o.method);
    eo.fusion = parse_head_fusion(o.head_fusion);
    eo.discard_ratio = o.discard_ratio;
    eo.head = o.head;
    if (eo.head >= 0 && eo.method != ExplainMethod::Attention)
        throw std::runtime_error("--head picks one head of the last layer: it needs --method attention");
    if (eo.discard_ratio > 0 && eo.method != ExplainMethod::Rollout)
        throw std::runtime_error("--discard-ratio applies to --method rollout only");

    guard_standard_descriptors();
    install_interrupt_handlers();
    if (std::count(o.inputs.begin(), o.inputs.end(), "-") + (o.files_from == "-" ? 1 : 0) > 1)
        throw std::runtime_error(
            "standard input can be read once: '-' (an image) and --files-from - (a list) exclude "
            "each other, and '-' may be given once");
    InputOptions in;
    in.recursive = o.recursive;
    if (!o.ext.empty()) in.extensions = parse_extensions(o.ext);
    in.list = o.files_from;
    in.list_delim = o.null_sep ? '\0' : '\n';
    // A signal ends the run through the pipeline (po.cancelled): after the batch in flight it takes no more inputs,
    // and only then does a wait for the list (a pipe) give up.
    std::atomic<bool> no_more_input{false};
    in.cancelled = [&] { return no_more_input.load(); };
    InputList inputs(o.inputs, in);
    inputs.warn = [](const std::string& m) { warn(m); };

    auto model = load_model(o.model);                 // model problems are fatal before any output is written
    AttentionRecorder recorder(model->config(), eo);  // refuses a model without a class token
    model->set_attention_sink([&recorder](int block, const float* p, std::int64_t B, std::int64_t H, std::int64_t T) {
        recorder.on_attention(block, p, B, H, T);
    });
    const int grid = recorder.grid();

    std::unique_ptr<OverlayNames> names;
    if (!o.output_dir.empty()) {
        std::error_code ec;
        fs::create_directories(o.output_dir, ec);
        if (!fs::is_directory(o.output_dir))
            throw std::runtime_error(o.output_dir + ": --output-dir is not a directory" +
                                     (ec ? " (" + ec.message() + ")" : std::string()));
        names = std::make_unique<OverlayNames>(o.output_dir);
    }

    // With no streamed list the inputs are enumerated up front, so the progress bar knows the total.
    std::vector<SourceItem> all;
    std::int64_t total = -1;
    if (o.files_from.empty()) {
        SourceItem item;
        while (inputs.next(item)) all.push_back(item);
        total = static_cast<std::int64_t>(all.size());
    }
    std::size_t next = 0;
    InputSource source = [&](SourceItem& item) {
        if (o.files_from.empty()) return next < all.size() && (item = all[next++], true);
        return inputs.next(item);
    };

    std::unique_ptr<AtomicOutput> file;
    if (!o.output.empty()) file = std::make_unique<AtomicOutput>(o.output, false);
    OutputSink out(file ? file->fd() : STDOUT_FILENO, file ? o.output : "stdout");
    auto writer = make_writer(o.format, out, o.top_k, false);
    Progress progress(o.progress_on ? "on" : o.progress_off ? "off" : "auto", total);

    PipelineOptions po;
    po.batch_size = o.batch_size;
    po.stall_ms = inputs.list_may_stall() ? 250 : 0;
    po.cancelled = [] { return interrupted(); };
    po.no_more_input = [&] { no_more_input = true; };
    po.top_k = o.top_k;
    po.max_pixels = o.max_pixels;
    po.keep_image = true;
    po.window = 2 * o.batch_size;  // decoded originals are held until drawn on: keep fewer ahead
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    po.decode_threads = o.decode_threads > 0 ? o.decode_threads : cores;

    OverlayStyle style;
    style.alpha = o.alpha;
    std::int64_t n = 0, failed = 0;
    auto close_off = [&] {
        writer->end();
        progress.finish();
        if (file) file->commit();
    };
    writer->begin();
    try {
        classify_stream(
            *model, source,
            [&](ClassifyResult&& r) {
                RecordExtras x;
                const fs::path png = names ? names->claim(r.path) : fs::path();
                if (r.ok()) {
                    const std::vector<float> map = recorder.pop();  // this input's row of the batch
                    if (names) {
                        cv::Mat overlay = render_overlay(
                            r.image, heat_on_original(map, grid, r.image.size(), model->spec().preprocess), style);
                        if (o.side_by_side) {
                            char prob[32];
                            std::snprintf(prob, sizeof prob, "%.3f", r.top_k.front().prob);
                            overlay = side_by_side(r.image, overlay, r.top_k.front().label + " " + prob);
                        }
                        if (!write_png_atomic(overlay, png, o.overwrite)) {
                            r.error = "overlay " + png.string() +
                                      " already exists (not replaced; --overwrite replaces it)";
                            r.top_k.clear();
                        }
                    }
                    if (r.ok()) {
                        x.json.emplace_back("method", json_string(to_string(eo.method)));
                        x.json.emplace_back("grid", "[" + std::to_string(grid) + "," + std::to_string(grid) + "]");
                        x.json.emplace_back("map", rounded(map).dump());
                        x.json.emplace_back("overlay", names ? json_string(png.string()) : "null");
                        if (names) x.text.emplace_back("overlay", png.string());
                    }
                }
                r.image.release();
                if (o.format == "text" && r.top_k.size() > 1) r.top_k.resize(1);  // text: the top-1 and the overlay
                writer->write(r, x);
                ++n;
                if (!r.ok()) {
                    ++failed;
                    if (o.fail_fast) {
                        warn("stopping at the first bad input (--fail-fast): " + text_field(r.path) + ": " +
                             text_field(r.error));
                        return false;
                    }
                }
                progress.tick(n, failed);
                return true;
            },
            po);
    } catch (...) {
        // What is finished is kept: the records are closed off and --output committed (not when writing failed).
        if (!out.failed()) {
            try {
                close_off();
            } catch (const std::exception& e) {
                warn(std::string("could not keep the finished records: ") + e.what());
            }
        }
        throw;
    }
    close_off();
    if (interrupted()) {
        warn("interrupted: " + std::to_string(n) + " inputs written");
        return kFatal;
    }
    return failed ? kSomeInputsFailed : kOk;
}

}  // namespace

void setup_explain(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<ExplainCliOptions>();
    auto* sub = app.add_subcommand("explain",
                                   "Show where the model looked: attention maps as PNG overlays and numbers");
    opt->model.add_to(*sub);
    sub->add_option("inputs", opt->inputs, "Image files or folders; '-' reads one encoded image from stdin");
    sub->add_option("--method", opt->method,
                    "rollout: attention rollout over all layers; attention: the last "
                    "layer's class-token attention")
        ->check(CLI::IsMember({"rollout", "attention"}))
        ->capture_default_str();
    sub->add_option("--head-fusion", opt->head_fusion, "How the heads of a layer are combined")
        ->check(CLI::IsMember({"mean", "max", "min"}))
        ->capture_default_str();
    sub->add_option("--discard-ratio", opt->discard_ratio,
                    "rollout: zero this fraction of each layer's smallest "
                    "attention weights (never the class token's own)")
        ->check(CLI::Range(0.0, 0.99))
        ->capture_default_str();
    sub->add_option("--head", opt->head, "attention: this head alone (0-based) instead of fusing the heads")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("-d,--output-dir", opt->output_dir,
                    "Write DIR/<input stem>.png overlays (created if missing); "
                    "without it only the records are written");
    sub->add_flag("--side-by-side", opt->side_by_side,
                  "The original and the overlay next to each other, top-1 label on it");
    sub->add_flag("--overwrite", opt->overwrite,
                  "Replace overlays that already exist (otherwise such an input gets an error record)");
    sub->add_option("--alpha", opt->alpha, "Weight of the heatmap in the blend")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    sub->add_option("-k,--top-k", opt->top_k,
                    "Number of classes reported per image (json, jsonl; text shows the top 1)")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    sub->add_option("-f,--format", opt->format, "Output format")
        ->check(CLI::IsMember({"text", "json", "jsonl"}))
        ->capture_default_str();
    sub->add_option("-b,--batch-size", opt->batch_size, "Images per forward pass")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    sub->add_option("--decode-threads", opt->decode_threads,
                    "Decode/preprocess threads, run at idle priority (0 = one per core)")
        ->check(CLI::NonNegativeNumber);
    sub->add_flag("-r,--recursive", opt->recursive, "Descend into sub-folders");
    sub->add_option("--ext", opt->ext, "Comma-separated extensions picked from folders (default: common image types)");
    sub->add_option("--files-from", opt->files_from, "Read input paths from FILE ('-' = stdin), one per line");
    sub->add_flag("-0,--null", opt->null_sep, "--files-from paths are NUL-separated (find -print0)");
    sub->add_option("-o,--output", opt->output, "Write the records to FILE (atomically: temp file + rename)");
    sub->add_flag("--fail-fast", opt->fail_fast, "Stop at the first input that cannot be explained");
    auto* pon = sub->add_flag("--progress", opt->progress_on, "Always show the progress bar on stderr");
    auto* poff = sub->add_flag("--no-progress", opt->progress_off, "Never show the progress bar");
    pon->excludes(poff);
    sub->add_option("--max-pixels", opt->max_pixels,
                    "Reject images with more pixels than this (checked before decoding)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    sub->callback([opt, sub, &run] {
        if (opt->inputs.empty() && opt->files_from.empty() && ::isatty(STDIN_FILENO))
            run = [sub] { return std::cerr << sub->help("vit"), kFatal; };
        else run = [opt] { return run_explain(*opt); };
    });
}

}  // namespace vit::app
