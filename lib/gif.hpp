// GIF: the first frame of a GIF (animated or not), decoded here because OpenCV 4.6 has no GIF reader.
// The result is the image PIL 9.4 gives for Image.open(gif).convert("RGB") (or "L" without a colour table).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace vit {

// What a GIF's header says, read without decoding: the canvas size, and whether the data ends before the
// first frame's pixels or is malformed on the way there.
struct GifHeader {
    std::uint64_t width = 0, height = 0;  // logical screen, grown to hold the first frame as PIL does
    bool truncated = false;
    std::string problem;  // empty when the structure up to the first frame is sound
};

GifHeader probe_gif(const std::vector<unsigned char>& data);

// Decodes the first frame onto the canvas: pixels outside the frame are palette index 0, or the frame's
// transparent index when it has one (PIL's fill); transparency is then dropped like PIL's convert("RGB")
// drops it. Returns CV_8UC3 in BGR order (OpenCV's convention), or CV_8UC1 when the file has no colour table.
// Throws std::runtime_error with the problem (no file name) for malformed or truncated data.
cv::Mat decode_gif_first_frame(const std::vector<unsigned char>& data);

}  // namespace vit
