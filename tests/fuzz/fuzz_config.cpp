// Fuzz target: config.json parsing and validation (load_model_spec on a file in a scratch folder that also
// holds a labels.txt, so "labels": "labels.txt" resolves). Oracles: only vit::ModelError may escape; an
// accepted config satisfies what the model code relies on (divisibility, positive sizes, labels count,
// bounded tensor sizes) and survives a to_json/from_json round trip unchanged.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "errors.hpp"
#include "fuzz_common.hpp"
#include "weights.hpp"

namespace {

void check_spec(const vit::ModelSpec& s) {
    const vit::ModelConfig& m = s.model;
    FUZZ_CHECK(m.image_size > 0 && m.patch_size > 0 && m.image_size % m.patch_size == 0);
    FUZZ_CHECK(m.embed_dim > 0 && m.num_heads > 0 && m.embed_dim % m.num_heads == 0);
    FUZZ_CHECK(m.head_dim() * m.num_heads == m.embed_dim);
    FUZZ_CHECK(m.in_chans == 1 || m.in_chans == 3);
    FUZZ_CHECK(m.depth > 0 && m.mlp_dim > 0 && m.num_classes > 0);
    FUZZ_CHECK(m.num_tokens() > 0);
    FUZZ_CHECK(m.layer_norm_eps > 0 && m.layer_norm_eps < 1);
    FUZZ_CHECK(static_cast<int>(s.labels.size()) == m.num_classes);
    FUZZ_CHECK(s.preprocess.crop == m.image_size && s.preprocess.resize >= s.preprocess.crop);
    FUZZ_CHECK(static_cast<int>(s.preprocess.mean.size()) == m.in_chans);
    FUZZ_CHECK(static_cast<int>(s.preprocess.std.size()) == m.in_chans);
    for (float v : s.preprocess.std) FUZZ_CHECK(v > 0);
    FUZZ_CHECK(!s.weights_path.empty());

    // Every tensor the weights check will ask for stays inside 2^31 elements.
    std::int64_t total = 0;
    for (const auto& t : vit::expected_tensors(m)) {
        std::int64_t n = 1;
        for (auto d : t.shape) {
            FUZZ_CHECK(d > 0);
            n *= d;
        }
        FUZZ_CHECK(n <= (std::int64_t{1} << 31));
        total += n;
    }
    FUZZ_CHECK(total == vit::parameter_count(m));

    // Round trips: what to_json writes, from_json reads back identically.
    const nlohmann::json jm = m;
    const vit::ModelConfig m2 = jm.get<vit::ModelConfig>();
    FUZZ_CHECK(nlohmann::json(m2) == jm);
    const nlohmann::json jp = s.preprocess;
    const vit::PreprocessConfig p2 = jp.get<vit::PreprocessConfig>();
    FUZZ_CHECK(nlohmann::json(p2) == jp);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto labels = [] {
        const char text[] = "cat\ndog\nbird\n";
        return vit_fuzz::scratch().write("labels.txt", text, sizeof text - 1);
    }();
    (void)labels;
    const auto path = vit_fuzz::scratch().write("config.json", data, size);
    try {
        check_spec(vit::load_model_spec(path));
    } catch (const vit::ModelError&) {
    }
    return 0;
}
