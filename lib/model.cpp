// The ViT forward pass, one function per stage, on the op wrappers of ops.hpp (the ops are built from the weights
// in model_load.cpp).
#include "model.hpp"

#include <cmath>
#include <cstring>

#include "arch.hpp"
#include "errors.hpp"
#include "model_impl.hpp"

namespace vit {

namespace {

// out[b, :] = mean over tokens [first, T) of src [B, T, D], accumulated in double; rows of out are `stride` apart.
void mean_tokens(const float* src, std::int64_t B, std::int64_t T, std::int64_t D, std::int64_t first, float* out,
                 std::int64_t stride) {
    const double inv = 1.0 / static_cast<double>(T - first);
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t i = 0; i < D; ++i) {
            double s = 0;
            for (std::int64_t t = first; t < T; ++t) s += src[(b * T + t) * D + i];
            out[b * stride + i] = static_cast<float>(s * inv);
        }
}

}  // namespace

void VitModel::Impl::ensure_scratch(std::int64_t B) {
    if (B <= scratch_batch) return;
    const auto& m = c();
    const std::int64_t T = m.num_tokens(), D = m.embed_dim, F = m.mlp_dim;
    const bool glu = m.act == Activation::SwiGlu;
    patches.resize(B * m.num_patches() * m.in_chans * m.patch_size * m.patch_size);
    x.resize(B * T * D);
    h.resize(B * T * D);
    qkv.resize(B * T * 3 * D);
    mlp.resize(B * T * F * (glu ? 2 : 1));
    if (glu) gate.resize(B * T * F);
    px.resize(B * 2 * D);
    ph.resize(B * 2 * D);
    feat.resize(B * 2 * D);
    feat2.resize(B * 2 * D);
    logits2.resize(B * m.num_classes);
    if (precision == Precision::BF16 || int8_attention_amx()) {
        hb.resize(B * T * D);
        qkvb.resize(B * T * 3 * D);
    }
    if (precision == Precision::BF16) {
        mlpb.resize(B * T * F * (glu ? 2 : 1));
        phb.resize(B * 2 * D);
    }
    scratch_batch = B;
}

int VitModel::Impl::head_rows(FeaturePool p) const {
    if (p == FeaturePool::Cls) return 1;
    if (p == FeaturePool::Mean) return 0;
    switch (c().global_pool) {
        case GlobalPool::Token: return 1;
        case GlobalPool::TokenDist: return 2;
        default: return 0;
    }
}

void VitModel::Impl::patch_embed(const float* images, std::int64_t B) {
    const auto& m = c();
    const int C = m.in_chans, S = m.image_size, P = m.patch_size, G = m.grid();
    const std::int64_t CPP = static_cast<std::int64_t>(C) * P * P, Np = m.num_patches();
    // Unfold [B, C, S, S] into rows [B*Np, C*P*P] ordered (c, py, px) like the conv weight [D, C, P, P].
    float* rows_base = patches.data();
#pragma omp parallel for collapse(2)
    for (std::int64_t b = 0; b < B; ++b)
        for (int gy = 0; gy < G; ++gy)
            for (int gx = 0; gx < G; ++gx) {
                float* row = rows_base + (b * Np + gy * G + gx) * CPP;
                for (int ch = 0; ch < C; ++ch)
                    for (int py = 0; py < P; ++py) {
                        const float* src = images + ((b * C + ch) * S + gy * P + py) * S + gx * P;
                        std::memcpy(row + (ch * P + py) * P, src, P * sizeof(float));
                    }
            }
    patch_proj.forward(patches.data(), B * Np, h.data());  // h holds [B*Np, D] until add_prefix_and_pos
}

void VitModel::Impl::add_prefix_and_pos(std::int64_t B) {
    const auto& m = c();
    const std::int64_t D = m.embed_dim, T = m.num_tokens(), Np = m.num_patches(), Nx = m.num_prefix_tokens();
    for (std::int64_t b = 0; b < B; ++b) {
        float* xb = x.data() + b * T * D;
        for (std::int64_t i = 0; i < Nx * D; ++i) xb[i] = prefix[i] + pos[i];
        const float* pe = h.data() + b * Np * D;
        for (std::int64_t i = 0; i < Np * D; ++i) xb[Nx * D + i] = pe[i] + pos[Nx * D + i];
    }
    if (has_norm_pre) {
        norm_pre.forward(x.data(), B * T, h.data());
        std::swap(x, h);
    }
}

