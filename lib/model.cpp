// The ViT forward pass, one function per stage, on the op wrappers of ops.hpp.
#include "model.hpp"

#include <cmath>
#include <cstring>

#include "errors.hpp"
#include "weights.hpp"

namespace vit {

namespace {

// Weights come out of the file as F32/F16/BF16; ops take float32 and reorder them into their own layout.
std::vector<float> load(const CheckedWeights& w, const std::string& name) {
    const TensorView& t = w.at(name);
    auto v = to_f32(t);
    w.file->release(t);
    return v;
}

LayerNorm load_norm(const CheckedWeights& w, const std::string& prefix, int D, float eps) {
    auto g = load(w, prefix + ".weight"), b = load(w, prefix + ".bias");
    return LayerNorm(g.data(), b.data(), D, eps);
}

Linear load_linear(const CheckedWeights& w, const std::string& prefix, int K, int N, Linear::Epilogue ep,
                   Precision p, bool has_bias = true) {
    auto W = load(w, prefix + ".weight");
    std::vector<float> b;
    if (has_bias) b = load(w, prefix + ".bias");
    return Linear(W.data(), has_bias ? b.data() : nullptr, K, N, ep, p);
}

}  // namespace

VitModel::VitModel(const ModelSpec& spec, Precision precision, std::vector<std::string>* warnings)
    : spec_(spec), precision_(precision) {
    const ModelConfig& c = spec_.model;
    c.validate();
    CheckedWeights w = open_weights(spec_.weights_path, c);
    if (warnings) warnings->insert(warnings->end(), w.warnings.begin(), w.warnings.end());

    const int D = c.embed_dim, F = c.mlp_dim, CPP = c.in_chans * c.patch_size * c.patch_size;
    const auto eps = static_cast<float>(c.layer_norm_eps);
    // Patch embedding and head stay float32 in every precision: they are small and accuracy-sensitive.
    patch_proj_ = load_linear(w, "patch_embed.proj", CPP, D, Linear::Epilogue::None, Precision::F32);
    if (c.class_token) cls_token_ = load(w, "cls_token");
    pos_embed_ = load(w, "pos_embed");
    blocks_.reserve(c.depth);
    for (int i = 0; i < c.depth; ++i) {
        const std::string b = "blocks." + std::to_string(i) + ".";
        blocks_.push_back(BlockWeights{
            load_norm(w, b + "norm1", D, eps),
            load_linear(w, b + "attn.qkv", D, 3 * D, Linear::Epilogue::None, precision_, c.qkv_bias),
            Attention(c.num_heads, c.head_dim(), 1.0f / std::sqrt(static_cast<float>(c.head_dim()))),
            load_linear(w, b + "attn.proj", D, D, Linear::Epilogue::Residual, precision_),
            load_norm(w, b + "norm2", D, eps),
            load_linear(w, b + "mlp.fc1", D, F, Linear::Epilogue::Gelu, precision_),
            load_linear(w, b + "mlp.fc2", F, D, Linear::Epilogue::Residual, precision_),
        });
    }
    norm_ = load_norm(w, c.uses_fc_norm() ? "fc_norm" : "norm", D, eps);
    head_ = load_linear(w, "head", D, c.num_classes, Linear::Epilogue::None, Precision::F32);
}

std::int64_t VitModel::input_size() const {
    const auto& c = spec_.model;
    return static_cast<std::int64_t>(c.in_chans) * c.image_size * c.image_size;
}

std::int64_t VitModel::parameter_count() const { return vit::parameter_count(spec_.model); }

double VitModel::gflops_per_image() const {
    const auto& c = spec_.model;
    const double T = c.num_tokens(), D = c.embed_dim, F = c.mlp_dim, Np = c.num_patches();
    const double cpp = static_cast<double>(c.in_chans) * c.patch_size * c.patch_size;
    double f = 2 * Np * cpp * D;                                              // patch embedding
    f += c.depth * (2 * T * D * 3 * D + 2 * 2 * T * T * D + 2 * T * D * D + 2 * 2 * T * D * F);
    f += 2 * D * c.num_classes;                                               // head
    return f / 1e9;
}

std::size_t VitModel::weight_bytes() const {
    std::size_t n = patch_proj_.weight_bytes() + head_.weight_bytes();
    for (const auto& b : blocks_) n += b.qkv.weight_bytes() + b.proj.weight_bytes() + b.fc1.weight_bytes() + b.fc2.weight_bytes();
    return n + (cls_token_.size() + pos_embed_.size()) * sizeof(float);
}

void VitModel::ensure_scratch(std::int64_t B) {
    if (B <= scratch_batch_) return;
    const auto& c = spec_.model;
    const std::int64_t T = c.num_tokens(), D = c.embed_dim, H = c.num_heads;
    patches_.resize(B * c.num_patches() * c.in_chans * c.patch_size * c.patch_size);
    x_.resize(B * T * D);
    h_.resize(B * T * D);
    qkv_.resize(B * T * 3 * D);
    scores_.resize(B * H * T * T);
    mlp_.resize(B * T * c.mlp_dim);
    pooled_.resize(B * D);
    pooled_norm_.resize(B * D);
    scratch_batch_ = B;
}

void VitModel::patch_embed(const float* images, std::int64_t B) {
    const auto& c = spec_.model;
    const int C = c.in_chans, S = c.image_size, P = c.patch_size, G = c.grid();
    const std::int64_t CPP = static_cast<std::int64_t>(C) * P * P, Np = c.num_patches();
    // Unfold [B, C, S, S] into rows [B*Np, C*P*P] ordered (c, py, px) like the conv weight [D, C, P, P].
#pragma omp parallel for collapse(2)
    for (std::int64_t b = 0; b < B; ++b)
        for (int gy = 0; gy < G; ++gy)
            for (int gx = 0; gx < G; ++gx) {
                float* row = patches_.data() + (b * Np + gy * G + gx) * CPP;
                for (int ch = 0; ch < C; ++ch)
                    for (int py = 0; py < P; ++py) {
                        const float* src = images + ((b * C + ch) * S + gy * P + py) * S + gx * P;
                        std::memcpy(row + (ch * P + py) * P, src, P * sizeof(float));
                    }
            }
    patch_proj_.forward(patches_.data(), B * Np, h_.data());   // h_ holds [B*Np, D] until add_cls_and_pos
}

void VitModel::add_cls_and_pos(std::int64_t B) {
    const auto& c = spec_.model;
    const std::int64_t D = c.embed_dim, T = c.num_tokens(), Np = c.num_patches(), prefix = c.class_token ? 1 : 0;
    for (std::int64_t b = 0; b < B; ++b) {
        float* xb = x_.data() + b * T * D;
        if (prefix)
            for (std::int64_t i = 0; i < D; ++i) xb[i] = cls_token_[i] + pos_embed_[i];
        const float* pe = h_.data() + b * Np * D;
        for (std::int64_t t = 0; t < Np; ++t)
            for (std::int64_t i = 0; i < D; ++i)
                xb[(t + prefix) * D + i] = pe[t * D + i] + pos_embed_[(t + prefix) * D + i];
    }
}

void VitModel::block(const BlockWeights& w, std::int64_t B, bool class_token_only) {
    const auto& c = spec_.model;
    const std::int64_t T = c.num_tokens(), D = c.embed_dim, M = B * T;
    w.norm1.forward(x_.data(), M, h_.data());                       // h = norm1(x)
    w.qkv.forward(h_.data(), M, qkv_.data());                       // qkv = h·Wqkvᵀ + b   [B, T, 3, H, d]
    w.attn.forward(qkv_.data(), B, T, scores_.data(), h_.data());   // h = attention(q, k, v)   [B, T, D]
    float* x = x_.data();
    float* h = h_.data();
    std::int64_t rows = M;
    if (class_token_only) {
        // Token pooling reads only the class token after the last block, and everything after attention is
        // per token: run the rest of the block on the B class-token rows alone, packed into pooled_.
        for (std::int64_t b = 0; b < B; ++b) {
            std::memcpy(&pooled_[b * D], &x_[b * T * D], D * sizeof(float));
            std::memcpy(&pooled_norm_[b * D], &h_[b * T * D], D * sizeof(float));
        }
        x = pooled_.data();
        h = pooled_norm_.data();
        rows = B;
    }
    w.proj.forward(h, rows, x);                                     // x += h·Woᵀ + bo
    w.norm2.forward(x, rows, h);                                    // h = norm2(x)
    w.fc1.forward(h, rows, mlp_.data());                            // u = gelu(h·W1ᵀ + b1)   [rows, F]
    w.fc2.forward(mlp_.data(), rows, x);                            // x += u·W2ᵀ + b2
}

void VitModel::pool_and_head(std::int64_t B, float* logits) {
    const auto& c = spec_.model;
    const std::int64_t T = c.num_tokens(), D = c.embed_dim, prefix = c.class_token ? 1 : 0;
    if (c.global_pool == GlobalPool::Token) {
        // The last block left the class tokens packed in pooled_ [B, D]; LayerNorm is per token.
        norm_.forward(pooled_.data(), B, pooled_norm_.data());
    } else {
        const float* src = x_.data();
        if (!c.fc_norm) {                    // timm: norm every token, then average
            norm_.forward(x_.data(), B * T, h_.data());
            src = h_.data();
        }
        const double inv = 1.0 / static_cast<double>(T - prefix);
        for (std::int64_t b = 0; b < B; ++b)
            for (std::int64_t i = 0; i < D; ++i) {
                double s = 0;
                for (std::int64_t t = prefix; t < T; ++t) s += src[(b * T + t) * D + i];
                pooled_[b * D + i] = static_cast<float>(s * inv);
            }
        if (c.fc_norm) norm_.forward(pooled_.data(), B, pooled_norm_.data());
        else pooled_norm_.assign(pooled_.begin(), pooled_.end());
    }
    head_.forward(pooled_norm_.data(), B, logits);
}

void VitModel::forward(const float* images, std::int64_t B, float* logits) {
    if (B <= 0) return;
    ensure_scratch(B);
    patch_embed(images, B);
    add_cls_and_pos(B);
    const bool token_pool = spec_.model.global_pool == GlobalPool::Token;
    for (std::size_t i = 0; i < blocks_.size(); ++i) block(blocks_[i], B, token_pool && i + 1 == blocks_.size());
    pool_and_head(B, logits);
}

}  // namespace vit
