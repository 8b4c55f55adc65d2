// The ViT forward pass, one function per stage, on the op wrappers of ops.hpp; tensors are read by role
// through the layout table of arch.hpp.
#include "model.hpp"

#include <cmath>
#include <cstring>

#include "arch.hpp"
#include "errors.hpp"
#include "ops.hpp"
#include "ops_bf16.hpp"
#include "pos_embed.hpp"
#include "weights.hpp"

namespace vit {

namespace {

struct BlockWeights {
    LayerNorm norm1;  // D
    Linear qkv;       // D -> 3D, per token [3, H, d]
    Attention attn;   // H heads of d
    Linear proj;      // D -> D, layer scale folded in, residual fused
    LayerNorm norm2;  // D
    Linear fc1;       // D -> F with the activation fused; SwiGLU: D -> 2F, gated separately
    Linear fc2;       // F -> D, layer scale folded in, residual fused
    // BF16: the same heads on bf16 q, k, v
    AttentionBf16 attn_bf16;
};

Linear::Epilogue activation_epilogue(Activation a) {
    switch (a) {
        case Activation::GeluTanh: return Linear::Epilogue::GeluTanh;
        case Activation::QuickGelu: return Linear::Epilogue::QuickGelu;
        case Activation::SwiGlu: return Linear::Epilogue::None;
        default: return Linear::Epilogue::Gelu;
    }
}

// Reads tensors by role. Weights come out of the file as F32/F16/BF16; ops take float32 and reorder them into
// their own layout.
class Loader {
public:
    Loader(const CheckedWeights& w, const ModelConfig& c) : w_(w), c_(c) {}

    std::vector<float> get(Role r, int block = 0) const {
        if (w_.has_external_head() && (r == Role::HeadW || r == Role::HeadB))
            return w_.load_head(r == Role::HeadW ? "head.weight" : "head.bias");
        return w_.load(tensor_name(c_.layout, r, block));
    }

    LayerNorm norm(Role weight, Role bias, int block = 0) const {
        auto g = get(weight, block), b = get(bias, block);
        return LayerNorm(g.data(), b.data(), c_.embed_dim, static_cast<float>(c_.layer_norm_eps));
    }

    // W [N, K] and b [N] (zero without `has_bias`); `scale` (layer scale, [N]) is folded in:
    // gamma * (x·Wᵀ + b) = x·(gamma W)ᵀ + gamma b.
    Linear linear(Role weight, Role bias, int block, int K, int N, Linear::Epilogue ep, Precision p,
                  Role scale_role = Role::PatchW, bool has_bias = true) const {
        auto W = get(weight, block);
        auto b = has_bias ? get(bias, block) : std::vector<float>(static_cast<std::size_t>(N), 0.f);
        if (scale_role != Role::PatchW) {
            const auto gamma = get(scale_role, block);
            for (int n = 0; n < N; ++n) {
                for (int k = 0; k < K; ++k) W[static_cast<std::size_t>(n) * K + k] *= gamma[n];
                b[n] *= gamma[n];
            }
        }
        return Linear(W.data(), b.data(), K, N, ep, p);
    }

    // The attention's input projection as one [3D, D] matrix (q, k, v rows), from timm's fused qkv or
    // transformers' separate query/key/value; absent biases are zero.
    Linear qkv(int block, Precision p) const {
        const int D = c_.embed_dim;
        std::vector<float> W, b(3 * static_cast<std::size_t>(D), 0.f);
        if (c_.layout == Layout::Timm) {
            W = get(Role::QkvW, block);
            if (c_.qkv_bias) b = get(Role::QkvB, block);
        } else {
            const Role ws[3] = {Role::QW, Role::KW, Role::VW}, bs[3] = {Role::QB, Role::KB, Role::VB};
            for (int i = 0; i < 3; ++i) {
                auto wi = get(ws[i], block);
                W.insert(W.end(), wi.begin(), wi.end());
                if (c_.qkv_bias) {
                    auto bi = get(bs[i], block);
                    std::copy(bi.begin(), bi.end(), b.begin() + static_cast<std::ptrdiff_t>(i) * D);
                }
            }
        }
        return Linear(W.data(), b.data(), D, 3 * D, Linear::Epilogue::None, p);
    }

private:
    const CheckedWeights& w_;
    const ModelConfig& c_;
};

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

struct VitModel::Impl {
    ModelSpec spec;
    Precision precision;

