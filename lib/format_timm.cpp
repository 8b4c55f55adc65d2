// timm Hub directories: config.json (architecture, num_classes, global_pool, pretrained_cfg, model_args) and
// model.safetensors with timm's tensor names. The architecture comes from the tensor shapes and names; what
// shapes cannot tell (heads, activation, LayerNorm eps) from the model name, as timm's model registry does.
#include <cmath>
#include <map>
#include <memory>

#include "errors.hpp"
#include "hub_formats.hpp"
#include "json_util.hpp"
#include "safetensors.hpp"

namespace vit {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Shapes = std::map<std::string, std::vector<std::int64_t>>;

// Heads per model-name size word (timm's vision_transformer.py registry); head dim 64 for the others.
struct NamedHeads {
    const char* word;
    int embed_dim;  // 0: any
    int heads;
};
const NamedHeads kHeads[] = {
    {"_tiny", 0, 3},  {"_small", 0, 6},     {"_medium", 0, 8}, {"_base", 0, 12},     {"_large", 0, 16},
    {"_huge", 0, 16}, {"_giant", 1536, 24}, {"_giant", 0, 16}, {"_gigantic", 0, 16},
};

const std::vector<std::int64_t>& shape_of(const Shapes& s, const std::string& name) {
    auto it = s.find(name);
    if (it == s.end()) throw ModelError("the weights have no tensor \"" + name + "\" (is this a timm ViT?)");
    return it->second;
}

int as_int(std::int64_t v) { return static_cast<int>(v); }

bool is_square(std::int64_t n, int& side) {
    if (n < 0) return false;
    side = static_cast<int>(std::lround(std::sqrt(static_cast<double>(n))));
    return static_cast<std::int64_t>(side) * side == n;
}

const json& section(const json& j, const char* key) {
    static const json empty = json::object();
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return empty;
    if (!it->is_object()) throw ModelError(std::string(key) + " must be an object, got " + brief(*it));
    return *it;
}

}  // namespace

