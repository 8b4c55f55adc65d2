// Checks safetensors files against the tensor table implied by a ModelConfig.
#include "weights.hpp"

#include <cmath>
#include <cstring>
#include <set>

#include "errors.hpp"

namespace vit {

const TensorView& CheckedWeights::at(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) throw ModelError("tensor \"" + name + "\" is missing");
    return *it->second.second;
}

std::vector<float> CheckedWeights::load(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) throw ModelError("tensor \"" + name + "\" is missing");
    auto v = to_f32(*it->second.second);
    it->second.first->release(*it->second.second);
    return v;
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

std::vector<float> CheckedWeights::load_head(const std::string& name) const {
    const TensorView* t = head_file_ ? head_file_->find(name) : nullptr;
    if (!t) throw ModelError("head tensor \"" + name + "\" is missing");
    return to_f32(*t);
}

CheckedWeights open_weights(const std::vector<std::filesystem::path>& files, const ModelConfig& c, bool external_head) {
    CheckedWeights w;
    for (const auto& path : files) {
        w.files_.push_back(std::make_unique<SafetensorsFile>(path));
        const SafetensorsFile* f = w.files_.back().get();
        for (const auto& [name, t] : f->tensors()) {
            auto [it, fresh] = w.index_.emplace(name, std::make_pair(f, &t));
            if (!fresh)
                throw ModelError(path.string() + ": tensor \"" + name + "\" is also in " +
                                 it->second.first->path().string());
        }
    }
    // A message names the file the tensor was found in; a missing tensor, the file (or first shard) searched.
    const std::string first = files.empty() ? std::string("weights") : files.front().string();
    auto where = [&](const std::string& name) {
        auto it = w.index_.find(name);
        return (it == w.index_.end() ? first : it->second.first->path().string()) + ": ";
    };
    const auto specs = expected_tensors(c, external_head);
    std::set<std::string> expected;
    if (external_head)
        for (const auto& name : head_tensor_names(c.layout)) expected.insert(name);  // present or not, unused
    for (const auto& s : specs) {
        expected.insert(s.name);
        auto it = w.index_.find(s.name);
        if (it == w.index_.end()) {
            if (s.optional) continue;
            throw ModelError(where(s.name) + "tensor \"" + s.name + "\" is missing (expected shape " +
                             shape_str(s.shape) + ")");
        }
        const TensorView& t = *it->second.second;
        if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
            throw ModelError(where(s.name) + "tensor \"" + s.name + "\" has dtype " + to_string(t.dtype) +
                             ", expected F32, F16 or BF16");
        if (t.shape != s.shape)
            throw ModelError(where(s.name) + "tensor \"" + s.name + "\" has shape " + t.shape_str() + ", expected " +
                             shape_str(s.shape));
    }
    for (const auto& [name, entry] : w.index_)
        if (!expected.count(name))
            throw ModelError(where(name) + "unknown tensor \"" + name + "\" " + entry.second->shape_str() +
                             " (not part of the configured architecture)");
    for (const auto& s : specs) {
        auto it = w.index_.find(s.name);
        if (it == w.index_.end()) continue;
        const TensorView& t = *it->second.second;
        if (std::size_t bad = count_non_finite(t))
            w.warnings.push_back(where(s.name) + "tensor \"" + s.name + "\" has " + std::to_string(bad) +
                                 " NaN/Inf value" + (bad > 1 ? "s" : ""));
        it->second.first->release(t);
    }
    return w;
}

CheckedWeights open_weights(const ModelSpec& spec) {
    const bool external = !spec.head_path.empty();
    CheckedWeights w = open_weights(
        spec.weight_shards.empty() ? std::vector<std::filesystem::path>{spec.weights_path} : spec.weight_shards,
        spec.model, external);
    if (!external) return w;
    w.head_file_ = std::make_unique<SafetensorsFile>(spec.head_path);
    const std::string where = spec.head_path.string() + ": ";
    const std::int64_t K = spec.model.num_classes, E = spec.model.head_in_features();
    const std::pair<const char*, std::vector<std::int64_t>> want[] = {{"head.weight", {K, E}}, {"head.bias", {K}}};
    for (const auto& [name, shape] : want) {
        const TensorView* t = w.head_file_->find(name);
        if (!t)
            throw ModelError(where + "tensor \"" + name + "\" is missing (expected shape " + shape_str(shape) + ")");
        if (t->dtype != DType::F32 && t->dtype != DType::F16 && t->dtype != DType::BF16)
            throw ModelError(where + "tensor \"" + name + "\" has dtype " + to_string(t->dtype) +
                             ", expected F32, F16 or BF16");
        if (t->shape != shape)
            throw ModelError(where + "tensor \"" + name + "\" has shape " + t->shape_str() + ", expected " +
                             shape_str(shape));
    }
    for (const auto& [name, t] : w.head_file_->tensors())
        if (name != "head.weight" && name != "head.bias")
            throw ModelError(where + "unknown tensor \"" + name + "\" (a head file holds head.weight and head.bias)");
    return w;
}

}  // namespace vit
