// Attention rollout and last-layer class attention (see explain.hpp). Legend: H heads, T tokens, Nx prefix tokens.
#include "explain.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "errors.hpp"

namespace vit {

namespace {

// probs [H, T, T] -> out [T, T]: the heads fused elementwise.
void fuse_heads(const float* probs, int H, int T, HeadFusion fusion, double* out) {
    const std::size_t TT = static_cast<std::size_t>(T) * T;
    for (std::size_t i = 0; i < TT; ++i) {
        double acc = probs[i];
        for (int h = 1; h < H; ++h) {
            const double v = probs[h * TT + i];
            switch (fusion) {
                case HeadFusion::Mean: acc += v; break;
                case HeadFusion::Max: acc = std::max(acc, v); break;
                case HeadFusion::Min: acc = std::min(acc, v); break;
            }
        }
        out[i] = fusion == HeadFusion::Mean ? acc / H : acc;
    }
}

// a [T, T] -> A' = (A + I) / 2 with rows renormalised, after zeroing the floor(T*T*ratio) smallest entries
// (ordered by value, then position) other than a[0][0].
void rollout_layer(double* a, int T, double discard_ratio) {
    const std::size_t TT = static_cast<std::size_t>(T) * T;
    const std::size_t n = static_cast<std::size_t>(std::floor(static_cast<double>(TT) * discard_ratio));
    if (n > 0) {
        std::vector<std::uint32_t> idx(TT);
        std::iota(idx.begin(), idx.end(), 0u);
        auto less = [a](std::uint32_t x, std::uint32_t y) { return a[x] < a[y] || (a[x] == a[y] && x < y); };
        std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n - 1), idx.end(), less);
        for (std::size_t k = 0; k < n; ++k)
            if (idx[k] != 0) a[idx[k]] = 0;
    }
    for (int i = 0; i < T; ++i) {
        double* row = a + static_cast<std::size_t>(i) * T;
        row[i] += 1.0;
        double sum = 0;
        for (int j = 0; j < T; ++j) sum += row[j];  // (A + I) / 2 renormalised: the 1/2 cancels
        for (int j = 0; j < T; ++j) row[j] /= sum;
    }
}

// The class-token row of A'_L ... A'_1 over the patches, max-normalised.
std::vector<float> rollout_row(const std::vector<const double*>& layers, int T, int prefix) {
    std::vector<double> r(layers.back(), layers.back() + T), next(T);  // e_0ᵀ A'_L
    for (std::size_t l = layers.size() - 1; l-- > 0;) {
        std::fill(next.begin(), next.end(), 0.0);
        const double* a = layers[l];
        for (int i = 0; i < T; ++i) {
            const double ri = r[i];
            const double* row = a + static_cast<std::size_t>(i) * T;
            for (int j = 0; j < T; ++j) next[j] += ri * row[j];
        }
        r.swap(next);
    }
    std::vector<float> map(static_cast<std::size_t>(T - prefix));
    const double mx = *std::max_element(r.begin() + prefix, r.end());
    for (int j = prefix; j < T; ++j) map[j - prefix] = static_cast<float>(mx > 0 ? r[j] / mx : 0.0);
    return map;
}

}  // namespace

ExplainMethod parse_explain_method(const std::string& s) {
    if (s == "rollout") return ExplainMethod::Rollout;
    if (s == "attention") return ExplainMethod::Attention;
    throw std::invalid_argument("unknown explain method \"" + s + "\" (expected rollout or attention)");
}

HeadFusion parse_head_fusion(const std::string& s) {
    if (s == "mean") return HeadFusion::Mean;
    if (s == "max") return HeadFusion::Max;
    if (s == "min") return HeadFusion::Min;
    throw std::invalid_argument("unknown head fusion \"" + s + "\" (expected mean, max or min)");
}

std::string to_string(ExplainMethod m) { return m == ExplainMethod::Rollout ? "rollout" : "attention"; }

std::string to_string(HeadFusion f) { return f == HeadFusion::Mean ? "mean" : f == HeadFusion::Max ? "max" : "min"; }

