// Shared helpers of the fuzz targets: a per-process scratch folder for APIs that take a path, and the
// check that turns a broken invariant into a crash libFuzzer reports.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace vit_fuzz {

// The pixel limit the image targets decode under: small enough that an accepted image decodes fast and well
// under libFuzzer's memory limit.
inline constexpr std::uint64_t kMaxPixels = std::uint64_t{1} << 22;

// Aborts with a message: libFuzzer records the input as a crash.
#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                 \
        }                                                                                 \
    } while (0)

// One folder per process (libFuzzer -fork/-jobs run several), removed at exit.
class ScratchDir {
public:
    ScratchDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "vit-fuzz-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) std::abort();
        path_ = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }

    // Writes `size` bytes to `name` inside the folder and returns its path.
    std::filesystem::path write(const std::string& name, const void* data, std::size_t size) const {
        const std::filesystem::path p = path_ / name;
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
        if (!out) std::abort();
        return p;
    }

private:
    std::filesystem::path path_;
};

inline ScratchDir& scratch() {
    static ScratchDir dir;
    return dir;
}

}  // namespace vit_fuzz
