// Hub-layout model directories (transformers and timm, tests/fixtures/hub/) against the float64 PyTorch references
// of scripts/hub_reference.py: logits, the head's input features and the image processors' output, per case.
#include <doctest/doctest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "model.hpp"
#include "preprocess.hpp"
#include "test_util.hpp"

using namespace vit;
using namespace vit::test;

namespace {

nlohmann::json cases() {
    std::ifstream in(fixtures() / "hub" / "cases.json");
    REQUIRE(in);
    return nlohmann::json::parse(in);
}

std::string error_of(const std::filesystem::path& dir) {
    try {
        VitModel m(load_model_dir(dir));
    } catch (const ModelError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("every Hub-layout fixture matches its PyTorch reference") {
    const auto all = cases();
    int checked = 0;
    for (const auto& c : all) {
        const std::string name = c["case"].get<std::string>();
        const auto dir = fixtures() / "hub" / name;
        const auto ref_path = fixtures() / "hub" / (name + ".reference.safetensors");
        if (!std::filesystem::exists(ref_path)) continue;  // negative cases have no reference
        CAPTURE(name);
        const int size = c["run_image_size"].is_number() ? c["run_image_size"].get<int>() : 0;
        const ModelSpec spec = load_model_dir(dir, size);
        VitModel model(spec);
        SafetensorsFile ref(ref_path);
        const auto pixels = tensor(ref, "pixels");
        const auto want = tensor(ref, "logits");
        const std::int64_t B = static_cast<std::int64_t>(pixels.size() / model.input_size());
        REQUIRE(B * model.input_size() == static_cast<std::int64_t>(pixels.size()));
        std::vector<float> logits(static_cast<std::size_t>(B) * model.config().num_classes);
        model.forward(pixels.data(), B, logits.data());
        REQUIRE(logits.size() == want.size());
        std::printf("%s (%s, %s)\n", name.c_str(), spec.format.c_str(), spec.family.c_str());
        CHECK(report("logits", logits, want) <= 1e-4f * max_abs(want));

        const auto pooled = tensor(ref, "pooled");
        std::vector<float> feat(static_cast<std::size_t>(B) * model.feature_dim());
        model.forward_features(pixels.data(), B, feat.data());
        REQUIRE(feat.size() == pooled.size());
        CHECK(report("head input features", feat, pooled) <= 1e-4f * std::max(1.f, max_abs(pooled)));

        // The processor's semantics: photo.png through the directory's own preprocessing.
        const auto img = preprocess_file(fixtures() / "hub" / "photo.png", spec.preprocess, spec.model.in_chans);
        const auto want_img = tensor(ref, "image_pixels");
        REQUIRE(img.size() == want_img.size());
        CHECK(report("preprocessed photo.png", img, want_img) <= 1e-5f);
        std::vector<float> img_logits(static_cast<std::size_t>(model.config().num_classes));
        model.forward(img.data(), 1, img_logits.data());
        const auto want_il = tensor(ref, "image_logits");
        CHECK(report("photo.png logits", img_logits, want_il) <= 1e-4f * max_abs(want_il));
        ++checked;
    }
    CHECK(checked >= 18);
}

TEST_CASE("unsupported Hub directories are refused by name") {
    const auto hub = fixtures() / "hub";
    CHECK(error_of(hub / "bad_bin_only").find("pytorch_model.bin") != std::string::npos);
    CHECK(error_of(hub / "bad_bin_only").find("scripts/export_weights.py") != std::string::npos);
    CHECK(error_of(hub / "bad_model_type").find("model_type \"swin\"") != std::string::npos);
    CHECK(error_of(hub / "bad_extra_tensor").find("unknown tensor") != std::string::npos);
}