    Linear patch_proj;          // C*P*P -> D
    std::vector<float> prefix;  // [Nx, D] class, distillation, register tokens
    std::vector<float> pos;     // [T, D] at the run resolution; zero rows for tokens without one
    bool has_norm_pre = false;
    LayerNorm norm_pre;  // D
    std::vector<BlockWeights> blocks;
    LayerNorm norm;    // final norm (fc_norm after avg pooling)
    Linear head;       // E -> K
    Linear head_dist;  // D -> K (distilled DeiT)
    AttentionSink sink;

    std::int64_t scratch_batch = 0;
    std::vector<float> patches;      // [B*Np, C*P*P]
    std::vector<float> x;            // [B, T, D] residual stream
    std::vector<float> h;            // [B, T, D] normed / attention context
    std::vector<float> qkv;          // [B, T, 3D]
    std::vector<float> probs;        // [B, H, T, T] attention probabilities, only for the sink
    std::vector<float> mlp;          // [B, T, F] (SwiGLU: [B, T, 2F])
    QuantizedRows mlp_q;             // INT8: [B, T, F] as fc2's quantised input
    std::vector<float> gate;         // [B, T, F] SwiGLU output
    std::vector<float> px, ph;       // [B*n, D] the head's n tokens after the last attention
    std::vector<float> feat, feat2;  // [B, E] pooled features; distillation features
    std::vector<float> logits2;      // [B, K] distillation head
    // BF16 only: the activations that feed bf16 matmuls, as bf16 (the residual stream x stays f32).
    std::vector<std::uint16_t> hb;    // [B, T, D] normed / attention context
    std::vector<std::uint16_t> qkvb;  // [B, T, 3D]
    std::vector<std::uint16_t> mlpb;  // [B, T, F]
    std::vector<std::uint16_t> phb;   // [B*n, D]

    Impl(const ModelSpec& s, Precision p) : spec(s), precision(p) {}
    const ModelConfig& c() const { return spec.model; }

    void load(std::vector<std::string>* warnings);
    void ensure_scratch(std::int64_t B);
    int head_rows(FeaturePool pool) const;

