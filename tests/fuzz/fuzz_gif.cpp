// Fuzz target: vit's own GIF decoder (lib/gif.cpp) called directly, without the sniffing, the other probes and
// the conversions of decode_image_bytes around it, so each second of fuzzing runs far more GIFs through the
// block walk, the LZW decoder and the canvas. Oracles: only std::runtime_error may escape; the header probe and
// the decoder agree (a probe that finds the data sound and gives a size is the decoded image's size; a problem
// the probe reports is the decoder's error); the image is CV_8UC3, or CV_8UC1 when there is no colour table.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "fuzz_common.hpp"
#include "gif.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::vector<unsigned char> bytes(data, data + size);
    const vit::GifHeader header = vit::probe_gif(bytes);
    // decode_image_bytes refuses these from the header before decoding, as here.
    if (header.width * header.height > vit_fuzz::kMaxPixels) return 0;
    try {
        const cv::Mat img = vit::decode_gif_first_frame(bytes);
        FUZZ_CHECK(header.problem.empty() && !header.truncated);
        FUZZ_CHECK(img.type() == CV_8UC3 || img.type() == CV_8UC1);
        FUZZ_CHECK(static_cast<std::uint64_t>(img.cols) == header.width);
        FUZZ_CHECK(static_cast<std::uint64_t>(img.rows) == header.height);
    } catch (const std::runtime_error& e) {
        FUZZ_CHECK(header.problem.empty() || header.problem == e.what());
    }
    return 0;
}
