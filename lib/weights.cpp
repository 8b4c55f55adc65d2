// Checks a safetensors file against the tensor table implied by a ModelConfig.
#include "weights.hpp"

#include <cmath>
#include <cstring>
#include <set>

#include "errors.hpp"

namespace vit {

std::vector<TensorSpec> expected_tensors(const ModelConfig& c) {
    const std::int64_t D = c.embed_dim, M = c.mlp_dim, P = c.patch_size, C = c.in_chans, K = c.num_classes;
    std::vector<TensorSpec> t;
    t.push_back({"patch_embed.proj.weight", {D, C, P, P}});
    t.push_back({"patch_embed.proj.bias", {D}});
    if (c.class_token) t.push_back({"cls_token", {1, 1, D}});
    t.push_back({"pos_embed", {1, c.num_tokens(), D}});
    for (int i = 0; i < c.depth; ++i) {
        const std::string b = "blocks." + std::to_string(i) + ".";
        t.push_back({b + "norm1.weight", {D}});
        t.push_back({b + "norm1.bias", {D}});
        t.push_back({b + "attn.qkv.weight", {3 * D, D}});
        if (c.qkv_bias) t.push_back({b + "attn.qkv.bias", {3 * D}});
        t.push_back({b + "attn.proj.weight", {D, D}});
        t.push_back({b + "attn.proj.bias", {D}});
        t.push_back({b + "norm2.weight", {D}});
        t.push_back({b + "norm2.bias", {D}});
        t.push_back({b + "mlp.fc1.weight", {M, D}});
        t.push_back({b + "mlp.fc1.bias", {M}});
        t.push_back({b + "mlp.fc2.weight", {D, M}});
        t.push_back({b + "mlp.fc2.bias", {D}});
    }
    const std::string final_norm = c.uses_fc_norm() ? "fc_norm" : "norm";
    t.push_back({final_norm + ".weight", {D}});
    t.push_back({final_norm + ".bias", {D}});
    t.push_back({"head.weight", {K, D}});
    t.push_back({"head.bias", {K}});
    return t;
}

std::int64_t parameter_count(const ModelConfig& c) {
    std::int64_t n = 0;
    for (const auto& s : expected_tensors(c)) {
        std::int64_t p = 1;
        for (auto d : s.shape) p *= d;
        n += p;
    }
    return n;
}

const TensorView& CheckedWeights::at(const std::string& name) const {
    const TensorView* t = file->find(name);
    if (!t) throw ModelError(file->path().string() + ": tensor \"" + name + "\" is missing");
    return *t;
}

namespace {

std::string shape_str(const std::vector<std::int64_t>& s) {
    TensorView v;
    v.shape = s;
    return v.shape_str();
}

std::size_t count_non_finite(const TensorView& t) {
    std::size_t bad = 0;
    const std::int64_t n = t.numel();
    for (std::int64_t i = 0; i < n; ++i) {
        float f;
        if (t.dtype == DType::F32) std::memcpy(&f, t.data + 4 * i, 4);
        else {
            std::uint16_t h;
            std::memcpy(&h, t.data + 2 * i, 2);
            f = t.dtype == DType::F16 ? half_to_float(h) : bf16_to_float(h);
        }
        bad += !std::isfinite(f);
    }
    return bad;
}

}  // namespace

CheckedWeights open_weights(const std::filesystem::path& path, const ModelConfig& c) {
    CheckedWeights w;
    w.file = std::make_unique<SafetensorsFile>(path);
    const std::string where = path.string() + ": ";
    const auto specs = expected_tensors(c);
    std::set<std::string> expected;
    for (const auto& s : specs) {
        expected.insert(s.name);
        const TensorView* t = w.file->find(s.name);
        if (!t) throw ModelError(where + "tensor \"" + s.name + "\" is missing (expected shape " + shape_str(s.shape) + ")");
        if (t->dtype != DType::F32 && t->dtype != DType::F16 && t->dtype != DType::BF16)
            throw ModelError(where + "tensor \"" + s.name + "\" has dtype " + to_string(t->dtype) +
                             ", expected F32, F16 or BF16");
        if (t->shape != s.shape)
            throw ModelError(where + "tensor \"" + s.name + "\" has shape " + t->shape_str() + ", expected " +
                             shape_str(s.shape));
    }
    for (const auto& [name, t] : w.file->tensors())
        if (!expected.count(name))
            throw ModelError(where + "unknown tensor \"" + name + "\" " + t.shape_str() +
                             " (not part of the configured architecture)");
    for (const auto& s : specs) {
        const TensorView& t = *w.file->find(s.name);
        if (std::size_t bad = count_non_finite(t))
            w.warnings.push_back(where + "tensor \"" + s.name + "\" has " + std::to_string(bad) + " NaN/Inf value" +
                                 (bad > 1 ? "s" : ""));
        w.file->release(t);
    }
    return w;
}

}  // namespace vit
