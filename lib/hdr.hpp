// Radiance HDR (RGBE): header probe and decoder, here rather than in OpenCV 4.6, whose reader leaks a FILE* (and
// so a file descriptor) for every malformed file and goes through a temporary file: a batch of bad .hdr files
// would end in "Too many open files". The result is what OpenCV returns, bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace vit {

// What an HDR file's text header says: a "#?..." line, variable lines up to an empty line (one must be
// FORMAT=32-bit_rle_rgbe), then the resolution line "-Y H +X W" (the only orientation OpenCV reads).
struct HdrHeader {
    bool has_size = false;  // the resolution line was read
    std::uint64_t width = 0, height = 0;
    std::size_t data = 0;    // offset of the pixel data
    bool truncated = false;  // the data ends inside the header
    std::string problem;     // empty when the header is sound
};

HdrHeader probe_hdr(const std::vector<unsigned char>& data);

// The pixels of a file whose header probe_hdr accepted, the caller having checked the size against its limits:
// CV_32FC3 in BGR order, each component byte * 2^(exponent - 136), 0 where the exponent byte is 0. Flat RGBE
// quadruples, or scanlines run-length encoded per component (a scanline starting 2, 2, width >> 8, width & 255;
// only for widths 8..32767, and a scanline that does not start so switches to flat data for the rest).
// Throws std::runtime_error with the problem (no file name) for malformed or truncated data.
cv::Mat decode_hdr(const std::vector<unsigned char>& data);

}  // namespace vit
