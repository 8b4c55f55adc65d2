// Attention maps drawn on the original image: the patch-grid map is bicubic-upsampled over the centre crop's
// footprint in the original image (through the preprocessing's resize and crop offsets), coloured with a
// perceptual colormap and alpha-blended; optionally next to the original with a caption. PNGs written atomically.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "config.hpp"

namespace vit {

struct OverlayStyle {
    double alpha = 0.5;  // weight of the colormap in the blend
    int colormap = 0;    // cv::ColormapTypes; 0 = cv::COLORMAP_INFERNO (set in overlay.cpp)
};

// The map (grid x grid floats, row-major, in [0, 1]) at every pixel of a w x h original image: pixel (x, y) is
// placed in the crop the model saw (x + 0.5) * resized.width / w - left crop pixels from its left edge, then on
// the grid at crop * grid / crop_size - 0.5 cells, where a bicubic (a = -0.75, as OpenCV and torch, edges
// replicated) interpolates it. Pixels outside the crop (cut off by the centre crop) get 0: the model did not see
// them. Result: CV_32F h x w, clamped to [0, 1].
cv::Mat heat_on_original(const std::vector<float>& map, int grid, cv::Size original, const PreprocessConfig& pp);

// The original RGB image (CV_8UC3) blended with the colormapped heat; BGR CV_8UC3 of the same size.
cv::Mat render_overlay(const cv::Mat& rgb, const cv::Mat& heat, const OverlayStyle& style = {});

// The original (RGB in) and the overlay (BGR) side by side, 2w x h BGR, `caption` written on the overlay's top-left
// corner (non-ASCII bytes drawn as '?': OpenCV's Hershey fonts are ASCII).
cv::Mat side_by_side(const cv::Mat& rgb, const cv::Mat& overlay, const std::string& caption);

// Encodes BGR `image` as PNG and writes it to `path` through a temporary file in the same folder (mkstemp), fsynced,
// then moved into place: a reader never sees a half-written PNG. An existing `path` is replaced only when
// `replace`; otherwise nothing is written and false is returned (the temporary is hard-linked into place, so a
// file that appears meanwhile is not overwritten either). Throws std::runtime_error naming the path on I/O errors.
bool write_png_atomic(const cv::Mat& image, const std::filesystem::path& path, bool replace);

}  // namespace vit