void VitModel::Impl::block(int index, std::int64_t B, int n) {
    if (precision == Precision::BF16) return block_bf16(index, B, n);
    const BlockWeights& w = blocks[static_cast<std::size_t>(index)];
    const auto& m = c();
    const std::int64_t T = m.num_tokens(), D = m.embed_dim, F = m.mlp_dim, M = B * T;
    w.norm1.forward(x.data(), M, h.data());  // h = norm1(x)
    w.qkv.forward(h.data(), M, qkv.data());  // qkv = h·Wqkvᵀ + b   [B, T, 3, H, d]
    if (sink) probs.resize(static_cast<std::size_t>(B * m.num_heads * T * T));
    if (int8_attention_amx()) {
        to_bf16(qkv.data(), M * 3 * D, qkvb.data());
        w.attn_bf16.forward(qkvb.data(), B, T, sink ? probs.data() : nullptr, hb.data(), attention_queries(n));
        from_bf16(hb.data(), M * D, h.data());  // h = attention(q, k, v)   [B, T, D]
    } else {
        w.attn.forward(qkv.data(), B, T, sink ? probs.data() : nullptr, h.data(), attention_queries(n));
    }
    if (sink) sink(index, probs.data(), B, m.num_heads, T);
    float* xr = x.data();
    float* hr = h.data();
    std::int64_t rows = M;
    if (n > 0) {
        for (std::int64_t b = 0; b < B; ++b) {
            std::memcpy(&px[b * n * D], &x[b * T * D], n * D * sizeof(float));
            std::memcpy(&ph[b * n * D], &h[b * T * D], n * D * sizeof(float));
        }
        xr = px.data();
        hr = ph.data();
        rows = B * n;
    }
    w.proj.forward(hr, rows, xr);   // x += h·Woᵀ + bo   (layer scale folded in)
    w.norm2.forward(xr, rows, hr);  // h = norm2(x)
    if (m.act == Activation::SwiGlu) {
        w.fc1.forward(hr, rows, mlp.data());       // [a, b] = h·W1ᵀ + b1   [rows, 2F]
        swiglu(mlp.data(), rows, F, gate.data());  // u = silu(a) * b   [rows, F]
        w.fc2.forward(gate.data(), rows, xr);      // x += u·W2ᵀ + b2
    } else if (precision == Precision::INT8) {
        w.fc1.forward(hr, rows, mlp_q);  // u = act(h·W1ᵀ + b1)   [rows, F], quantised per row for fc2
        w.fc2.forward(mlp_q, xr);        // x += u·W2ᵀ + b2
    } else {
        w.fc1.forward(hr, rows, mlp.data());  // u = act(h·W1ᵀ + b1)   [rows, F]
        w.fc2.forward(mlp.data(), rows, xr);  // x += u·W2ᵀ + b2
    }
}

void VitModel::Impl::block_bf16(int index, std::int64_t B, int n) {
    const BlockWeights& w = blocks[static_cast<std::size_t>(index)];
    const auto& m = c();
    const std::int64_t T = m.num_tokens(), D = m.embed_dim, F = m.mlp_dim, M = B * T;
    w.norm1.forward_bf16(x.data(), M, hb.data());  // hb = norm1(x)   bf16
    if (sink) probs.resize(static_cast<std::size_t>(B * m.num_heads * T * T));
    float* p = sink ? probs.data() : nullptr;
    const std::int64_t queries = attention_queries(n);
    if (bf16_attention()) {
        w.qkv.forward_bf16(hb.data(), M, qkvb.data());                  // [B, T, 3, H, d] bf16
        w.attn_bf16.forward(qkvb.data(), B, T, p, hb.data(), queries);  // hb = attention(q, k, v)   [B, T, D] bf16
    } else {
        w.qkv.forward_bf16(hb.data(), M, qkv.data());  // [B, T, 3, H, d] f32
        w.attn.forward(qkv.data(), B, T, p, h.data(), queries);
        to_bf16(h.data(), M * D, hb.data());
    }
    if (sink) sink(index, probs.data(), B, m.num_heads, T);
    float* xr = x.data();
    std::uint16_t* hr = hb.data();
    std::int64_t rows = M;
    if (n > 0) {  // see block()
        for (std::int64_t b = 0; b < B; ++b) {
            std::memcpy(&px[b * n * D], &x[b * T * D], n * D * sizeof(float));
            std::memcpy(&phb[b * n * D], &hb[b * T * D], n * D * sizeof(std::uint16_t));
        }
        xr = px.data();
        hr = phb.data();
        rows = B * n;
    }
    w.proj.forward_bf16(hr, rows, xr);   // x += ctx·Woᵀ + bo
    w.norm2.forward_bf16(xr, rows, hr);  // hb = norm2(x)   bf16
    if (m.act == Activation::SwiGlu) {
        w.fc1.forward_bf16(hr, rows, mlp.data());  // [a, b]   [rows, 2F] f32
        swiglu(mlp.data(), rows, F, gate.data());
        w.fc2.forward(gate.data(), rows, xr);
    } else {
        w.fc1.forward_bf16(hr, rows, mlpb.data());  // u = act(h·W1ᵀ + b1)   [rows, F] bf16
        w.fc2.forward_bf16(mlpb.data(), rows, xr);  // x += u·W2ᵀ + b2
    }
}

