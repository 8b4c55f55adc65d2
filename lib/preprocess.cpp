// Eval-transform preprocessing (see preprocess.hpp). Dimension letters: C channels, H x W resized
// image, S crop side; out is [C, S, S].
#include "preprocess.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "errors.hpp"
#include "image.hpp"
#include "resample.hpp"

namespace vit {
namespace {

// The offset of the crop inside one axis of `size` pixels. torchvision's center_crop: negative when the
// axis is zero-padded first (pad before = (crop - size) // 2), else int(round((size - crop) / 2.0))
// with Python's round-half-to-even; transformers' center_crop: (size - crop) // 2.
int crop_offset(int size, int crop, CropRounding rounding) {
    if (crop > size) return -((crop - size) / 2);
    if (rounding == CropRounding::Floor) return (size - crop) / 2;  // transformers: (h - crop_h) // 2
    const int d = size - crop;
    const int half = d / 2;
    if (d % 2 == 0) return half;
    return half % 2 == 0 ? half : half + 1;  // d / 2.0 = half + 0.5 rounds to the even neighbour
}

}  // namespace

cv::Size resize_output_size(int w, int h, int size) {
    const bool w_short = w <= h;
    const int64_t short_side = w_short ? w : h;
    const int64_t long_side = w_short ? h : w;
    // Python: int(size * long / short), a correctly rounded double quotient, truncated.
    const double quotient = static_cast<double>(size * long_side) / static_cast<double>(short_side);
    if (quotient >= static_cast<double>(std::numeric_limits<int>::max()))
        throw InputError("image " + std::to_string(w) + "x" + std::to_string(h) +
                         " is too elongated to resize its shorter side to " + std::to_string(size));
    const int new_long = static_cast<int>(quotient);
    return w_short ? cv::Size(size, new_long) : cv::Size(new_long, size);
}

CropGeometry crop_geometry(int w, int h, const PreprocessConfig& pp) {
    CropGeometry g;
    g.resized = pp.resize_mode == ResizeMode::Exact ? cv::Size(pp.resize, pp.resize)
                                                    : resize_output_size(w, h, pp.resize);
    g.crop = pp.crop;
    g.left = crop_offset(g.resized.width, pp.crop, pp.crop_rounding);
    g.top = crop_offset(g.resized.height, pp.crop, pp.crop_rounding);
    return g;
}

void preprocess(const cv::Mat& rgb, const PreprocessConfig& pp, int in_chans, float* out) {
    if (in_chans != 1 && in_chans != 3)
        throw std::invalid_argument("preprocess: in_chans must be 1 or 3, got " + std::to_string(in_chans));
    if (rgb.type() != CV_8UC3 && !(rgb.type() == CV_8UC1 && in_chans == 1))
        throw std::invalid_argument("preprocess: expected a CV_8UC3 RGB image, got " + cv::typeToString(rgb.type()));
    if (rgb.empty()) throw std::invalid_argument("preprocess: empty image");
    if (pp.resize <= 0 || pp.crop <= 0)
        throw std::invalid_argument("preprocess: resize and crop must be positive, got resize " +
                                    std::to_string(pp.resize) + ", crop " + std::to_string(pp.crop));
    if (pp.mean.size() != static_cast<size_t>(in_chans) || pp.std.size() != static_cast<size_t>(in_chans))
        throw std::invalid_argument("preprocess: mean and std need " + std::to_string(in_chans) + " values each, got " +
                                    std::to_string(pp.mean.size()) + " and " + std::to_string(pp.std.size()));
    for (float s : pp.std)
        if (s == 0.0f) throw std::invalid_argument("preprocess: std must be non-zero");

    const cv::Mat img = in_chans == 1 ? to_gray(rgb) : rgb;
    const CropGeometry geo = crop_geometry(img.cols, img.rows, pp);
    const cv::Size resized = geo.resized;
    const int S = pp.crop, left = geo.left, top = geo.top;

    // The part of the resized image that the crop window covers; the rest of the window is padding.
    const int x0 = std::max(left, 0), x1 = std::min(left + S, resized.width);
    const int y0 = std::max(top, 0), y1 = std::min(top + S, resized.height);
    const cv::Mat window = resize_pil_roi(img, resized.width, resized.height, cv::Rect(x0, y0, x1 - x0, y1 - y0),
                                          pp.interpolation, pp.antialias);

    // ToTensor then Normalize, per byte value: float(v) / 255 (torchvision) or float(double(v) * factor)
    // (transformers' rescale), then (x - mean) / std, in float32.
    for (int c = 0; c < in_chans; ++c) {
        std::array<float, 256> lut;
        for (int v = 0; v < 256; ++v) {
            const float x = pp.rescale_factor > 0 ? static_cast<float>(v * pp.rescale_factor)
                                                  : static_cast<float>(v) / 255.0f;
            lut[v] = (x - pp.mean[c]) / pp.std[c];
        }
        float* plane = out + static_cast<size_t>(c) * S * S;
        std::fill(plane, plane + static_cast<size_t>(S) * S, lut[0]);  // torchvision pads with 0
        for (int y = y0; y < y1; ++y) {
            const uint8_t* in = window.ptr<uint8_t>(y - y0) + c;
            float* row = plane + static_cast<size_t>(y - top) * S + (x0 - left);
            for (int x = 0; x < x1 - x0; ++x) row[x] = lut[in[x * in_chans]];
        }
    }
}

std::vector<float> preprocess_file(const std::filesystem::path& path, const PreprocessConfig& pp, int in_chans) {
    const cv::Mat rgb = decode_image_file(path);
    std::vector<float> out(static_cast<size_t>(std::max(in_chans, 0)) * std::max(pp.crop, 0) * std::max(pp.crop, 0));
    try {
        preprocess(rgb, pp, in_chans, out.data());
    } catch (const InputError& e) {
        throw InputError(path.string() + ": " + e.what());
    }
    return out;
}

}  // namespace vit
