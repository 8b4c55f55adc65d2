// Shared helpers for the tests: fixture paths, a temporary directory, reference tensors, max-difference reporting.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

#include "safetensors.hpp"

namespace vit::test {

inline std::filesystem::path fixtures() { return VIT_FIXTURES_DIR; }
inline std::filesystem::path shared() { return VIT_SHARED_DIR; }
inline std::filesystem::path source_dir() { return VIT_SOURCE_DIR; }

// A fresh directory, vit_test_<tag>_<pid> under the system's temporary directory, removed with all it holds
// (permissions restored first) when the object goes out of scope.
class TempDir {
public:
    explicit TempDir(const std::string& tag)
        : path_(std::filesystem::temp_directory_path() / ("vit_test_" + tag + "_" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::permissions(path_, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

    // Writes `bytes` to the file `name` in the directory; returns its path.
    std::filesystem::path write(const std::string& name, const std::vector<unsigned char>& bytes) const {
        std::ofstream f(path_ / name, std::ios::binary);
        f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        return path_ / name;
    }

private:
    std::filesystem::path path_;
};

inline std::vector<unsigned char> file_bytes(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

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
