// Internal to the image decoder (image.cpp, image_io.cpp, image_probe.cpp): the formats vit recognises by
// signature, what each header says before any pixel is decoded, and reading a file within the pixel limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "errors.hpp"

namespace vit::image {

using Bytes = std::vector<unsigned char>;

[[noreturn]] inline void fail(const std::string& name, const std::string& what) {
    throw InputError(name + ": " + what);
}

enum class Format { Unknown, Jpeg, Png, Bmp, Gif, WebP, Tiff, Jpeg2000, Pnm, Pfm, Exr, Hdr, SunRaster };

const char* format_name(Format f);

// The signatures OpenCV 4.6's decoders check, plus GIF and Radiance HDR (decoded by vit). They all lie in the
// first kSniffBytes bytes.
constexpr std::size_t kSniffBytes = 12;
Format sniff(const Bytes& d);

// What the header says, read without decoding.
struct HeaderInfo {
    std::optional<std::pair<std::uint64_t, std::uint64_t>> size;  // width, height
    bool truncated = false;                                       // the data provably ends early
    std::string problem;                                          // a structural error found, if any
};

// What every format's header says before OpenCV allocates the image (image_probe.cpp). `d` starts with the
// signature of `f`.
HeaderInfo probe(Format f, const Bytes& d);

// Reads a whole file (image_io.cpp), refusing before reading what cannot be an image within `max_pixels`;
// errors name it `name`.
Bytes read_file(const std::filesystem::path& path, std::size_t max_pixels, const std::string& name);

}  // namespace vit::image