void VitModel::Impl::encode(const float* images, std::int64_t B, int n) {
    ensure_scratch(B);
    patch_embed(images, B);
    add_prefix_and_pos(B);
    const int depth = static_cast<int>(blocks.size());
    for (int i = 0; i < depth; ++i) block(i, B, i + 1 == depth ? n : 0);
}

void VitModel::Impl::pool(std::int64_t B, int n, FeaturePool p, float* out) {
    const auto& m = c();
    const std::int64_t T = m.num_tokens(), D = m.embed_dim, Nx = m.num_prefix_tokens();
    if (n > 0) {
        // The last block left the first n tokens of each image packed in px [B*n, D]; LayerNorm is per token.
        norm.forward(px.data(), B * n, ph.data());
        for (std::int64_t b = 0; b < B; ++b) std::memcpy(out + b * D, &ph[b * n * D], D * sizeof(float));
        return;
    }
    if (m.uses_fc_norm()) {  // timm avg + fc_norm: average, then norm
        mean_tokens(x.data(), B, T, D, Nx, h.data(), D);
        norm.forward(h.data(), B, out);
        return;
    }
    norm.forward(x.data(), B * T, h.data());  // norm every token
    if (p == FeaturePool::Head && m.global_pool == GlobalPool::TokenAvg) {
        for (std::int64_t b = 0; b < B; ++b) std::memcpy(out + b * 2 * D, &h[b * T * D], D * sizeof(float));
        mean_tokens(h.data(), B, T, D, Nx, out + D, 2 * D);
        return;
    }
    mean_tokens(h.data(), B, T, D, Nx, out, D);
}

VitModel::VitModel(const ModelSpec& spec, Precision precision, std::vector<std::string>* warnings)
    : impl_(std::make_unique<Impl>(spec, precision)) {
    impl_->load(warnings);
}

VitModel::~VitModel() = default;

const ModelSpec& VitModel::spec() const { return impl_->spec; }
Precision VitModel::precision() const { return impl_->precision; }
void VitModel::set_attention_sink(AttentionSink sink) { impl_->sink = std::move(sink); }

std::int64_t VitModel::input_size() const {
    const auto& c = config();
    return static_cast<std::int64_t>(c.in_chans) * c.image_size * c.image_size;
}

std::int64_t VitModel::parameter_count() const { return vit::parameter_count(config()); }

double VitModel::gflops_per_image() const {
    const auto& c = config();
    const double T = c.num_tokens(), D = c.embed_dim, F = c.mlp_dim, Np = c.num_patches();
    const double cpp = static_cast<double>(c.in_chans) * c.patch_size * c.patch_size;
    const double mlp = c.act == Activation::SwiGlu ? 3 * D * F : 2 * D * F;
    double f = 2 * Np * cpp * D;  // patch embedding
    f += c.depth * (2 * T * D * 3 * D + 2 * 2 * T * T * D + 2 * T * D * D + 2 * T * mlp);
    f += 2 * static_cast<double>(c.head_in_features()) * c.num_classes;  // head
    return f / 1e9;
}

std::size_t VitModel::weight_bytes() const {
    const Impl& m = *impl_;
    std::size_t n = m.patch_proj.weight_bytes() + m.head.weight_bytes() + m.head_dist.weight_bytes();
    for (const auto& b : m.blocks)
        n += b.qkv.weight_bytes() + b.proj.weight_bytes() + b.fc1.weight_bytes() + b.fc2.weight_bytes();
    return n + (m.prefix.size() + m.pos.size()) * sizeof(float);
}

