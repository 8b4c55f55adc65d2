// Attention maps (lib/explain) against the float64 PyTorch reference of scripts/make_explain_fixtures.py, and the
// overlay geometry and PNG output (lib/overlay).
#include <doctest/doctest.h>

#include <unistd.h>

#include <fstream>
#include <map>

#include <opencv2/imgcodecs.hpp>

#include "errors.hpp"
#include "explain.hpp"
#include "model.hpp"
#include "overlay.hpp"
#include "preprocess.hpp"
#include "test_util.hpp"

using namespace vit;
using namespace vit::test;
namespace fs = std::filesystem;

namespace {

// The cases of scripts/make_explain_fixtures.py (CASES).
const std::map<std::string, ExplainOptions> kCases = {
    {"rollout_mean", {ExplainMethod::Rollout, HeadFusion::Mean, 0.0, -1}},
    {"rollout_max_d0.9", {ExplainMethod::Rollout, HeadFusion::Max, 0.9, -1}},
    {"rollout_min_d0.5", {ExplainMethod::Rollout, HeadFusion::Min, 0.5, -1}},
    {"rollout_mean_d0.3", {ExplainMethod::Rollout, HeadFusion::Mean, 0.3, -1}},
    {"attention_mean", {ExplainMethod::Attention, HeadFusion::Mean, 0.0, -1}},
    {"attention_max", {ExplainMethod::Attention, HeadFusion::Max, 0.0, -1}},
    {"attention_min", {ExplainMethod::Attention, HeadFusion::Min, 0.0, -1}},
    {"attention_head1", {ExplainMethod::Attention, HeadFusion::Mean, 0.0, 1}},
};

// Runs `images` [B, C, S, S] through the model once per case with an AttentionRecorder as its sink and compares
// the maps with the fixture's; returns the largest difference per method.
std::map<std::string, float> compare_model(VitModel& model, const std::vector<float>& images, std::int64_t B,
                                           const fs::path& fixture, float tol) {
    SafetensorsFile ref(fixture);
    std::vector<float> logits(static_cast<std::size_t>(B) * model.config().num_classes);
    std::map<std::string, float> worst;
    for (const auto& [name, opt] : kCases) {
        AttentionRecorder rec(model.config(), opt);
        model.set_attention_sink([&](int b, const float* p, std::int64_t n, std::int64_t H, std::int64_t T) {
            rec.on_attention(b, p, n, H, T);
        });
        model.forward(images.data(), B, logits.data());
        model.set_attention_sink(nullptr);
        REQUIRE(rec.queued() == static_cast<std::size_t>(B));
        std::vector<float> got;
        for (std::int64_t b = 0; b < B; ++b) {
            auto m = rec.pop();
            const float mx = *std::max_element(m.begin(), m.end());
            CHECK((mx == doctest::Approx(1.0f) || mx == 0.0f));
            got.insert(got.end(), m.begin(), m.end());
        }
        const auto want = tensor(ref, name);
        REQUIRE(got.size() == want.size());
        CHECK(std::none_of(want.begin(), want.end(), [](float v) { return std::isnan(v); }));
        const float d = report(fixture.stem().string() + " " + name, got, want);
        CHECK_MESSAGE(d < tol, name);
        const std::string method = to_string(opt.method);
        worst[method] = std::max(worst[method], d);
    }
    return worst;
}

}  // namespace

TEST_CASE("explain: option parsing and refusals") {
    CHECK(parse_explain_method("rollout") == ExplainMethod::Rollout);
    CHECK(parse_head_fusion("min") == HeadFusion::Min);
    CHECK_THROWS_WITH_AS(parse_explain_method("gradcam"),
                         "unknown explain method \"gradcam\" (expected rollout or attention)", std::invalid_argument);
    ModelConfig avg;
    avg.class_token = false;
    avg.global_pool = GlobalPool::Avg;
    for (auto method : {ExplainMethod::Rollout, ExplainMethod::Attention}) {
        ExplainOptions o;
        o.method = method;
        CHECK_THROWS_WITH_AS(check_explainable(avg, o),
                             ("--method " + to_string(method) +
                              " follows the class token's attention, but this model "
                              "has no class token (global_pool avg): no map to show")
                                 .c_str(),
                             ModelError);
    }
    ModelConfig cls;
    cls.num_heads = 3;
    ExplainOptions o;
    o.head = 3;
    CHECK_THROWS_WITH_AS(check_explainable(cls, o), "--head 3 is past the model's 3 heads (0..2)", ModelError);
    o.head = -1;
    o.discard_ratio = 1.0;
    CHECK_THROWS_AS(check_explainable(cls, o), ModelError);
}

