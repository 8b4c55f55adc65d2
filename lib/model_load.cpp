// Building the model's ops from its weights (VitModel::Impl::load): tensors read by role through the layout table of
// arch.hpp, layer scales folded into the linears, the position table resampled to the run resolution.
#include <cmath>

#include "arch.hpp"
#include "model_impl.hpp"
#include "pos_embed.hpp"
#include "weights.hpp"

namespace vit {

namespace {

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

}  // namespace

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

}  // namespace vit
