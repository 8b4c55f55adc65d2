// Config parsing and validation: every error names the key and what was expected.
#include <doctest/doctest.h>

#include <unistd.h>

#include <fstream>

#include "config.hpp"
#include "errors.hpp"
#include "test_util.hpp"

using namespace vit;
namespace fs = std::filesystem;

namespace {

fs::path write_config(const std::string& text, const std::string& name = "config.json") {
    static const test::TempDir dir("config");  // removed at exit
    std::ofstream(dir / name) << text;
    return dir / name;
}

const char* kGood = R"({"model": {"image_size": 32, "patch_size": 16, "in_chans": 3, "embed_dim": 32, "depth": 2,
  "num_heads": 4, "mlp_dim": 64, "qkv_bias": true, "layer_norm_eps": 1e-6, "num_classes": 3,
  "class_token": true, "global_pool": "token", "fc_norm": false},
  "preprocess": {"resize": 36, "crop": 32, "interpolation": "bilinear", "antialias": true,
                 "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
  "labels": ["a", "b", "c"], "weights": "w.safetensors"})";

std::string with(const std::string& from, const std::string& to) {
    std::string s = kGood;
    const auto pos = s.find(from);
    REQUIRE(pos != std::string::npos);
    return s.replace(pos, from.size(), to);
}

std::string error_of(const std::string& text) {
    const fs::path p = write_config(text);
    try {
        load_model_spec(p);
    } catch (const ModelError& e) {
        const std::string msg = e.what();
        const std::string prefix = p.string() + ": ";
        CHECK(msg.rfind(prefix, 0) == 0);  // every message starts with the file
        return msg.substr(prefix.size());
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("a valid config loads with paths resolved next to it") {
    const fs::path p = write_config(kGood);
    const ModelSpec s = load_model_spec(p);
    CHECK(s.model.embed_dim == 32);
    CHECK(s.model.num_tokens() == 5);
    CHECK(s.preprocess.interpolation == Interpolation::Bilinear);
    CHECK(s.labels == std::vector<std::string>{"a", "b", "c"});
    CHECK(s.weights_path == p.parent_path() / "w.safetensors");
    CHECK(load_model_spec(p, "/x/y.safetensors").weights_path == "/x/y.safetensors");
}

TEST_CASE("labels from a file relative to the config") {
    const fs::path p = write_config(with(R"(["a", "b", "c"])", R"("labels.txt")"));
    std::ofstream(p.parent_path() / "labels.txt") << "cat\ndog\nbird\n";
    CHECK(load_model_spec(p).labels == std::vector<std::string>{"cat", "dog", "bird"});
    std::ofstream(p.parent_path() / "labels.txt") << "cat\ndog\n";
    CHECK(error_of(with(R"(["a", "b", "c"])", R"("labels.txt")")) ==
          "labels has 2 entries, expected 3 (model.num_classes)");
}

TEST_CASE("config errors name the key and the problem") {
    CHECK(error_of(with(R"("num_heads": 4)", R"("num_heads": 3)")) ==
          "model.embed_dim 32 is not divisible by model.num_heads 3");
    CHECK(error_of(with(R"("patch_size": 16)", R"("patch_size": 10)")) ==
          "model.image_size 32 is not divisible by model.patch_size 10");
    CHECK(error_of(with(R"("depth": 2,)", "")) == "model.depth is missing");
    CHECK(error_of(with(R"("depth": 2)", R"("depth": "two")")) == "model.depth has the wrong type: got string \"two\"");
    CHECK(error_of(with(R"("depth": 2)", R"("depth": 0)")) == "model.depth must be positive, got 0");
    CHECK(error_of(with(R"("global_pool": "token")", R"("global_pool": "max")")) ==
          "model.global_pool \"max\" is not one of \"token\", \"avg\", \"token_dist\", \"token_avg\"");
    CHECK(error_of(with(R"("depth": 2)", R"("depth": 2, "dropout": 0.1)")) == "model.dropout is not a known key");
    CHECK(error_of(with(R"("crop": 32)", R"("crop": 30)")) == "preprocess.crop 30 does not match model.image_size 32");
    CHECK(error_of(with(R"("mean": [0.5, 0.5, 0.5])", R"("mean": [0.5])")) ==
          "preprocess.mean has 1 values, expected 3 (model.in_chans)");
    CHECK(error_of(with(R"("interpolation": "bilinear")", R"("interpolation": "lanczos")")) ==
          "preprocess.interpolation \"lanczos\" is not one of \"bicubic\", \"bilinear\", \"nearest\"");
    CHECK(error_of(with(R"("class_token": true)", R"("class_token": false)")) ==
          "model.global_pool \"token\" needs model.class_token true");
    CHECK(error_of(R"({"preprocess": {}})") == "model is missing");
    CHECK(error_of("[1, 2]") == "top level must be an object");
    CHECK(error_of(with(R"("in_chans": 3)", R"("in_chans": 4)")) ==
          "model.in_chans 4 is not supported (expected 1 or 3)");
}

TEST_CASE("unreadable and malformed config files") {
    const fs::path p = write_config("{\"model\": ");
    try {
        load_model_spec(p);
        FAIL("no error");
    } catch (const ModelError& e) {
        CHECK(std::string(e.what()).rfind(p.string() + ": invalid JSON: ", 0) == 0);
    }
    CHECK_THROWS_WITH_AS(load_model_spec("/nonexistent/config.json"),
                         "/nonexistent/config.json: cannot open config file", ModelError);
    CHECK_THROWS_WITH_AS(load_model_dir("/nonexistent"),
                         "/nonexistent: not a model directory (expected DIR/config.json)", ModelError);
}