int VitModel::feature_dim(FeaturePool pool) const {
    return pool == FeaturePool::Head ? config().head_in_features() : config().embed_dim;
}

void VitModel::forward(const float* images, std::int64_t B, float* logits) {
    if (B <= 0) return;
    Impl& m = *impl_;
    const int n = m.head_rows(FeaturePool::Head);
    m.encode(images, B, n);
    if (m.c().global_pool == GlobalPool::TokenDist) {
        // Distilled DeiT at inference: the mean of the class head and the distillation head.
        const std::int64_t D = m.c().embed_dim, K = m.c().num_classes;
        m.norm.forward(m.px.data(), B * 2, m.ph.data());
        for (std::int64_t b = 0; b < B; ++b) {
            std::memcpy(&m.feat[b * D], &m.ph[(2 * b) * D], D * sizeof(float));
            std::memcpy(&m.feat2[b * D], &m.ph[(2 * b + 1) * D], D * sizeof(float));
        }
        m.head.forward(m.feat.data(), B, logits);
        m.head_dist.forward(m.feat2.data(), B, m.logits2.data());
        for (std::int64_t i = 0; i < B * K; ++i) logits[i] = (logits[i] + m.logits2[i]) * 0.5f;
        return;
    }
    m.pool(B, n, FeaturePool::Head, m.feat.data());
    m.head.forward(m.feat.data(), B, logits);
}

void VitModel::prepare(std::int64_t B) {
    if (B <= 0) return;
    Impl& m = *impl_;
    const auto& c = m.c();
    const std::int64_t T = c.num_tokens(), M = B * T;
    const int n = m.head_rows(FeaturePool::Head), depth = static_cast<int>(m.blocks.size());
    m.patch_proj.prepare(B * c.num_patches());
    if (m.has_norm_pre) m.norm_pre.prepare(M);
    for (int i = 0; i < depth; ++i) {
        const BlockWeights& w = m.blocks[static_cast<std::size_t>(i)];
        const std::int64_t rows = i + 1 == depth && n > 0 ? B * n : M;  // see block()
        if (m.precision == Precision::BF16) {
            const bool glu = c.act == Activation::SwiGlu;  // see block_bf16()
            w.qkv.prepare_bf16(M, m.bf16_attention());
            if (m.bf16_attention()) {
                w.attn_bf16.prepare(B, T);
            } else {
                w.attn.prepare(B, T);
            }
            w.proj.prepare(rows);
            w.fc1.prepare_bf16(rows, !glu);
            w.fc2.prepare(rows);
            continue;
        }
        w.norm1.prepare(M);
        w.qkv.prepare(M);
        if (m.int8_attention_amx()) {
            w.attn_bf16.prepare(B, T);
        } else {
            w.attn.prepare(B, T);
        }
        w.proj.prepare(rows);
        w.norm2.prepare(rows);
        w.fc1.prepare(rows);
        w.fc2.prepare(rows);
    }
    if (c.global_pool == GlobalPool::TokenDist) {
        m.norm.prepare(B * 2);
        m.head_dist.prepare(B);
    } else if (n > 0) {
        m.norm.prepare(B * n);
    } else {
        m.norm.prepare(c.uses_fc_norm() ? B : M);
    }
    m.head.prepare(B);
}

void VitModel::forward_features(const float* images, std::int64_t B, float* features, FeaturePool pool) {
    if (B <= 0) return;
    Impl& m = *impl_;
    if (pool == FeaturePool::Cls && !m.c().class_token)
        throw ModelError("this model has no class token (pooling " + to_string(m.c().global_pool) +
                         "): use the mean of the patch tokens instead");
    const int n = m.head_rows(pool);
    m.encode(images, B, n);
    if (n == 2) {  // a distilled DeiT's head features: the class token's
        const std::int64_t D = m.c().embed_dim;
        m.norm.forward(m.px.data(), B * 2, m.ph.data());
        for (std::int64_t b = 0; b < B; ++b) std::memcpy(features + b * D, &m.ph[2 * b * D], D * sizeof(float));
        return;
    }
    m.pool(B, n, pool, features);
}

}  // namespace vit
