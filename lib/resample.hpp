// PIL-exact image resampling: Pillow 9.4's Image.resize for 8-bit L and RGB images, bit for bit.
#pragma once

#include <opencv2/core.hpp>

#include "config.hpp"

namespace vit {

// Image.resize((out_w, out_h), resample) of Pillow 9.4 for a CV_8UC1 or CV_8UC3 image.
//
// Bilinear/Bicubic follow libImaging/Resample.c: separable convolution, horizontal pass first,
// each pass rounding and clipping to uint8 with 22-bit fixed-point weights; an axis whose size does
// not change is not resampled at all. With `antialias` (PIL's only behaviour) the filter support grows
// with the downscale factor. With `antialias == false` the same code runs with the support left
// unscaled: that is the *shape* of torchvision's tensor path with antialias=False (a plain
// interpolating kernel when downscaling), not its bits — torch uses a = -0.75 and replicates borders,
// PIL a = -0.5 and renormalises at borders. Upscaling is unaffected by the flag.
// Nearest follows PIL's ImagingScaleAffine (accumulated double source positions) and ignores `antialias`.
// Throws std::invalid_argument for another Mat type or a non-positive size.
cv::Mat resize_pil(const cv::Mat& src, int out_w, int out_h, Interpolation interp, bool antialias = true);

// Only the pixels `roi` of what resize_pil(src, out_w, out_h, ...) would return, identical bit for bit,
// computed from the source rows/columns that feed them: memory and time scale with roi, not with
// out_w x out_h (a 60000x2 image resized to shorter side 256 is 7.68M x 256 but needs only a
// 224x224 crop). `roi` must lie inside out_w x out_h.
cv::Mat resize_pil_roi(const cv::Mat& src, int out_w, int out_h, const cv::Rect& roi, Interpolation interp,
                       bool antialias = true);

}  // namespace vit