void check_explainable(const ModelConfig& cfg, const ExplainOptions& opt) {
    if (!cfg.class_token)
        throw ModelError("--method " + to_string(opt.method) +
                         " follows the class token's attention, but this model "
                         "has no class token (global_pool " +
                         to_string(cfg.global_pool) + "): no map to show");
    if (opt.head >= cfg.num_heads)
        throw ModelError("--head " + std::to_string(opt.head) + " is past the model's " +
                         std::to_string(cfg.num_heads) + " heads (0.." + std::to_string(cfg.num_heads - 1) + ")");
    if (!(opt.discard_ratio >= 0 && opt.discard_ratio < 1))
        throw ModelError("--discard-ratio " + std::to_string(opt.discard_ratio) + " is outside [0, 1)");
}

std::vector<float> rollout_map(const std::vector<const float*>& layers, int H, int T, int prefix, HeadFusion fusion,
                               double discard_ratio) {
    if (layers.empty()) throw std::invalid_argument("rollout_map: no layers");
    const std::size_t TT = static_cast<std::size_t>(T) * T;
    std::vector<std::vector<double>> fused(layers.size(), std::vector<double>(TT));
    std::vector<const double*> ptrs;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        fuse_heads(layers[l], H, T, fusion, fused[l].data());
        rollout_layer(fused[l].data(), T, discard_ratio);
        ptrs.push_back(fused[l].data());
    }
    return rollout_row(ptrs, T, prefix);
}

std::vector<float> class_attention_map(const float* last, int H, int T, int prefix, HeadFusion fusion, int head) {
    std::vector<double> row(static_cast<std::size_t>(T));
    const std::size_t TT = static_cast<std::size_t>(T) * T;
    for (int j = 0; j < T; ++j) {
        if (head >= 0) {
            row[j] = last[head * TT + j];
            continue;
        }
        double acc = last[j];
        for (int h = 1; h < H; ++h) {
            const double v = last[h * TT + j];
            acc = fusion == HeadFusion::Mean  ? acc + v
                  : fusion == HeadFusion::Max ? std::max(acc, v)
                                              : std::min(acc, v);
        }
        row[j] = fusion == HeadFusion::Mean ? acc / H : acc;
    }
    std::vector<float> map(static_cast<std::size_t>(T - prefix));
    const double mx = *std::max_element(row.begin() + prefix, row.end());
    for (int j = prefix; j < T; ++j) map[j - prefix] = static_cast<float>(mx > 0 ? row[j] / mx : 0.0);
    return map;
}

AttentionRecorder::AttentionRecorder(const ModelConfig& cfg, const ExplainOptions& opt)
    : cfg_(cfg), opt_(opt), grid_(cfg.grid()) {
    check_explainable(cfg, opt);
}

void AttentionRecorder::on_attention(int block, const float* probs, std::int64_t B, std::int64_t H, std::int64_t T) {
    const int prefix = cfg_.num_prefix_tokens();
    const bool last = block == cfg_.depth - 1;
    const std::size_t TT = static_cast<std::size_t>(T) * T;
    if (opt_.method == ExplainMethod::Attention) {
        if (!last) return;
        for (std::int64_t b = 0; b < B; ++b)
            maps_.push_back(class_attention_map(probs + b * H * TT, static_cast<int>(H), static_cast<int>(T), prefix,
                                                opt_.fusion, opt_.head));
        return;
    }
    if (fused_.size() != static_cast<std::size_t>(cfg_.depth)) fused_.resize(cfg_.depth);
    std::vector<double>& f = fused_[block];
    f.resize(static_cast<std::size_t>(B) * TT);
    for (std::int64_t b = 0; b < B; ++b) {
        fuse_heads(probs + b * H * TT, static_cast<int>(H), static_cast<int>(T), opt_.fusion, f.data() + b * TT);
        rollout_layer(f.data() + b * TT, static_cast<int>(T), opt_.discard_ratio);
    }
    if (!last) return;
    for (std::int64_t b = 0; b < B; ++b) {
        std::vector<const double*> layers;
        for (const auto& layer : fused_) layers.push_back(layer.data() + b * TT);
        maps_.push_back(rollout_row(layers, static_cast<int>(T), prefix));
    }
}

std::vector<float> AttentionRecorder::pop() {
    if (maps_.empty()) throw std::logic_error("AttentionRecorder: no map queued (the model has not run)");
    std::vector<float> m = std::move(maps_.front());
    maps_.pop_front();
    return m;
}

}  // namespace vit
