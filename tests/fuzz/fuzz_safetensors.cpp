// Fuzz target: the safetensors reader and the weights check against a small ModelConfig.
// Oracles: only vit::ModelError may escape; every tensor the reader accepts lies inside the file's data
// section (checked against the mapping's address in /proc/self/maps), has nbytes == numel * dtype size,
// no two overlap, and each converts to float32 without reading outside it (ASan, or SIGSEGV past the mapping).
#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "errors.hpp"
#include "fuzz_common.hpp"
#include "safetensors.hpp"
#include "weights.hpp"

namespace {

// The architecture of the weights seeds (tests/fuzz/make_corpus.sh writes the same table).
vit::ModelConfig small_config() {
    vit::ModelConfig c;
    c.image_size = 4;
    c.patch_size = 2;
    c.in_chans = 3;
    c.embed_dim = 4;
    c.depth = 1;
    c.num_heads = 2;
    c.mlp_dim = 8;
    c.num_classes = 2;
    return c;
}

// Start address of the mapping of `file`, 0 if none (the reader maps the whole file at offset 0).
std::uintptr_t mapping_start(const std::string& file) {
    std::FILE* f = std::fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[4096];
    std::uintptr_t found = 0;
    while (!found && std::fgets(line, sizeof line, f)) {
        std::size_t n = std::strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = '\0';
        if (n < file.size() || std::strcmp(line + n - file.size(), file.c_str()) != 0) continue;
        std::uintptr_t lo = 0, off = 1;
        if (std::sscanf(line, "%" SCNxPTR "-%*" SCNxPTR " %*s %" SCNxPTR, &lo, &off) == 2 && off == 0) found = lo;
    }
    std::fclose(f);
    return found;
}

bool is_float(vit::DType d) {
    return d == vit::DType::F32 || d == vit::DType::F16 || d == vit::DType::BF16 || d == vit::DType::F64;
}

void check_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
    vit::SafetensorsFile file(path);
    FUZZ_CHECK(size >= 8);
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
    FUZZ_CHECK(header_len <= vit::SafetensorsFile::kMaxHeaderBytes && header_len <= size - 8);
    const std::uintptr_t base = file.tensors().empty() ? 0 : mapping_start(path);
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;  // non-empty tensors' bytes
    for (const auto& [name, t] : file.tensors()) {
        FUZZ_CHECK(name == t.name);
        FUZZ_CHECK(t.numel() >= 0);
        FUZZ_CHECK(t.nbytes == static_cast<std::size_t>(t.numel()) * vit::dtype_size(t.dtype));
        FUZZ_CHECK(base != 0);
        const auto begin = reinterpret_cast<std::uintptr_t>(t.data);
        FUZZ_CHECK(begin >= base + 8 + header_len && begin + t.nbytes <= base + size);
        if (t.nbytes) ranges.emplace_back(begin, begin + t.nbytes);
        // The bytes are the file's: the mapping holds what was written.
        FUZZ_CHECK(std::memcmp(t.data, data + (begin - base), t.nbytes) == 0);
        (void)t.shape_str();
        if (is_float(t.dtype) && t.numel() < (1 << 20)) {
            const std::vector<float> v = vit::to_f32(t);
            FUZZ_CHECK(v.size() == static_cast<std::size_t>(t.numel()));
        } else if (!is_float(t.dtype)) {
            try {
                float dummy[1];
                vit::TensorView empty = t;  // zero elements: the dtype check must come first
                empty.shape = {0};
                empty.nbytes = 0;
                vit::convert_to_f32(empty, dummy);
                FUZZ_CHECK(false && "convert_to_f32 accepted a non-float dtype");
            } catch (const vit::ModelError&) {
            }
        }
    }
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 1; i < ranges.size(); ++i) FUZZ_CHECK(ranges[i].first >= ranges[i - 1].second);  // no overlap
}

void check_weights(const std::string& path) {
    const vit::ModelConfig c = small_config();
    const vit::CheckedWeights w = vit::open_weights(path, c);
    for (const auto& spec : vit::expected_tensors(c)) {
        const vit::TensorView& t = w.at(spec.name);
        FUZZ_CHECK(t.shape == spec.shape);
        const std::vector<float> v = vit::to_f32(t);
        FUZZ_CHECK(static_cast<std::int64_t>(v.size()) == t.numel());
    }
    // Nothing unknown: the file holds exactly the expected tensors.
    FUZZ_CHECK(vit::SafetensorsFile(path).tensors().size() == vit::expected_tensors(c).size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = vit_fuzz::scratch().write("w.safetensors", data, size).string();
    try {
        check_file(path, data, size);
    } catch (const vit::ModelError&) {
    }
    try {
        check_weights(path);
    } catch (const vit::ModelError&) {
    }
    return 0;
}
