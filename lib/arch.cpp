// The per-layout tensor name tables and the tensor list a config implies.
#include "arch.hpp"

#include <initializer_list>

#include "errors.hpp"

namespace vit {
namespace {

// A name pattern: "{m}" is the layout's model prefix ("vit", "dinov2", ...), "{i}" the block index.
struct NameRow {
    Role role;
    const char* pattern;
};
using Rows = std::initializer_list<NameRow>;

const Rows kTimm = {
    {Role::PatchW, "patch_embed.proj.weight"},
    {Role::PatchB, "patch_embed.proj.bias"},
    {Role::ClsToken, "cls_token"},
    {Role::DistToken, "dist_token"},
    {Role::RegTokens, "reg_token"},
    {Role::PosEmbed, "pos_embed"},
    {Role::NormPreW, "norm_pre.weight"},
    {Role::NormPreB, "norm_pre.bias"},
    {Role::Norm1W, "blocks.{i}.norm1.weight"},
    {Role::Norm1B, "blocks.{i}.norm1.bias"},
    {Role::QkvW, "blocks.{i}.attn.qkv.weight"},
    {Role::QkvB, "blocks.{i}.attn.qkv.bias"},
    {Role::ProjW, "blocks.{i}.attn.proj.weight"},
    {Role::ProjB, "blocks.{i}.attn.proj.bias"},
    {Role::Ls1, "blocks.{i}.ls1.gamma"},
    {Role::Norm2W, "blocks.{i}.norm2.weight"},
    {Role::Norm2B, "blocks.{i}.norm2.bias"},
    {Role::Fc1W, "blocks.{i}.mlp.fc1.weight"},
    {Role::Fc1B, "blocks.{i}.mlp.fc1.bias"},
    {Role::Fc2W, "blocks.{i}.mlp.fc2.weight"},
    {Role::Fc2B, "blocks.{i}.mlp.fc2.bias"},
    {Role::GluInW, "blocks.{i}.mlp.fc1.weight"},  // SwiGLUPacked
    {Role::GluInB, "blocks.{i}.mlp.fc1.bias"},
    {Role::GluOutW, "blocks.{i}.mlp.fc2.weight"},
    {Role::GluOutB, "blocks.{i}.mlp.fc2.bias"},
    {Role::Ls2, "blocks.{i}.ls2.gamma"},
    {Role::NormW, "norm.weight"},
    {Role::NormB, "norm.bias"},
    {Role::FcNormW, "fc_norm.weight"},
    {Role::FcNormB, "fc_norm.bias"},
    {Role::HeadW, "head.weight"},
    {Role::HeadB, "head.bias"},
    {Role::HeadDistW, "head_dist.weight"},
    {Role::HeadDistB, "head_dist.bias"},
};

// transformers: embeddings and the final norm under the model prefix, the head outside it.
const Rows kHfEmbeddings = {
    {Role::PatchW, "{m}.embeddings.patch_embeddings.projection.weight"},
    {Role::PatchB, "{m}.embeddings.patch_embeddings.projection.bias"},
    {Role::ClsToken, "{m}.embeddings.cls_token"},
    {Role::PosEmbed, "{m}.embeddings.position_embeddings"},
    {Role::NormW, "{m}.layernorm.weight"},
    {Role::NormB, "{m}.layernorm.bias"},
    {Role::QW, "{m}.encoder.layer.{i}.attention.attention.query.weight"},
    {Role::QB, "{m}.encoder.layer.{i}.attention.attention.query.bias"},
    {Role::KW, "{m}.encoder.layer.{i}.attention.attention.key.weight"},
    {Role::KB, "{m}.encoder.layer.{i}.attention.attention.key.bias"},
    {Role::VW, "{m}.encoder.layer.{i}.attention.attention.value.weight"},
    {Role::VB, "{m}.encoder.layer.{i}.attention.attention.value.bias"},
    {Role::ProjW, "{m}.encoder.layer.{i}.attention.output.dense.weight"},
    {Role::ProjB, "{m}.encoder.layer.{i}.attention.output.dense.bias"},
};
// ViTLayer / DeiTLayer.
const Rows kHfVitBlock = {
    {Role::Norm1W, "{m}.encoder.layer.{i}.layernorm_before.weight"},
    {Role::Norm1B, "{m}.encoder.layer.{i}.layernorm_before.bias"},
    {Role::Norm2W, "{m}.encoder.layer.{i}.layernorm_after.weight"},
    {Role::Norm2B, "{m}.encoder.layer.{i}.layernorm_after.bias"},
    {Role::Fc1W, "{m}.encoder.layer.{i}.intermediate.dense.weight"},
    {Role::Fc1B, "{m}.encoder.layer.{i}.intermediate.dense.bias"},
    {Role::Fc2W, "{m}.encoder.layer.{i}.output.dense.weight"},
    {Role::Fc2B, "{m}.encoder.layer.{i}.output.dense.bias"},
};
// Dinov2Layer.
const Rows kHfDinoBlock = {
    {Role::MaskToken, "{m}.embeddings.mask_token"},
    {Role::Norm1W, "{m}.encoder.layer.{i}.norm1.weight"},
    {Role::Norm1B, "{m}.encoder.layer.{i}.norm1.bias"},
    {Role::Ls1, "{m}.encoder.layer.{i}.layer_scale1.lambda1"},
    {Role::Norm2W, "{m}.encoder.layer.{i}.norm2.weight"},
    {Role::Norm2B, "{m}.encoder.layer.{i}.norm2.bias"},
    {Role::Fc1W, "{m}.encoder.layer.{i}.mlp.fc1.weight"},
    {Role::Fc1B, "{m}.encoder.layer.{i}.mlp.fc1.bias"},
    {Role::Fc2W, "{m}.encoder.layer.{i}.mlp.fc2.weight"},
    {Role::Fc2B, "{m}.encoder.layer.{i}.mlp.fc2.bias"},
    {Role::GluInW, "{m}.encoder.layer.{i}.mlp.weights_in.weight"},
    {Role::GluInB, "{m}.encoder.layer.{i}.mlp.weights_in.bias"},
    {Role::GluOutW, "{m}.encoder.layer.{i}.mlp.weights_out.weight"},
    {Role::GluOutB, "{m}.encoder.layer.{i}.mlp.weights_out.bias"},
    {Role::Ls2, "{m}.encoder.layer.{i}.layer_scale2.lambda1"},
};
const Rows kHfClassifier = {{Role::HeadW, "classifier.weight"}, {Role::HeadB, "classifier.bias"}};
const Rows kHfDeitTeacher = {
    {Role::DistToken, "{m}.embeddings.distillation_token"},
    {Role::HeadW, "cls_classifier.weight"},
    {Role::HeadB, "cls_classifier.bias"},
    {Role::HeadDistW, "distillation_classifier.weight"},
    {Role::HeadDistB, "distillation_classifier.bias"},
};
const Rows kHfDeitToken = {{Role::DistToken, "{m}.embeddings.distillation_token"}};
const Rows kHfRegisters = {{Role::RegTokens, "{m}.embeddings.register_tokens"}};
const Rows kNone = {};

struct LayoutTable {
    Layout layout;
    const char* prefix;
    Rows parts[4];
};

const LayoutTable kLayouts[] = {
    {Layout::Timm, "", {kTimm, kNone, kNone, kNone}},
    {Layout::HfVit, "vit", {kHfEmbeddings, kHfVitBlock, kHfClassifier, kNone}},
    {Layout::HfDeit, "deit", {kHfEmbeddings, kHfVitBlock, kHfClassifier, kHfDeitToken}},
    {Layout::HfDeitDistilled, "deit", {kHfEmbeddings, kHfVitBlock, kHfDeitTeacher, kNone}},
    {Layout::HfDinov2, "dinov2", {kHfEmbeddings, kHfDinoBlock, kHfClassifier, kNone}},
    {Layout::HfDinov2Registers, "dinov2_with_registers", {kHfEmbeddings, kHfDinoBlock, kHfClassifier, kHfRegisters}},
};

std::string expand(const char* pattern, const char* prefix, int block) {
    std::string out;
    for (const char* p = pattern; *p; ++p) {
        if (p[0] == '{' && p[1] && p[2] == '}') {
            if (p[1] == 'm') out += prefix;
            else out += std::to_string(block);
            p += 2;
        } else {
            out += *p;
        }
    }
    return out;
}

std::string role_label(Role r) {
    switch (r) {
        case Role::DistToken: return "a distillation token";
        case Role::RegTokens: return "register tokens";
        case Role::NormPreW:
        case Role::NormPreB: return "a pre-norm (norm_pre)";
        case Role::Ls1:
        case Role::Ls2: return "layer scale";
        case Role::QkvW:
        case Role::QkvB: return "a fused qkv projection";
        case Role::GluInW:
        case Role::GluInB:
        case Role::GluOutW:
        case Role::GluOutB: return "a SwiGLU MLP";
        case Role::FcNormW:
        case Role::FcNormB: return "fc_norm";
        case Role::HeadDistW:
        case Role::HeadDistB: return "a distillation head";
        default: return "this tensor";
    }
}

}  // namespace

bool is_block_role(Role r) { return r >= Role::Norm1W && r <= Role::Ls2; }

std::string tensor_name(Layout layout, Role role, int block) {
    for (const auto& t : kLayouts) {
        if (t.layout != layout) continue;
        for (const Rows& rows : t.parts)
            for (const auto& row : rows)
                if (row.role == role) return expand(row.pattern, t.prefix, block);
    }
    throw ModelError("the " + to_string(layout) + " layout has no tensor for " + role_label(role));
}

std::vector<TensorSpec> expected_tensors(const ModelConfig& c, bool external_head) {
    const std::int64_t D = c.embed_dim, F = c.mlp_dim, P = c.patch_size, C = c.in_chans, K = c.num_classes;
    std::vector<TensorSpec> t;
    auto add = [&](Role r, std::vector<std::int64_t> shape, int block = -1, bool optional = false) {
        t.push_back({r, block, tensor_name(c.layout, r, block < 0 ? 0 : block), std::move(shape), optional});
    };
    const bool fused_qkv = c.layout == Layout::Timm;
    add(Role::PatchW, {D, C, P, P});
    if (c.patch_bias) add(Role::PatchB, {D});
    if (c.class_token) add(Role::ClsToken, {1, 1, D});
    if (c.dist_token) add(Role::DistToken, {1, 1, D});
    if (c.reg_tokens) add(Role::RegTokens, {1, c.reg_tokens, D});
    add(Role::PosEmbed, {1, c.pos_embed_tokens(), D});
    if (c.layout == Layout::HfDinov2 || c.layout == Layout::HfDinov2Registers) add(Role::MaskToken, {1, D}, -1, true);
    if (c.norm_pre) {
        add(Role::NormPreW, {D});
        add(Role::NormPreB, {D});
    }
    for (int i = 0; i < c.depth; ++i) {
        add(Role::Norm1W, {D}, i);
        add(Role::Norm1B, {D}, i);
        if (fused_qkv) {
            add(Role::QkvW, {3 * D, D}, i);
            if (c.qkv_bias) add(Role::QkvB, {3 * D}, i);
        } else {
            for (Role w : {Role::QW, Role::KW, Role::VW}) {
                add(w, {D, D}, i);
                if (c.qkv_bias) add(static_cast<Role>(static_cast<int>(w) + 1), {D}, i);  // the bias follows
            }
        }
        add(Role::ProjW, {D, D}, i);
        add(Role::ProjB, {D}, i);
        if (c.layer_scale) add(Role::Ls1, {D}, i);
        add(Role::Norm2W, {D}, i);
        add(Role::Norm2B, {D}, i);
        if (c.act == Activation::SwiGlu) {
            add(Role::GluInW, {2 * F, D}, i);
            add(Role::GluInB, {2 * F}, i);
            add(Role::GluOutW, {D, F}, i);
            add(Role::GluOutB, {D}, i);
        } else {
            add(Role::Fc1W, {F, D}, i);
            add(Role::Fc1B, {F}, i);
            add(Role::Fc2W, {D, F}, i);
            add(Role::Fc2B, {D}, i);
        }
        if (c.layer_scale) add(Role::Ls2, {D}, i);
    }
    if (c.uses_fc_norm()) {
        add(Role::FcNormW, {D});
        add(Role::FcNormB, {D});
    } else {
        add(Role::NormW, {D});
        add(Role::NormB, {D});
    }
    if (external_head) return t;
    add(Role::HeadW, {K, c.head_in_features()});
    add(Role::HeadB, {K});
    if (c.global_pool == GlobalPool::TokenDist) {
        add(Role::HeadDistW, {K, D});
        add(Role::HeadDistB, {K});
    }
    return t;
}

std::vector<std::string> head_tensor_names(Layout layout) {
    std::vector<std::string> out;
    for (Role r : {Role::HeadW, Role::HeadB, Role::HeadDistW, Role::HeadDistB}) {
        try {
            out.push_back(tensor_name(layout, r));
        } catch (const ModelError&) {  // the layout has no distillation head
        }
    }
    return out;
}

std::int64_t parameter_count(const ModelConfig& c) {
    std::int64_t n = 0;
    for (const auto& s : expected_tensors(c)) {
        if (s.optional) continue;
        std::int64_t p = 1;
        for (auto d : s.shape) p *= d;
        n += p;
    }
    return n;
}

}  // namespace vit
