// Timings of the image side (decode, PIL-exact resize, preprocess) as figures on stdout: the speed figures the
// unit tests used to assert with wall-clock limits. Built as build/tests/bench_preprocess; run through
// scripts/bench/preprocess.sh. Usage: bench_preprocess [REPS] (default 20): median and minimum over REPS runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "config.hpp"
#include "image.hpp"
#include "preprocess.hpp"
#include "resample.hpp"

namespace {

void measure(const char* what, int reps, const std::function<void()>& f) {
    f();  // warm-up
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    std::printf("| %-52s | %9.3f | %9.3f |\n", what, ms[ms.size() / 2], ms.front());
}

cv::Mat random_image(int w, int h, unsigned seed) {
    cv::Mat m(h, w, CV_8UC3);
    cv::theRNG().state = seed;
    cv::randu(m, 0, 256);
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
    const std::string src = VIT_SOURCE_DIR;
    std::printf("| %-52s | %9s | %9s |\n| --- | ---: | ---: |\n", "step", "median ms", "min ms");
    const cv::Mat photo = random_image(500, 375, 5);
    measure("resize_pil 500x375 -> 341x256 bicubic", reps,
            [&] { vit::resize_pil(photo, 341, 256, vit::Interpolation::Bicubic); });
    const vit::PreprocessConfig pp;
    std::vector<float> out(3 * 224 * 224);
    measure("preprocess 500x375 -> 224x224 (resize 256, crop)", reps,
            [&] { vit::preprocess(photo, pp, 3, out.data()); });
    const cv::Mat thin = random_image(60000, 2, 1);
    measure("preprocess 60000x2 -> 224x224 (crop window only)", reps,
            [&] { vit::preprocess(thin, pp, 3, out.data()); });
    std::vector<unsigned char> png;
    cv::imencode(".png", photo, png);
    measure("decode a 500x375 PNG (noise, in memory)", reps, [&] { vit::decode_image_bytes(png, "noise.png"); });
    for (const char* file :
         {"samples/chelsea.png", "samples/fashion/bag.png", "tests/fixtures/preprocess/conv_iccp_srgb.png",
          "tests/fixtures/preprocess/src_photo_64x48.jpg"}) {
        const std::string what = std::string("decode ") + file;
        measure(what.c_str(), reps, [&] { vit::decode_image_file(src + "/" + file); });
    }
    return 0;
}
