// The tensor names of each checkpoint layout, in one table (whisper.cpp's whisper-arch.h is the model): the
// weights check (weights.cpp) and the model loader (model.cpp) both read tensors through it.
//
// Dimension letters: D embed dim, F MLP hidden dim, C input channels, P patch side, K classes, R registers,
// Npos stored position embeddings.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config.hpp"

namespace vit {

// Every tensor a ViT can have. Block tensors are per block; Q/K/V exist in layouts that store the attention
// projections separately (transformers), Qkv in those that fuse them (timm).
enum class Role {
    PatchW,
    PatchB,  // [D, C, P, P], [D]
    ClsToken,
    DistToken,
    RegTokens,  // [1, 1, D], [1, 1, D], [1, R, D]
    PosEmbed,   // [1, Npos, D]
    MaskToken,  // [1, D]: transformers DINOv2's masked-modelling token, unused at inference
    NormPreW,
    NormPreB,  // [D]
    Norm1W,
    Norm1B,  // [D]
    QkvW,
    QkvB,  // [3D, D], [3D]
    QW,
    QB,
    KW,
    KB,
    VW,
    VB,  // [D, D], [D] each
    ProjW,
    ProjB,  // [D, D], [D]
    Ls1,    // [D]
    Norm2W,
    Norm2B,  // [D]
    Fc1W,
    Fc1B,  // [F, D], [F]
    Fc2W,
    Fc2B,  // [D, F], [D]
    GluInW,
    GluInB,  // SwiGLU MLP: [2F, D], [2F] (the silu half first)
    GluOutW,
    GluOutB,  // [D, F], [D]
    Ls2,      // [D]
    NormW,
    NormB,  // [D] final norm
    FcNormW,
    FcNormB,  // [D] norm after average pooling
    HeadW,
    HeadB,  // [K, D] ([K, 2D] for DINOv2's classifier), [K]
    HeadDistW,
    HeadDistB,  // [K, D], [K]
};

bool is_block_role(Role r);

// The checkpoint name of `role` (of block `block` for block roles) in `layout`; throws ModelError when the
// layout has no such tensor (e.g. layer scale in transformers ViT).
std::string tensor_name(Layout layout, Role role, int block = 0);

struct TensorSpec {
    Role role;
    int block;         // -1 outside the blocks
    std::string name;  // checkpoint name, e.g. "blocks.3.attn.qkv.weight"
    std::vector<std::int64_t> shape;
    bool optional = false;  // may be absent (unused at inference)
};

// Every tensor the config implies, in checkpoint order; without the head's with `external_head` (a head from
// `vit fit`, in a file of its own).
std::vector<TensorSpec> expected_tensors(const ModelConfig& c, bool external_head = false);

// The checkpoint names of the model's own head tensors in `layout` (those it has).
std::vector<std::string> head_tensor_names(Layout layout);

// Total parameter count implied by the config (optional tensors excluded).
std::int64_t parameter_count(const ModelConfig& c);

}  // namespace vit