    // Stages.
    void patch_embed(const float* images, std::int64_t B);  // images -> patches [B*Np, C*P*P] -> h [B*Np, D]
    void add_prefix_and_pos(std::int64_t B);                // x [B, T, D] = [prefix; patches] + pos
    // x += attn(norm1(x)); x += mlp(norm2(x)). With n > 0, the MLP half runs on the first n tokens of each image
    // alone, packed into px [B*n, D]: everything after attention is per token and the head reads only those.
    void block(int index, std::int64_t B, int n);
    void block_bf16(int index, std::int64_t B, int n);  // the same with bf16 activations between the matmuls
    // BF16 runs attention in bf16 up to kAttentionWholeTokens tokens, longer sequences in the f32 Attention.
    bool bf16_attention() const { return precision == Precision::BF16 && c().num_tokens() <= kAttentionWholeTokens; }
    void encode(const float* images, std::int64_t B, int n);         // all of the above
    void pool(std::int64_t B, int n, FeaturePool pool, float* out);  // final norm + pooling -> [B, E or D]
};

void VitModel::Impl::load(std::vector<std::string>* warnings) {
    const ModelConfig& m = c();
    m.validate();
    CheckedWeights w = open_weights(spec);
    if (warnings) warnings->insert(warnings->end(), w.warnings.begin(), w.warnings.end());
    Loader ld(w, m);
    const int D = m.embed_dim, F = m.mlp_dim, CPP = m.in_chans * m.patch_size * m.patch_size;
    // Patch embedding and head stay float32 in every precision: they are small and accuracy-sensitive.
    patch_proj = ld.linear(Role::PatchW, Role::PatchB, 0, CPP, D, Linear::Epilogue::None, Precision::F32, Role::PatchW,
                           m.patch_bias);

    if (m.class_token) prefix = ld.get(Role::ClsToken);
    if (m.dist_token) {
        auto t = ld.get(Role::DistToken);
        prefix.insert(prefix.end(), t.begin(), t.end());
    }
    if (m.reg_tokens) {
        auto t = ld.get(Role::RegTokens);
        prefix.insert(prefix.end(), t.begin(), t.end());
    }

    // Position table at the run resolution: the stored grid resampled when the model runs at another size.
    const auto stored = ld.get(Role::PosEmbed);
    const int covered = m.pos_embed_prefix_tokens(), g0 = m.stored_grid(), g1 = m.grid();
    const std::size_t Dz = static_cast<std::size_t>(D);
    pos.assign(static_cast<std::size_t>(m.num_tokens()) * Dz, 0.f);
    std::copy(stored.begin(), stored.begin() + static_cast<std::ptrdiff_t>(covered * Dz), pos.begin());
    const float* grid = stored.data() + covered * Dz;
    const std::vector<float> resampled = g0 == g1
                                             ? std::vector<float>(grid, grid + static_cast<std::size_t>(g0) * g0 * Dz)
                                             : resample_pos_grid(grid, g0, g1, D, m.pos_resample);
    std::copy(resampled.begin(), resampled.end(),
              pos.begin() + static_cast<std::ptrdiff_t>(m.num_prefix_tokens() * Dz));

    if ((has_norm_pre = m.norm_pre)) norm_pre = ld.norm(Role::NormPreW, Role::NormPreB);
    const bool glu = m.act == Activation::SwiGlu;
    const Role ls1 = m.layer_scale ? Role::Ls1 : Role::PatchW, ls2 = m.layer_scale ? Role::Ls2 : Role::PatchW;
    const float scale = 1.0f / std::sqrt(static_cast<float>(m.head_dim()));
    blocks.reserve(m.depth);
    for (int i = 0; i < m.depth; ++i) {
        blocks.push_back(BlockWeights{
            ld.norm(Role::Norm1W, Role::Norm1B, i),
            ld.qkv(i, precision),
            Attention(m.num_heads, m.head_dim(), scale),
            ld.linear(Role::ProjW, Role::ProjB, i, D, D, Linear::Epilogue::Residual, precision, ls1),
            ld.norm(Role::Norm2W, Role::Norm2B, i),
            glu ? ld.linear(Role::GluInW, Role::GluInB, i, D, 2 * F, Linear::Epilogue::None, precision)
                : ld.linear(Role::Fc1W, Role::Fc1B, i, D, F, activation_epilogue(m.act), precision),
            glu ? ld.linear(Role::GluOutW, Role::GluOutB, i, F, D, Linear::Epilogue::Residual, precision, ls2)
                : ld.linear(Role::Fc2W, Role::Fc2B, i, F, D, Linear::Epilogue::Residual, precision, ls2),
            AttentionBf16(m.num_heads, m.head_dim(), scale),
        });
    }
    norm = m.uses_fc_norm() ? ld.norm(Role::FcNormW, Role::FcNormB) : ld.norm(Role::NormW, Role::NormB);
    head = ld.linear(Role::HeadW, Role::HeadB, 0, m.head_in_features(), m.num_classes, Linear::Epilogue::None,
                     Precision::F32);
    if (m.global_pool == GlobalPool::TokenDist)
        head_dist = ld.linear(Role::HeadDistW, Role::HeadDistB, 0, D, m.num_classes, Linear::Epilogue::None,
                              Precision::F32);
}

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
    if (precision == Precision::BF16) {
        hb.resize(B * T * D);
        qkvb.resize(B * T * 3 * D);
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
    w.attn.forward(qkv.data(), B, T, sink ? probs.data() : nullptr, h.data());  // h = attention(q, k, v)   [B, T, D]
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
    if (bf16_attention()) {
        w.qkv.forward_bf16(hb.data(), M, qkvb.data());         // [B, T, 3, H, d] bf16
        w.attn_bf16.forward(qkvb.data(), B, T, p, hb.data());  // hb = attention(q, k, v)   [B, T, D] bf16
    } else {
        w.qkv.forward_bf16(hb.data(), M, qkv.data());  // [B, T, 3, H, d] f32
        w.attn.forward(qkv.data(), B, T, p, h.data());
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
        w.attn.prepare(B, T);
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
