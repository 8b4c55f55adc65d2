// Shared helpers for the tests: fixture paths, reference tensors, max-difference reporting.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "safetensors.hpp"

namespace vit::test {

inline std::filesystem::path fixtures() { return VIT_FIXTURES_DIR; }
inline std::filesystem::path shared() { return VIT_SHARED_DIR; }
inline std::filesystem::path source_dir() { return VIT_SOURCE_DIR; }

// A reference tensor from a fixture file as float32.
inline std::vector<float> tensor(const SafetensorsFile& f, const std::string& name) {
    const TensorView* t = f.find(name);
    if (!t) throw std::runtime_error(f.path().string() + ": fixture tensor " + name + " missing");
    return to_f32(*t);
}

inline float max_abs(const std::vector<float>& a) {
    float m = 0;
    for (float v : a) m = std::max(m, std::fabs(v));
    return m;
}

inline float max_abs_diff(const float* a, const float* b, std::size_t n) {
    float m = 0;
    for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

inline float report(const std::string& what, const std::vector<float>& got, const std::vector<float>& want) {
    const float d = max_abs_diff(got.data(), want.data(), std::min(got.size(), want.size()));
    std::printf("  %-40s maxdiff %.3g (max |ref| %.3g)\n", what.c_str(), d, max_abs(want));
    return d;
}

}  // namespace vit::test
