// Model configuration: parsing and validation of config.json with errors that name the offending key.
#include "config.hpp"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "errors.hpp"

namespace vit {
namespace {

using nlohmann::json;

// Hostile-input limits, checked before the work they bound.
constexpr std::uintmax_t kMaxConfigBytes = 16u << 20;   // config.json; an inline ImageNet-21k list is ~0.5 MB
constexpr std::uintmax_t kMaxLabelsBytes = 64u << 20;   // labels file
constexpr int kMaxJsonDepth = 16;                       // the schema needs 3 levels
constexpr int kMaxDepth = 1024;                         // transformer blocks
constexpr int kMaxClasses = 1 << 20;                    // labels are generated for each class when absent

// A value for an error message: short, and never a deep recursive dump of hostile nesting.
std::string brief(const json& v) {
    std::string s;
    if (v.is_array() || v.is_object()) {
        bool flat = v.size() <= 16;
        for (const auto& e : v) flat = flat && !e.is_structured();
        s = flat ? v.dump() : std::string(v.type_name()) + " of " + std::to_string(v.size()) + " elements";
    } else {
        s = v.dump();
    }
    return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

// A first pass over the text that builds nothing and refuses hostile nesting ("[[[[..."), which would cost
// memory and recursion later. (nlohmann's callback parser could do it in one pass but is quadratic in the
// number of keys of an object.)
class DepthPrecheck : public nlohmann::json_sax<json> {
public:
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return open(); }
    bool key(string_t&) override { return true; }
    bool end_object() override { return --depth_, true; }
    bool start_array(std::size_t) override { return open(); }
    bool end_array() override { return --depth_, true; }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override { throw e; }

private:
    bool open() {
        if (++depth_ > kMaxJsonDepth)
            throw ModelError("invalid JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
        return true;
    }
    int depth_ = 0;
};

[[noreturn]] void wrong_type(const char* section, const char* key, const json& v) {
    throw ModelError(std::string(section) + "." + key + " has the wrong type: got " + std::string(v.type_name()) +
                     " " + brief(v));
}

// nlohmann's get<int>/get<float> convert silently (bool -> 1, 2^32 + 224 -> 224, 224.7 -> 224, 1e30 -> UB):
// keys are read through these instead, which take only values of the right kind and range.
void read_value(const json& v, const char* section, const char* key, int& out) {
    if (v.is_number_unsigned()) {
        if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
            throw ModelError(std::string(section) + "." + key + " " + v.dump() + " is out of range");
    } else if (v.is_number_integer()) {
        if (v.get<std::int64_t>() < std::numeric_limits<int>::min())
            throw ModelError(std::string(section) + "." + key + " " + v.dump() + " is out of range");
    } else {
        wrong_type(section, key, v);   // also a float: sizes are integers
    }
    out = static_cast<int>(v.get<std::int64_t>());
}

void read_value(const json& v, const char* section, const char* key, double& out) {
    if (!v.is_number()) wrong_type(section, key, v);
    out = v.get<double>();
}

void read_value(const json& v, const char* section, const char* key, bool& out) {
    if (!v.is_boolean()) wrong_type(section, key, v);
    out = v.get<bool>();
}

void read_value(const json& v, const char* section, const char* key, std::string& out) {
    if (!v.is_string()) wrong_type(section, key, v);
    out = v.get<std::string>();
}

void read_value(const json& v, const char* section, const char* key, std::vector<float>& out) {
    if (!v.is_array()) wrong_type(section, key, v);
    out.clear();
    for (const auto& e : v) {
        if (!e.is_number()) wrong_type(section, key, v);
        const double d = e.get<double>();
        if (!(std::fabs(d) <= std::numeric_limits<float>::max()))   // also NaN; the cast would be undefined
            throw ModelError(std::string(section) + "." + key + " values must be finite floats, got " + e.dump());
        out.push_back(static_cast<float>(d));
    }
}

// Reads an optional key into `out`, with messages that name `section.key`.
template <typename T>
void get_opt(const json& j, const char* section, const char* key, T& out) {
    auto it = j.find(key);
    if (it == j.end()) return;
    read_value(*it, section, key, out);
}

// Required keys name themselves when absent.
template <typename T>
void get_req(const json& j, const char* section, const char* key, T& out) {
    if (!j.contains(key)) throw ModelError(std::string(section) + "." + key + " is missing");
    get_opt(j, section, key, out);
}

void require_positive(const char* key, long v) {
    if (v <= 0) throw ModelError(std::string(key) + " must be positive, got " + std::to_string(v));
}

void reject_unknown_keys(const json& j, const char* section, std::initializer_list<const char*> known) {
    for (auto it = j.begin(); it != j.end(); ++it) {
        bool ok = false;
        for (const char* k : known) ok = ok || it.key() == k;
        if (!ok) throw ModelError(std::string(section) + "." + it.key() + " is not a known key");
    }
}

}  // namespace

std::string to_string(Interpolation i) {
    switch (i) {
        case Interpolation::Nearest: return "nearest";
        case Interpolation::Bilinear: return "bilinear";
        case Interpolation::Bicubic: return "bicubic";
    }
    return "?";
}

std::string to_string(GlobalPool p) { return p == GlobalPool::Token ? "token" : "avg"; }

void from_json(const json& j, ModelConfig& c) {
    if (!j.is_object()) throw ModelError("model must be an object, got " + std::string(j.type_name()));
    reject_unknown_keys(j, "model",
                        {"image_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_dim",
                         "qkv_bias", "layer_norm_eps", "num_classes", "class_token", "global_pool", "fc_norm"});
    get_req(j, "model", "image_size", c.image_size);
    get_req(j, "model", "patch_size", c.patch_size);
    get_opt(j, "model", "in_chans", c.in_chans);
    get_req(j, "model", "embed_dim", c.embed_dim);
    get_req(j, "model", "depth", c.depth);
    get_req(j, "model", "num_heads", c.num_heads);
    get_req(j, "model", "mlp_dim", c.mlp_dim);
    get_opt(j, "model", "qkv_bias", c.qkv_bias);
    get_opt(j, "model", "layer_norm_eps", c.layer_norm_eps);
    get_req(j, "model", "num_classes", c.num_classes);
    get_opt(j, "model", "class_token", c.class_token);
    std::string pool = to_string(c.global_pool);
    get_opt(j, "model", "global_pool", pool);
    if (pool == "token") c.global_pool = GlobalPool::Token;
    else if (pool == "avg") c.global_pool = GlobalPool::Avg;
    else throw ModelError("model.global_pool \"" + pool + "\" is not one of \"token\", \"avg\"");
    get_opt(j, "model", "fc_norm", c.fc_norm);
}

void ModelConfig::validate() const {
    require_positive("model.image_size", image_size);
    require_positive("model.patch_size", patch_size);
    require_positive("model.in_chans", in_chans);
    require_positive("model.embed_dim", embed_dim);
    require_positive("model.depth", depth);
    require_positive("model.num_heads", num_heads);
    require_positive("model.mlp_dim", mlp_dim);
    require_positive("model.num_classes", num_classes);
    if (depth > kMaxDepth)
        throw ModelError("model.depth " + std::to_string(depth) + " is too large (at most " + std::to_string(kMaxDepth) +
                         ")");
    if (num_classes > kMaxClasses)
        throw ModelError("model.num_classes " + std::to_string(num_classes) + " is too large (at most " +
                         std::to_string(kMaxClasses) + ")");
    if (!(layer_norm_eps > 0 && layer_norm_eps < 1))
        throw ModelError("model.layer_norm_eps must be in (0, 1), got " + std::to_string(layer_norm_eps));
    if (image_size % patch_size != 0)
        throw ModelError("model.image_size " + std::to_string(image_size) + " is not divisible by model.patch_size " +
                         std::to_string(patch_size));
    if (embed_dim % num_heads != 0)
        throw ModelError("model.embed_dim " + std::to_string(embed_dim) + " is not divisible by model.num_heads " +
                         std::to_string(num_heads));
    if (in_chans != 1 && in_chans != 3)
        throw ModelError("model.in_chans " + std::to_string(in_chans) + " is not supported (expected 1 or 3)");
    if (global_pool == GlobalPool::Token && !class_token)
        throw ModelError("model.global_pool \"token\" needs model.class_token true");
    if (fc_norm && global_pool != GlobalPool::Avg)
        throw ModelError("model.fc_norm true needs model.global_pool \"avg\"");
    // Keep every tensor size well inside 32-bit element counts: guards all later shape products.
    const long long limit = 1LL << 31;
    if (1LL * image_size * image_size > limit || 1LL * embed_dim * mlp_dim > limit ||
        1LL * embed_dim * num_classes > limit || 1LL * embed_dim * embed_dim * 3 > limit ||
        1LL * num_tokens() * embed_dim > limit || 1LL * in_chans * patch_size * patch_size * embed_dim > limit ||
        1LL * num_tokens() * num_tokens() * num_heads > limit)   // one image's attention scores
        throw ModelError("model dimensions are too large (a tensor would exceed 2^31 elements)");
}

void to_json(json& j, const ModelConfig& c) {
    j = json{{"image_size", c.image_size}, {"patch_size", c.patch_size}, {"in_chans", c.in_chans},
             {"embed_dim", c.embed_dim},   {"depth", c.depth},           {"num_heads", c.num_heads},
             {"mlp_dim", c.mlp_dim},       {"qkv_bias", c.qkv_bias},     {"layer_norm_eps", c.layer_norm_eps},
             {"num_classes", c.num_classes}, {"class_token", c.class_token},
             {"global_pool", to_string(c.global_pool)}, {"fc_norm", c.fc_norm}};
}

void from_json(const json& j, PreprocessConfig& c) {
    if (!j.is_object()) throw ModelError("preprocess must be an object, got " + std::string(j.type_name()));
    reject_unknown_keys(j, "preprocess", {"resize", "crop", "interpolation", "antialias", "mean", "std"});
    get_opt(j, "preprocess", "resize", c.resize);
    get_opt(j, "preprocess", "crop", c.crop);
    std::string interp = to_string(c.interpolation);
    get_opt(j, "preprocess", "interpolation", interp);
    if (interp == "bicubic") c.interpolation = Interpolation::Bicubic;
    else if (interp == "bilinear") c.interpolation = Interpolation::Bilinear;
    else if (interp == "nearest") c.interpolation = Interpolation::Nearest;
    else throw ModelError("preprocess.interpolation \"" + interp + "\" is not one of \"bicubic\", \"bilinear\", \"nearest\"");
    get_opt(j, "preprocess", "antialias", c.antialias);
    get_opt(j, "preprocess", "mean", c.mean);
    get_opt(j, "preprocess", "std", c.std);
}

void PreprocessConfig::validate(int in_chans, int image_size) const {
    require_positive("preprocess.resize", resize);
    require_positive("preprocess.crop", crop);
    if (crop != image_size)
        throw ModelError("preprocess.crop " + std::to_string(crop) + " does not match model.image_size " +
                         std::to_string(image_size));
    if (resize < crop)
        throw ModelError("preprocess.resize " + std::to_string(resize) + " is smaller than preprocess.crop " +
                         std::to_string(crop));
    if (static_cast<int>(mean.size()) != in_chans)
        throw ModelError("preprocess.mean has " + std::to_string(mean.size()) + " values, expected " +
                         std::to_string(in_chans) + " (model.in_chans)");
    if (static_cast<int>(std.size()) != in_chans)
        throw ModelError("preprocess.std has " + std::to_string(std.size()) + " values, expected " +
                         std::to_string(in_chans) + " (model.in_chans)");
    for (float s : std)
        if (!(s > 0)) throw ModelError("preprocess.std values must be positive, got " + std::to_string(s));
}

void to_json(json& j, const PreprocessConfig& c) {
    j = json{{"resize", c.resize}, {"crop", c.crop}, {"interpolation", to_string(c.interpolation)},
             {"antialias", c.antialias}, {"mean", c.mean}, {"std", c.std}};
}

namespace {

// The whole of a config or labels file, refused past `limit` bytes (read, not stat'ed: `--config <(...)`
// is a pipe). Throws ModelError with `what` ("config", "labels") naming the file kind.
std::string read_small_file(const std::filesystem::path& p, const char* what, std::uintmax_t limit) {
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec))
        throw ModelError(p.string() + ": is a directory, expected a " + what + " file");
    std::ifstream in(p, std::ios::binary);
    if (!in) throw ModelError(p.string() + ": cannot open " + what + " file");
    std::string text;
    char buf[1 << 16];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > limit)
            throw ModelError(p.string() + ": " + what + " file is larger than " + std::to_string(limit >> 20) +
                             " MiB");
    }
    if (in.bad()) throw ModelError(p.string() + ": cannot read " + what + " file");
    return text;
}

