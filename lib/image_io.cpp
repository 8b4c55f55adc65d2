// Reading an image file or standard input into memory, bounded by the pixel limit (see image_format.hpp).
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <system_error>

#include "image_format.hpp"

namespace vit::image {
namespace {

namespace fs = std::filesystem;

// No image this decoder accepts needs more than this many bytes per allowed pixel: 16-bit RGBA is 8, ASCII
// 16-bit PPM ("65535 " per sample) 18; the rest is room for metadata.
constexpr uint64_t kMaxBytesPerPixel = 32;
constexpr uint64_t kMaxMetadataBytes = 64u << 20;

}  // namespace

// Reads a whole file, refusing before reading what cannot be an image within the pixel limit: a regular file
// over kMaxBytesPerPixel * max_pixels (+ metadata) bytes, and anything whose first bytes match no image
// signature (so `vit classify /dev/zero` or a 50 GB log file named .jpg fails after 64 KB, not after
// filling memory). Non-regular files (pipes, devices) are read up to the same limit.
Bytes read_file(const fs::path& path, size_t max_pixels, const std::string& name) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (st.type() == fs::file_type::not_found) fail(name, "no such file");
    if (ec) fail(name, ec == std::errc::permission_denied ? "permission denied" : ec.message());
    if (fs::is_directory(st)) fail(name, "is a directory, not an image file");

    const uint64_t max_bytes = max_pixels > (UINT64_MAX - kMaxMetadataBytes) / kMaxBytesPerPixel
                                   ? UINT64_MAX
                                   : kMaxBytesPerPixel * max_pixels + kMaxMetadataBytes;
    auto too_large = [&](uint64_t size) {
        fail(name, "file is " + std::to_string(size) + " bytes, more than an image of at most " +
                       std::to_string(max_pixels) + " pixels needs (" + std::to_string(max_bytes) + ")");
    };
    uintmax_t size = 0;
    if (fs::is_regular_file(st)) {
        size = fs::file_size(path, ec);
        if (ec) size = 0;
        if (size > max_bytes) too_large(size);
    }
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        const int err = errno;
        fail(name, err == EACCES ? "permission denied" : std::error_code(err, std::generic_category()).message());
    }
    Bytes data;
    data.reserve(static_cast<size_t>(size));
    unsigned char buf[1 << 16];
    size_t got;
    bool sniffed = false;
    while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) {
        data.insert(data.end(), buf, buf + got);
        if (data.size() > max_bytes) {
            std::fclose(f);
            too_large(data.size());
        }
        if (!sniffed && data.size() >= kSniffBytes) {
            sniffed = true;
            const Format format = sniff(data);
            if (format == Format::Unknown) break;  // decode_image_bytes says why
        }
    }
    const bool error = std::ferror(f) != 0;
    const int err = errno;
    std::fclose(f);
    if (error) fail(name, "read error: " + std::error_code(err, std::generic_category()).message());
    return data;
}

}  // namespace vit::image
