// `vit explain`: where the model looked. Classifies like `vit classify` (same inputs, batching, records, exit codes)
// and adds per input an attention map (rollout or last-layer class attention) and a PNG overlay on the original.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "atomic_output.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "explain.hpp"
#include "input_cli.hpp"
#include "output.hpp"
#include "overlay.hpp"
#include "pipeline.hpp"

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
    InputCliOptions input;
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
    ExplainOptions eo;
    eo.method = parse_explain_method(o.method);
    eo.fusion = parse_head_fusion(o.head_fusion);
    eo.discard_ratio = o.discard_ratio;
    eo.head = o.head;
    if (eo.head >= 0 && eo.method != ExplainMethod::Attention)
        throw std::runtime_error("--head picks one head of the last layer: it needs --method attention");
    if (eo.discard_ratio > 0 && eo.method != ExplainMethod::Rollout)
        throw std::runtime_error("--discard-ratio applies to --method rollout only");

    InputRun run(o.input);
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

    run.list_inputs();
    AtomicOutput* file = run.file();
    OutputSink out(run.out_fd(), run.out_name());
    auto writer = make_writer(o.format, out, o.top_k, false);

    PipelineOptions po = run.pipeline();
    po.top_k = o.top_k;
    po.keep_image = true;
    po.window = 2 * o.input.batch_size;  // decoded originals are held until drawn on: keep fewer ahead

    OverlayStyle style;
    style.alpha = o.alpha;
    writer->begin();
    return run.stream(
        *model, po,
        [&](ClassifyResult& r) {
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
                        r.error = "overlay " + png.string() + " already exists (not replaced; --overwrite replaces it)";
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
        },
        [&] {
            writer->end();
            if (file) file->commit();
        },
        [&] { return out.failed(); });
}

}  // namespace

void setup_explain(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<ExplainCliOptions>();
    auto* sub = app.add_subcommand("explain",
                                   "Show where the model looked: attention maps as PNG overlays and numbers");
    opt->model.add_to(*sub);
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
    add_input_options(*sub, opt->input, {"explained", "records", false, ""});
    sub->callback([opt, sub, &run] {
        if (wants_help(opt->input)) run = [sub] { return std::cerr << sub->help("vit"), kFatal; };
        else run = [opt] { return run_explain(*opt); };
    });
}

}  // namespace vit::app