std::vector<std::string> read_labels_file(const std::filesystem::path& p) {
    std::istringstream in(read_small_file(p, "labels", kMaxLabelsBytes));
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        out.push_back(line);
    }
    while (!out.empty() && out.back().empty()) out.pop_back();   // tolerate a trailing blank line
    return out;
}

}  // namespace

ModelSpec load_model_spec(const std::filesystem::path& config_file, const std::filesystem::path& weights_override) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(config_file, ec))
        throw ModelError(config_file.string() + ": is a directory, expected a config JSON file");
    const std::string text = read_small_file(config_file, "config", kMaxConfigBytes);
    json j;
    try {
        DepthPrecheck precheck;
        json::sax_parse(text, &precheck);
        j = json::parse(text);
    } catch (const ModelError& e) {
        throw ModelError(config_file.string() + ": " + e.what());
    } catch (const json::exception& e) {   // parse_error, and out_of_range for numbers such as 1e400
        throw ModelError(config_file.string() + ": invalid JSON: " + e.what());
    }
    ModelSpec spec;
    spec.config_path = config_file;
    const fs::path base = config_file.parent_path();
    try {
        if (!j.is_object()) throw ModelError("top level must be an object");
        reject_unknown_keys(j, "config", {"model", "preprocess", "labels", "weights", "name", "description"});
        if (!j.contains("model")) throw ModelError("model is missing");
        spec.model = j.at("model").get<ModelConfig>();
        spec.model.validate();
        if (j.contains("preprocess")) spec.preprocess = j.at("preprocess").get<PreprocessConfig>();
        else {   // timm's default eval transform for the model's size
            spec.preprocess.crop = spec.model.image_size;
            spec.preprocess.resize = static_cast<int>(spec.model.image_size / 0.875);
            if (spec.model.in_chans == 1) spec.preprocess.mean = {0.5f}, spec.preprocess.std = {0.5f};
        }
        spec.preprocess.validate(spec.model.in_chans, spec.model.image_size);

        if (j.contains("labels")) {
            const json& l = j.at("labels");
            if (l.is_string()) {
                fs::path lp = l.get<std::string>();
                spec.labels = read_labels_file(lp.is_absolute() ? lp : base / lp);
            } else if (l.is_array()) {
                for (const auto& e : l) {
                    if (!e.is_string()) throw ModelError("labels must be strings, got " + brief(e));
                    spec.labels.push_back(e.get<std::string>());
                }
            } else {
                throw ModelError("labels must be a file name or a list of strings, got " + std::string(l.type_name()));
            }
            if (static_cast<int>(spec.labels.size()) != spec.model.num_classes)
                throw ModelError("labels has " + std::to_string(spec.labels.size()) + " entries, expected " +
                                 std::to_string(spec.model.num_classes) + " (model.num_classes)");
        } else {
            for (int i = 0; i < spec.model.num_classes; ++i) spec.labels.push_back("class_" + std::to_string(i));
        }

        fs::path wp;
        if (!weights_override.empty()) wp = weights_override;
        else if (j.contains("weights")) {
            if (!j.at("weights").is_string()) throw ModelError("weights must be a file name");
            wp = j.at("weights").get<std::string>();
            if (wp.is_relative()) wp = base / wp;
        } else {
            wp = base / "model.safetensors";
        }
        spec.weights_path = wp;
    } catch (const ModelError& e) {
        throw ModelError(config_file.string() + ": " + e.what());
    } catch (const json::exception& e) {
        throw ModelError(config_file.string() + ": " + e.what());
    }
    return spec;
}

ModelSpec load_model_dir(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
        throw ModelError(dir.string() + ": not a model directory (expected DIR/config.json)");
    return load_model_spec(dir / "config.json");
}

}  // namespace vit