ModelSpec load_timm_dir(const fs::path& dir, const json& j) {
    ModelSpec spec = hub_spec(dir, "timm");
    const fs::path file = spec.config_path;
    find_hub_weights(dir, spec);
    Shapes shapes;
    {
        std::vector<fs::path> files = spec.weight_shards;
        if (files.empty()) files.push_back(spec.weights_path);
        for (const auto& f : files) {
            SafetensorsFile st(f);
            for (const auto& [name, t] : st.tensors()) shapes[name] = t.shape;
        }
    }
    try {
        if (!j["architecture"].is_string())
            throw ModelError("architecture must be a string, got " + brief(j["architecture"]));
        const std::string arch = j["architecture"].get<std::string>();
        if (arch.rfind("vit_", 0) != 0 && arch.rfind("deit", 0) != 0)
            throw ModelError("architecture \"" + arch +
                             "\" is not supported (timm ViT and DeiT models: vit_*, deit_*, deit3_*)");
        const json& args = section(j, "model_args");
        const json& pcfg = section(j, "pretrained_cfg");
        ModelConfig& c = spec.model;
        c.layout = Layout::Timm;
        c.pos_resample = PosResample::BicubicAntialias;

        const auto& pw = shape_of(shapes, "patch_embed.proj.weight");
        if (pw.size() != 4 || pw[2] != pw[3]) throw ModelError("patch_embed.proj.weight must be [D, C, P, P]");
        c.embed_dim = as_int(pw[0]);
        c.in_chans = as_int(pw[1]);
        c.patch_size = as_int(pw[2]);
        c.depth = 0;
        while (shapes.count("blocks." + std::to_string(c.depth) + ".norm1.weight")) ++c.depth;
        if (!c.depth) throw ModelError("the weights have no blocks.0.norm1.weight (is this a timm ViT?)");
        const auto& fc1 = shape_of(shapes, "blocks.0.mlp.fc1.weight");
        const auto& fc2 = shape_of(shapes, "blocks.0.mlp.fc2.weight");
        const bool packed_glu = fc2.size() == 2 && fc1[0] == 2 * fc2[1];  // SwiGLUPacked: fc1 holds both halves
        c.mlp_dim = as_int(fc2.size() == 2 ? fc2[1] : fc1[0]);
        c.qkv_bias = shapes.count("blocks.0.attn.qkv.bias") != 0;
        c.patch_bias = shapes.count("patch_embed.proj.bias") != 0;
        c.layer_scale = shapes.count("blocks.0.ls1.gamma") != 0;
        c.norm_pre = shapes.count("norm_pre.weight") != 0;
        c.class_token = shapes.count("cls_token") != 0;
        c.dist_token = shapes.count("dist_token") != 0;
        c.reg_tokens = shapes.count("reg_token") ? as_int(shapes.at("reg_token")[1]) : 0;
        c.fc_norm = shapes.count("fc_norm.weight") != 0;
        if (!shapes.count("head.weight"))
            throw ModelError(
                "the weights have no head.weight: a timm feature extractor (num_classes 0) has no classifier");
        c.num_classes = as_int(shapes.at("head.weight")[0]);

        // Activation and LayerNorm eps from the model name (timm's registry entries set them; shapes cannot).
        c.act = arch.find("quickgelu") != std::string::npos ? Activation::QuickGelu : Activation::Gelu;
        if (packed_glu) c.act = Activation::SwiGlu;
        c.layer_norm_eps = arch.find("_clip_") != std::string::npos ? 1e-5 : 1e-6;

        c.num_heads = 0;
        std::string heads_from = "the model name";
        if (args.contains("num_heads") && args["num_heads"].is_number_integer()) {
            c.num_heads = args["num_heads"].get<int>();
            heads_from = "model_args.num_heads";
        }
        for (const auto& h : kHeads)
            if (!c.num_heads && arch.find(h.word) != std::string::npos && (!h.embed_dim || h.embed_dim == c.embed_dim))
                c.num_heads = h.heads;
        if (!c.num_heads) {
            if (c.embed_dim % 64)
                throw ModelError("cannot tell the number of heads of \"" + arch + "\": set model_args.num_heads");
            c.num_heads = c.embed_dim / 64;
            heads_from = "head dim 64 (not in the name table)";
        }

        // Pooling: the config's global_pool (top level or model_args); distilled models average both heads.
        std::string pool = "token";
        for (const json* src : {&args, &j})
            if (src->contains("global_pool") && (*src)["global_pool"].is_string())
                pool = (*src)["global_pool"].get<std::string>();
        if (c.dist_token) c.global_pool = GlobalPool::TokenDist;
        else if (pool == "token") c.global_pool = GlobalPool::Token;
        else if (pool == "avg") c.global_pool = GlobalPool::Avg;
        else throw ModelError("global_pool \"" + pool + "\" is not supported (token and avg are)");
        if (c.fc_norm && c.global_pool != GlobalPool::Avg)
            throw ModelError("fc_norm.weight present but global_pool is \"" + pool + "\"");

        // Position embeddings: for the prefix tokens too (timm's default) or the patches only (no_embed_class).
        const auto& pe = shape_of(shapes, "pos_embed");
        const std::int64_t npos = pe.size() == 3 ? pe[1] : -1;
        int g0 = 0;
        bool no_embed_class = !is_square(npos - c.num_prefix_tokens(), g0);
        if (args.contains("no_embed_class") && args["no_embed_class"].is_boolean())
            no_embed_class = args["no_embed_class"].get<bool>();
        if (no_embed_class && !is_square(npos, g0))
            throw ModelError("pos_embed " + std::to_string(npos) +
                             " tokens is not a square grid (with or without the " +
                             std::to_string(c.num_prefix_tokens()) + " prefix tokens)");
        if (!no_embed_class) is_square(npos - c.num_prefix_tokens(), g0);
        c.pos_embed_prefix = no_embed_class ? PosEmbedPrefix::None : PosEmbedPrefix::All;
        c.pos_embed_grid = g0;

        // Preprocessing: timm's eval transform from pretrained_cfg.
        int img = g0 * c.patch_size;
        if (pcfg.contains("input_size")) {
            const json& in = pcfg["input_size"];
            if (!in.is_array() || in.size() != 3 || !in[1].is_number_integer() || in[1] != in[2])
                throw ModelError("pretrained_cfg.input_size " + brief(in) + " must be [C, S, S]");
            img = in[1].get<int>();
        }
        c.image_size = img;
        PreprocessConfig& p = spec.preprocess;
        const double crop_pct = pcfg.contains("crop_pct") && pcfg["crop_pct"].is_number()
                                    ? pcfg["crop_pct"].get<double>()
                                    : 0.875;
        if (!(crop_pct > 0 && crop_pct <= 4)) throw ModelError("pretrained_cfg.crop_pct must be in (0, 4]");
        const std::string mode = pcfg.contains("crop_mode") && pcfg["crop_mode"].is_string()
                                     ? pcfg["crop_mode"].get<std::string>()
                                     : "center";
        if (mode == "center") p.resize_mode = ResizeMode::ShorterSide;
        else if (mode == "squash") p.resize_mode = ResizeMode::Exact;
        else throw ModelError("pretrained_cfg.crop_mode \"" + mode + "\" is not supported (center and squash are)");
        p.resize = static_cast<int>(std::floor(img / crop_pct));
        p.crop = img;
        p.crop_rounding = CropRounding::Round;
        std::string interp = pcfg.contains("interpolation") && pcfg["interpolation"].is_string()
                                 ? pcfg["interpolation"].get<std::string>()
                                 : "bicubic";
        p.interpolation = enum_from_string<Interpolation>({{Interpolation::Bicubic, "bicubic"},
                                                           {Interpolation::Bilinear, "bilinear"},
                                                           {Interpolation::Nearest, "nearest"}},
                                                          interp, "pretrained_cfg.interpolation");
        p.mean = std::vector<float>{0.485f, 0.456f, 0.406f};
        p.std = std::vector<float>{0.229f, 0.224f, 0.225f};
        for (auto [key, out] : {std::pair<const char*, std::vector<float>*>{"mean", &p.mean}, {"std", &p.std}}) {
            if (!pcfg.contains(key)) continue;
            const json& v = pcfg[key];
            if (!v.is_array())
                throw ModelError(std::string("pretrained_cfg.") + key + " must be a list, got " + brief(v));
            out->clear();
            for (const auto& e : v) {
                if (!e.is_number()) throw ModelError(std::string("pretrained_cfg.") + key + " must be numbers");
                out->push_back(e.get<float>());
            }
        }

        // Labels: the config's label_names, else ImageNet-1k's names for a 1000-class head.
        if (j.contains("label_names") && j["label_names"].is_array()) {
            for (const auto& e : j["label_names"]) {
                if (!e.is_string()) throw ModelError("label_names must be strings, got " + brief(e));
                spec.labels.push_back(e.get<std::string>());
            }
            if (static_cast<int>(spec.labels.size()) != c.num_classes)
                throw ModelError("label_names has " + std::to_string(spec.labels.size()) + " entries, the head " +
                                 std::to_string(c.num_classes) + " classes");
            spec.origins.push_back({"labels", "config.json label_names"});
        } else if (c.num_classes == 1000) {
            spec.labels = imagenet_labels();
            spec.origins.push_back({"labels", "ImageNet-1k class names (built in; 1000-class head)"});
        } else {
            for (int i = 0; i < c.num_classes; ++i) spec.labels.push_back("class_" + std::to_string(i));
            spec.origins.push_back({"labels", "none in config.json: class_N"});
        }

        spec.family = c.dist_token    ? "deit-distilled"
                      : c.reg_tokens  ? "vit-registers"
                      : c.layer_scale ? "deit3"
                                      : "vit";
        spec.origins.push_back({"model", "model.safetensors tensor shapes (" + arch + "; heads from " + heads_from +
                                             (no_embed_class ? "; no_embed_class" : "") + ")"});
        spec.origins.push_back({"preprocess", "config.json pretrained_cfg (crop_pct " + std::to_string(crop_pct) +
                                                  ", crop_mode " + mode + ", " + interp + ")"});
        c.validate();
        p.validate(c.in_chans, c.image_size);
    } catch (const ModelError& e) {
        throw ModelError(file.string() + ": " + e.what());
    } catch (const json::exception& e) {
        throw ModelError(file.string() + ": " + e.what());
    }
    return spec;
}

}  // namespace vit