TEST_CASE("explain: prefix tokens (class, distillation, register) are left out of the map") {
    SafetensorsFile ref(fixtures() / "explain/synthetic.safetensors");
    const auto probs = tensor(ref, "probs");  // [L=3, B=2, H=2, T=12]
    ModelConfig c;
    c.image_size = 6;
    c.patch_size = 2;  // 3x3 patches
    c.depth = 3;
    c.num_heads = 2;
    c.dist_token = true;
    c.reg_tokens = 1;
    REQUIRE(c.num_tokens() == 12);
    const std::size_t per_layer = 2 * 2 * 12 * 12;
    for (const auto& [name, opt] : kCases) {
        AttentionRecorder rec(c, opt);
        for (int l = 0; l < 3; ++l) rec.on_attention(l, probs.data() + l * per_layer, 2, 2, 12);
        std::vector<float> got;
        for (int b = 0; b < 2; ++b) {
            auto m = rec.pop();
            REQUIRE(m.size() == 9);
            got.insert(got.end(), m.begin(), m.end());
        }
        CHECK(report("synthetic Nx=3 " + name, got, tensor(ref, name)) < 1e-6f);
    }
}

TEST_CASE("explain: tiny random models against the float64 reference") {
    for (const char* name : {"tiny_rgb_p16", "tiny_gray_p8"}) {
        VitModel model(load_model_spec(fixtures() / name / "config.json"));
        SafetensorsFile ref(fixtures() / name / "reference.safetensors");
        const auto x = tensor(ref, "input");
        compare_model(model, x, 3, fixtures() / "explain" / (std::string(name) + ".safetensors"), 1e-4f);
    }
}

TEST_CASE("explain: Hub models with distillation and register tokens against the float64 reference") {
    for (const char* name : {"timm_deit_distilled", "hf_deit_distilled", "timm_reg_dinov2", "hf_dinov2_registers"}) {
        VitModel model(load_model_dir(fixtures() / "hub" / name));
        SafetensorsFile ref(fixtures() / "hub" / (std::string(name) + ".reference.safetensors"));
        SafetensorsFile maps(fixtures() / "explain" / ("hub_" + std::string(name) + ".safetensors"));
        CHECK(std::to_string(model.config().num_prefix_tokens()) == maps.metadata().at("prefix_tokens"));
        CHECK(model.config().num_prefix_tokens() > 1);
        compare_model(model, tensor(ref, "pixels"), 2,
                      fixtures() / "explain" / ("hub_" + std::string(name) + ".safetensors"), 1e-4f);
    }
}

TEST_CASE("explain: DeiT-tiny against the float64 reference") {
    const fs::path weights = shared() / "models/deit-tiny-imagenet/model.safetensors";
    REQUIRE_MESSAGE(fs::exists(weights), "DeiT-tiny weights not found at " << weights.string());
    const ModelSpec spec = load_model_spec(source_dir() / "configs/deit_tiny_patch16_224.json", weights);
    SafetensorsFile ref(fixtures() / "explain/deit_tiny.safetensors");
    std::vector<fs::path> files = {source_dir() / "samples/chelsea.png", source_dir() / "samples/coffee.png"};
    std::vector<fs::path> sample;
    for (const auto& e : fs::directory_iterator(shared() / "data/imagenet-sample"))
        if (e.path().extension() == ".JPEG") sample.push_back(e.path());
    std::sort(sample.begin(), sample.end());
    files.insert(files.end(), sample.begin(), sample.begin() + 2);
    std::vector<float> x;
    for (const auto& f : files) {
        auto one = preprocess_file(f, spec.preprocess, spec.model.in_chans);
        x.insert(x.end(), one.begin(), one.end());
    }
    VitModel model(spec);
    const auto worst = compare_model(model, x, 4, fixtures() / "explain/deit_tiny.safetensors", 2e-3f);
    for (const auto& [method, d] : worst)
        std::printf("  DeiT-tiny %-10s max diff over all cases %.3g\n", method.c_str(), d);
}

