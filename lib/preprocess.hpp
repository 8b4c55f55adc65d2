// Model input from a decoded image: timm's eval transform (torchvision 0.14 Resize(int) with PIL,
// CenterCrop, ToTensor, Normalize), reproduced to within float rounding.
#pragma once

#include <filesystem>
#include <vector>

#include <opencv2/core.hpp>

#include "config.hpp"

namespace vit {

// torchvision 0.14 Resize(int size) output for a w x h image: the shorter side becomes `size`,
// the longer int(size * long / short) (Python float division, truncated); w == h counts w as short.
// Throws InputError when the longer side would not fit in an int.
cv::Size resize_output_size(int w, int h, int size);

// Where the model's crop window lies for a w x h image: the resized size and the crop's top-left corner in
// resized pixels (negative where the crop is larger than the resized image and zero-padded). Step 2 and 3 of
// preprocess(); vit explain maps attention maps back onto the original image with it.
struct CropGeometry {
    cv::Size resized;
    int left = 0, top = 0;
    int crop = 0;
};
CropGeometry crop_geometry(int w, int h, const PreprocessConfig& pp);

// Writes in_chans x pp.crop x pp.crop floats (CHW) to `out` for a CV_8UC3 RGB image
// (CV_8UC1 is accepted when in_chans == 1):
//   1. in_chans == 1: to_gray (PIL's convert("L")); in_chans must be 1 or 3.
//   2. resize so the shorter side is pp.resize (resize_output_size), or to pp.resize x pp.resize with
//      ResizeMode::Exact, with resize_pil and pp.interpolation / pp.antialias; skipped when the size would
//      not change.
//   3. centre-crop pp.crop x pp.crop at top = int(round((h - crop) / 2.0)) (Python's round, half to
//      even; CropRounding::Floor: (h - crop) // 2 as transformers), same for left; where the image is
//      smaller than the crop it is zero-padded first, the pad split floor/ceil as torchvision does, so
//      padded pixels read as 0 before normalising.
//   4. (x / 255 - mean[c]) / std[c] in float32, torch's order of operations (x = float(v * rescale_factor)
//      when pp.rescale_factor > 0, as transformers' rescale).
// Only the crop window is resampled (resize_pil_roi), so the full resized image is never built:
// a 60000x2 image costs a 224x224 crop, not a 7.68M x 256 intermediate. The result is identical.
// Throws std::invalid_argument for a bad in_chans, image type or config (mean/std size != in_chans,
// non-positive resize/crop, zero std).
void preprocess(const cv::Mat& rgb, const PreprocessConfig& pp, int in_chans, float* out);

// decode_image_file + preprocess: a vector of in_chans * crop * crop floats.
// Throws InputError naming the file for image problems.
std::vector<float> preprocess_file(const std::filesystem::path& path, const PreprocessConfig& pp, int in_chans);

}  // namespace vit
