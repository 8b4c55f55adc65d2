// Fuzz target: image decoding (every format OpenCV 4.6 reads here) and the eval-transform preprocessing for
// 3- and 1-channel models. The interpolation, antialias flag and sizes are picked from the input length so
// the input stays a plain image file (seeds are ordinary images). Oracles: only vit::InputError (and
// std::invalid_argument, the preprocessing API's) may escape; a decoded image is non-empty CV_8UC3 within the
// pixel limit; the preprocessed values are finite; no file descriptor stays open and no temporary file is
// left behind (OpenCV 4.6's HDR reader leaked both for malformed files, PFM and EXR the temporary file).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include <opencv2/core.hpp>

#include "config.hpp"
#include "errors.hpp"
#include "fuzz_common.hpp"
#include "image.hpp"
#include "preprocess.hpp"

namespace {

constexpr std::size_t kMaxPixels = vit_fuzz::kMaxPixels;

vit::PreprocessConfig pick_config(std::size_t size, int in_chans) {
    vit::PreprocessConfig pp;
    static const vit::Interpolation interps[] = {vit::Interpolation::Bicubic, vit::Interpolation::Bilinear,
                                                 vit::Interpolation::Nearest};
    pp.interpolation = interps[size % 3];
    pp.antialias = (size / 3) % 2 == 0;
    pp.crop = in_chans == 3 ? 14 : 9;
    pp.resize = pp.crop + static_cast<int>((size / 6) % 5);
    pp.mean.assign(in_chans, 0.5f);
    pp.std.assign(in_chans, 0.25f);
    return pp;
}

void run(const std::vector<unsigned char>& bytes) {
    const cv::Mat rgb = vit::decode_image_bytes(bytes, "fuzz", kMaxPixels);
    FUZZ_CHECK(rgb.type() == CV_8UC3 && !rgb.empty());
    FUZZ_CHECK(static_cast<std::size_t>(rgb.cols) * rgb.rows <= kMaxPixels);
    for (int in_chans : {3, 1}) {
        const vit::PreprocessConfig pp = pick_config(bytes.size(), in_chans);
        std::vector<float> out(static_cast<std::size_t>(in_chans) * pp.crop * pp.crop);
        vit::preprocess(rgb, pp, in_chans, out.data());
        for (float v : out) FUZZ_CHECK(std::isfinite(v) && v >= -2.0f && v <= 2.0f);
    }
}

int open_fds() {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) n += !e.path().empty();
    return n;
}

// Where OpenCV writes the temporary copies of formats it cannot decode from memory (read at each use).
const std::filesystem::path& opencv_tmp() {
    static const std::filesystem::path dir = vit_fuzz::scratch().path() / "opencv-tmp";
    return dir;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    std::filesystem::create_directory(opencv_tmp());
    ::setenv("OPENCV_TEMP_PATH", opencv_tmp().c_str(), 1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const int fds = open_fds();
    try {
        run(std::vector<unsigned char>(data, data + size));
    } catch (const vit::InputError&) {
    } catch (const std::invalid_argument&) {
    }
    FUZZ_CHECK(open_fds() == fds);
    FUZZ_CHECK(std::filesystem::is_empty(opencv_tmp()));
    return 0;
}