TEST_CASE("overlay: the map lands on the crop's footprint in the original image") {
    PreprocessConfig pp;
    pp.resize = 256;
    pp.crop = 224;  // 4x4 grid of 56-pixel cells below
    // A 512 x 1024 (w x h) image: resized to 256 x 512, crop at left 16, top 144 resized pixels = 32, 288 original.
    std::vector<float> map(16, 0.0f);
    map[1 * 4 + 2] = 1.0f;  // row 1, column 2
    const cv::Mat heat = heat_on_original(map, 4, cv::Size(512, 1024), pp);
    REQUIRE(heat.size() == cv::Size(512, 1024));
    cv::Point peak;
    double mx;
    cv::minMaxLoc(heat, nullptr, &mx, nullptr, &peak);
    // Cell (1, 2) centre in crop pixels: (2.5 * 56, 1.5 * 56) = (140, 84) -> original ((140 + 16) * 2, (84 + 144) * 2).
    CHECK(std::abs(peak.x - 312) <= 2);
    CHECK(std::abs(peak.y - 456) <= 2);
    CHECK(mx == doctest::Approx(1.0).epsilon(0.01));
    // Outside the crop (left of x = 32, above y = 288, below y = 288 + 448) nothing was seen: 0.
    CHECK(cv::countNonZero(heat.colRange(0, 32)) == 0);
    CHECK(cv::countNonZero(heat.rowRange(0, 288)) == 0);
    CHECK(cv::countNonZero(heat.rowRange(736, 1024)) == 0);
    CHECK(cv::countNonZero(heat.rowRange(288, 736).colRange(32, 480)) > 0);
    double lo, hi;
    cv::minMaxLoc(heat, &lo, &hi);
    CHECK(lo >= 0.0);
    CHECK(hi <= 1.0);
}

TEST_CASE("overlay: PNGs at the input's size, written atomically, never overwritten unasked") {
    const TempDir tmp("overlay");
    const fs::path& dir = tmp.path();
    cv::Mat rgb(37, 53, CV_8UC3, cv::Scalar(10, 200, 30));
    PreprocessConfig pp;
    pp.resize = 36;
    pp.crop = 32;
    const cv::Mat heat = heat_on_original(std::vector<float>(4, 0.5f), 2, rgb.size(), pp);
    const cv::Mat ov = render_overlay(rgb, heat);
    CHECK(ov.size() == rgb.size());
    const fs::path p = dir / "x.png";
    CHECK(write_png_atomic(ov, p, false));
    const cv::Mat back = cv::imread(p.string(), cv::IMREAD_COLOR);
    REQUIRE(back.size() == rgb.size());
    CHECK(cv::norm(back, ov, cv::NORM_INF) == 0);
    CHECK_FALSE(write_png_atomic(side_by_side(rgb, ov, "label"), p, false));  // exists: left alone
    CHECK(cv::imread(p.string()).size() == rgb.size());
    CHECK(write_png_atomic(side_by_side(rgb, ov, "caf\xc3\xa9 0.5"), p, true));
    CHECK(cv::imread(p.string()).size() == cv::Size(106, 37));
    std::size_t entries = 0;
    for (const auto& e : fs::directory_iterator(dir)) entries += e.is_regular_file();
    CHECK(entries == 1);  // no temporary left behind
    CHECK_THROWS_AS(write_png_atomic(ov, dir / "missing/y.png", false), std::runtime_error);
}
