// The safetensors reader and the weights check: every loader error names the file, the tensor and got/expected.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "test_util.hpp"
#include "weights.hpp"

using namespace vit;
namespace fs = std::filesystem;

namespace {

struct Entry {
    std::string name;
    std::string dtype;
    std::vector<std::int64_t> shape;
    std::vector<unsigned char> bytes;
};

fs::path tmp_file(const std::string& name) {
    static const test::TempDir dir("weights");  // removed at exit
    return dir / name;
}

void write_raw(const fs::path& p, const std::string& header, const std::vector<unsigned char>& data,
               std::uint64_t header_len_override = 0) {
    std::ofstream f(p, std::ios::binary);
    std::uint64_t n = header_len_override ? header_len_override : header.size();
    for (int i = 0; i < 8; ++i) f.put(static_cast<char>((n >> (8 * i)) & 0xff));
    f << header;
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

fs::path write_file(const std::string& name, const std::vector<Entry>& entries) {
    nlohmann::ordered_json h;
    std::vector<unsigned char> data;
    for (const auto& e : entries) {
        h[e.name] = {
            {"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {data.size(), data.size() + e.bytes.size()}}};
        data.insert(data.end(), e.bytes.begin(), e.bytes.end());
    }
    const fs::path p = tmp_file(name);
    write_raw(p, h.dump(), data);
    return p;
}

ModelConfig small_config() {
    ModelConfig c;
    c.image_size = 16, c.patch_size = 8, c.in_chans = 3, c.embed_dim = 8, c.depth = 1, c.num_heads = 2, c.mlp_dim = 16;
    c.num_classes = 3;
    return c;
}

std::vector<unsigned char> f32_bytes(std::int64_t n, float value) {
    std::vector<unsigned char> b(static_cast<std::size_t>(n) * 4);
    for (std::int64_t i = 0; i < n; ++i) std::memcpy(&b[i * 4], &value, 4);
    return b;
}

// A complete, valid F32 weights file for small_config(), optionally edited.
std::vector<Entry> valid_entries() {
    std::vector<Entry> out;
    for (const auto& s : expected_tensors(small_config())) {
        std::int64_t n = 1;
        for (auto d : s.shape) n *= d;
        out.push_back({s.name, "F32", s.shape, f32_bytes(n, 0.25f)});
    }
    return out;
}

std::string error_of(const fs::path& p) {
    try {
        open_weights(p, small_config());
    } catch (const ModelError& e) {
        const std::string msg = e.what();
        CHECK(msg.rfind(p.string() + ": ", 0) == 0);
        return msg.substr(p.string().size() + 2);
    }
    return "(no error)";
}

Entry* find(std::vector<Entry>& es, const std::string& name) {
    for (auto& e : es)
        if (e.name == name) return &e;
    return nullptr;
}

}  // namespace

TEST_CASE("tensor table follows timm names and the config's options") {
    ModelConfig c = small_config();
    auto t = expected_tensors(c);
    CHECK(t.front().name == "patch_embed.proj.weight");
    CHECK(t.front().shape == std::vector<std::int64_t>{8, 3, 8, 8});
    CHECK(parameter_count(c) ==
          8 * 3 * 64 + 8 + 8 + 5 * 8 + (2 * 8 + 24 * 8 + 24 + 64 + 8 + 16 + 16 * 8 + 16 + 8 * 16 + 8) + 16 + 3 * 8 + 3);
    c.qkv_bias = false, c.class_token = false, c.global_pool = GlobalPool::Avg, c.fc_norm = true;
    t = expected_tensors(c);
    auto has = [&](const std::string& n) {
        for (auto& s : t)
            if (s.name == n) return true;
        return false;
    };
    CHECK_FALSE(has("cls_token"));
    CHECK_FALSE(has("blocks.0.attn.qkv.bias"));
    CHECK_FALSE(has("norm.weight"));
    CHECK(has("fc_norm.weight"));
}

TEST_CASE("a valid file loads; F16 and BF16 convert exactly") {
    auto es = valid_entries();
    const fs::path p = write_file("ok.safetensors", es);
    auto w = open_weights(p, small_config());
    CHECK(w.warnings.empty());
    CHECK(to_f32(w.at("head.bias")) == std::vector<float>(3, 0.25f));

    Entry* e = find(es, "head.bias");
    e->dtype = "F16";
    e->bytes = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x35};  // 1.0, -2.0, 0.3125
    Entry* f = find(es, "head.weight");
    f->dtype = "BF16";
    f->bytes.assign(24 * 2, 0);
    for (int i = 0; i < 24; ++i) f->bytes[2 * i + 1] = 0x3f, f->bytes[2 * i] = 0xc0;  // 1.5
    const fs::path q = write_file("mixed.safetensors", es);
    auto w2 = open_weights(q, small_config());
    CHECK(to_f32(w2.at("head.bias")) == std::vector<float>{1.0f, -2.0f, 0.3125f});
    CHECK(to_f32(w2.at("head.weight")) == std::vector<float>(24, 1.5f));
    CHECK(half_to_float(0x0001) == doctest::Approx(5.960464477539063e-08));  // smallest subnormal
    CHECK(std::isinf(half_to_float(0x7c00)));
    CHECK(float_to_bf16(1.0f) == 0x3f80);
}

TEST_CASE("weights check: missing, unknown, wrong shape, wrong dtype, NaN") {
    auto es = valid_entries();
    es.erase(es.begin() + 1);  // patch_embed.proj.bias
    CHECK(error_of(write_file("missing.safetensors", es)) ==
          "tensor \"patch_embed.proj.bias\" is missing (expected shape [8])");

    es = valid_entries();
    es.push_back({"blocks.1.norm1.weight", "F32", {8}, f32_bytes(8, 1)});
    CHECK(error_of(write_file("unknown.safetensors", es)) ==
          "unknown tensor \"blocks.1.norm1.weight\" [8] (not part of the configured architecture)");

    es = valid_entries();
    find(es, "pos_embed")->shape = {1, 4, 8};
    find(es, "pos_embed")->bytes = f32_bytes(32, 0);
    CHECK(error_of(write_file("shape.safetensors", es)) ==
          "tensor \"pos_embed\" has shape [1, 4, 8], expected [1, 5, 8]");

    es = valid_entries();
    find(es, "head.bias")->dtype = "I32";
    CHECK(error_of(write_file("dtype.safetensors", es)) ==
          "tensor \"head.bias\" has dtype I32, expected F32, F16 or BF16");

    es = valid_entries();
    find(es, "head.bias")->bytes = f32_bytes(3, NAN);
    find(es, "norm.bias")->bytes = f32_bytes(8, INFINITY);
    auto w = open_weights(write_file("nan.safetensors", es), small_config());
    REQUIRE(w.warnings.size() == 2);
    CHECK(w.warnings[0].find("tensor \"norm.bias\" has 8 NaN/Inf values") != std::string::npos);
    CHECK(w.warnings[1].find("tensor \"head.bias\" has 3 NaN/Inf values") != std::string::npos);
}

TEST_CASE("safetensors container errors") {
    const fs::path p = tmp_file("bad.safetensors");
    write_raw(p, "{}", {}, 1000);
    CHECK(error_of(p) == "header length 1000 runs past the end of the 10-byte file (truncated?)");
    write_raw(p, "", {}, 1ull << 40);
    CHECK(error_of(p) == "header length 1099511627776 exceeds the limit of 104857600 bytes (not a safetensors file?)");
    std::ofstream(p, std::ios::binary) << "abc";
    CHECK(error_of(p) == "not a safetensors file: 3 bytes, shorter than the 8-byte header length");
    write_raw(p, "{\"a\": [", {});
    CHECK(error_of(p).rfind("malformed header JSON: ", 0) == 0);
    write_raw(p, R"({"head.bias": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}})",
              std::vector<unsigned char>(8));
    CHECK(error_of(p) == "tensor \"head.bias\": data_offsets [0, 12] lie outside the 8-byte data section");
    write_raw(p, R"({"head.bias": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})",
              std::vector<unsigned char>(8));
    CHECK(error_of(p) == "tensor \"head.bias\": holds 8 bytes, but F32 [3] needs 12");
    write_raw(
        p,
        R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}, "b": {"dtype": "F32", "shape": [3], "data_offsets": [8, 20]}})",
        std::vector<unsigned char>(20));
    CHECK(error_of(p) == "tensors \"a\" and \"b\" overlap in the data section");
    write_raw(
        p,
        R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
        std::vector<unsigned char>(8));
    CHECK(error_of(p) == "tensor \"a\" appears more than once");
    write_raw(p, R"({"a": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 4]}})", std::vector<unsigned char>(4));
    CHECK(error_of(p) == "tensor \"a\": unknown dtype \"Q4\"");
    write_raw(p, R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})",
              std::vector<unsigned char>(4));
    CHECK(error_of(p) == "tensor \"a\": shape [4294967296,4294967296] overflows");
    CHECK_THROWS_WITH_AS(open_weights("/nonexistent.safetensors", small_config()),
                         "/nonexistent.safetensors: cannot open weights file: No such file or directory", ModelError);
    CHECK(error_of(fs::temp_directory_path()).find("is a directory") != std::string::npos);
}
