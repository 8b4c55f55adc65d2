// Fuzz target: vit's own Radiance HDR reader (lib/hdr.cpp) called directly: the text header and the flat and
// run-length encoded scanlines, many more runs a second than through decode_image_bytes. Oracles: only
// std::runtime_error may escape; a header the probe accepts with a size within the limits decodes to that size
// (CV_32FC3) or fails with "truncated ..." / "corrupt ..."; every decoded value is finite and non-negative.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "fuzz_common.hpp"
#include "hdr.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::vector<unsigned char> bytes(data, data + size);
    const vit::HdrHeader header = vit::probe_hdr(bytes);
    FUZZ_CHECK(!header.has_size || (header.problem.empty() && !header.truncated));
    // decode_image_bytes refuses these from the header before decoding: empty, a side over OpenCV's 2^20, over
    // the pixel limit.
    const std::uint64_t w = header.width, h = header.height, max_side = std::uint64_t{1} << 20;
    if (!header.has_size || w == 0 || h == 0 || w > max_side || h > max_side || w * h > vit_fuzz::kMaxPixels) return 0;
    try {
        const cv::Mat img = vit::decode_hdr(bytes);
        FUZZ_CHECK(img.type() == CV_32FC3);
        FUZZ_CHECK(static_cast<std::uint64_t>(img.cols) == header.width);
        FUZZ_CHECK(static_cast<std::uint64_t>(img.rows) == header.height);
        const float* v = img.ptr<float>();
        for (std::size_t i = 0; i < img.total() * 3; ++i) FUZZ_CHECK(std::isfinite(v[i]) && v[i] >= 0);
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        FUZZ_CHECK(what.rfind("truncated ", 0) == 0 || what.rfind("corrupt ", 0) == 0);
    }
    return 0;
}
