// Tests of lib/image, lib/resample and lib/preprocess against PIL 9.4 and torchvision 0.14 outputs
// written by scripts/make_preprocess_fixtures.py into tests/fixtures/preprocess/.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "config.hpp"
#include "errors.hpp"
#include "image.hpp"
#include "image_codecs.hpp"
#include "preprocess.hpp"
#include "resample.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using vit::Interpolation;

namespace {

using vit::test::file_bytes;

fs::path fixtures() { return vit::test::fixtures() / "preprocess"; }

// The cases of a fixture list, one per non-empty line; at least `min_cases` of them, so that an emptied or
// truncated list cannot pass for a test that checked nothing.
std::vector<std::vector<std::string>> read_cases(const std::string& name, std::size_t min_cases) {
    std::ifstream f(fixtures() / name);
    REQUIRE_MESSAGE(f.good(), "missing fixture " << (fixtures() / name).string());
    std::vector<std::vector<std::string>> cases;
    std::string line;
    while (std::getline(f, line)) {
        std::istringstream ss(line);
        std::vector<std::string> fields{std::istream_iterator<std::string>(ss), {}};
        if (!fields.empty()) cases.push_back(fields);
    }
    REQUIRE_MESSAGE(cases.size() >= min_cases,
                    name << " has " << cases.size() << " cases, expected at least " << min_cases);
    return cases;
}

std::vector<float> parse_floats(const std::string& csv) {
    std::vector<float> v;
    std::stringstream ss(csv);
    std::string item;
    while (std::getline(ss, item, ',')) v.push_back(std::stof(item));
    return v;
}

// An expected image written by PIL as PNG: RGB as CV_8UC3 in RGB order, L as CV_8UC1.
cv::Mat load_expected(const std::string& name) {
    cv::Mat m = cv::imread((fixtures() / name).string(), cv::IMREAD_UNCHANGED);
    REQUIRE_MESSAGE(!m.empty(), "cannot read fixture " << name);
    if (m.channels() == 3) cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
    return m;
}

Interpolation parse_filter(const std::string& s) {
    if (s == "nearest") return Interpolation::Nearest;
    if (s == "bilinear") return Interpolation::Bilinear;
    REQUIRE(s == "bicubic");
    return Interpolation::Bicubic;
}

double max_diff(const cv::Mat& a, const cv::Mat& b) {
    if (a.size() != b.size() || a.type() != b.type()) return 1e9;
    return cv::norm(a, b, cv::NORM_INF);
}

void report(const std::string& what, double d) { std::printf("  %-48s maxdiff %.3g\n", what.c_str(), d); }

// Reads a fixture tensor: b"VITT", uint32 ndim, uint32 dims[ndim], float32 data (little-endian).
std::vector<float> read_tensor(const std::string& name, std::vector<uint32_t>& dims) {
    std::ifstream f(fixtures() / name, std::ios::binary);
    char magic[4];
    f.read(magic, 4);
    REQUIRE(std::string(magic, 4) == "VITT");
    uint32_t ndim = 0;
    f.read(reinterpret_cast<char*>(&ndim), 4);
    dims.resize(ndim);
    f.read(reinterpret_cast<char*>(dims.data()), 4 * ndim);
    size_t n = 1;
    for (uint32_t d : dims) n *= d;
    std::vector<float> v(n);
    f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(4 * n));
    REQUIRE(f.good());
    return v;
}

cv::Mat random_image(int w, int h, int type, unsigned seed) {
    cv::Mat m(h, w, type);
    cv::theRNG().state = seed;
    cv::randu(m, 0, 256);
    return m;
}

// What the process writes on file descriptor 2 while `f` runs: libpng and libjpeg write there directly.
template <class F>
std::string stderr_of(F&& f) {
    std::fflush(stderr);
    std::FILE* capture = std::tmpfile();
    REQUIRE(capture);
    const int saved = ::dup(2);
    ::dup2(::fileno(capture), 2);
    auto restore = [&] {
        std::fflush(stderr);
        ::dup2(saved, 2);
        ::close(saved);
    };
    try {
        f();
    } catch (...) {
        restore();
        std::fclose(capture);
        throw;
    }
    restore();
    std::string text;
    std::rewind(capture);
    for (int c; (c = std::fgetc(capture)) != EOF;) text += static_cast<char>(c);
    std::fclose(capture);
    return text;
}

}  // namespace

TEST_CASE("resize_pil reproduces PIL Image.resize bit for bit") {
    for (const auto& c : read_cases("resize_cases.txt", 40)) {
        REQUIRE(c.size() == 5);
        const cv::Mat expected = load_expected(c[4]);
        cv::Mat src = vit::decode_image_file(fixtures() / c[0]);
        if (expected.channels() == 1) src = vit::to_gray(src);
        const cv::Mat got = vit::resize_pil(src, std::stoi(c[2]), std::stoi(c[3]), parse_filter(c[1]));
        const double d = max_diff(got, expected);
        report(c[4], d);
        CAPTURE(c[4]);
        CHECK(d == 0);
    }
}

TEST_CASE("resize_pil_roi equals the same window of resize_pil") {
    std::mt19937 rng(7);
    auto below = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };  // [0, n)
    for (int type : {CV_8UC1, CV_8UC3}) {
        const cv::Mat src = random_image(53, 37, type, 11);
        for (auto interp : {Interpolation::Nearest, Interpolation::Bilinear, Interpolation::Bicubic}) {
            for (const cv::Size out : {cv::Size(19, 71), cv::Size(120, 20), cv::Size(53, 12), cv::Size(8, 37)}) {
                const cv::Mat full = vit::resize_pil(src, out.width, out.height, interp);
                for (int i = 0; i < 5; ++i) {
                    const int x = below(out.width), y = below(out.height);
                    const cv::Rect roi(x, y, 1 + below(out.width - x), 1 + below(out.height - y));
                    const cv::Mat win = vit::resize_pil_roi(src, out.width, out.height, roi, interp);
                    CHECK(max_diff(win, full(roi)) == 0);
                }
            }
        }
    }
}

TEST_CASE("resize_pil: antialias=false only changes downscaling; bad arguments throw") {
    const cv::Mat src = random_image(40, 30, CV_8UC3, 3);
    const cv::Mat up_aa = vit::resize_pil(src, 81, 64, Interpolation::Bicubic, true);
    const cv::Mat up_no = vit::resize_pil(src, 81, 64, Interpolation::Bicubic, false);
    CHECK(max_diff(up_aa, up_no) == 0);
    const cv::Mat down_aa = vit::resize_pil(src, 13, 10, Interpolation::Bilinear, true);
    const cv::Mat down_no = vit::resize_pil(src, 13, 10, Interpolation::Bilinear, false);
    CHECK(down_no.size() == cv::Size(13, 10));
    CHECK(max_diff(down_aa, down_no) > 0);
    // Unchanged size: an exact copy whatever the filter.
    CHECK(max_diff(vit::resize_pil(src, 40, 30, Interpolation::Bicubic), src) == 0);

    CHECK_THROWS_AS(vit::resize_pil(cv::Mat(4, 4, CV_32FC3), 2, 2, Interpolation::Bicubic), std::invalid_argument);
    CHECK_THROWS_AS(vit::resize_pil(src, 0, 2, Interpolation::Bicubic), std::invalid_argument);
    CHECK_THROWS_AS(vit::resize_pil_roi(src, 10, 10, cv::Rect(5, 5, 6, 1), Interpolation::Bicubic),
                    std::invalid_argument);
}

TEST_CASE("resize_output_size follows torchvision 0.14 Resize(int)") {
    CHECK(vit::resize_output_size(500, 375, 256) == cv::Size(341, 256));
    CHECK(vit::resize_output_size(375, 500, 256) == cv::Size(256, 341));
    CHECK(vit::resize_output_size(300, 300, 256) == cv::Size(256, 256));
    CHECK(vit::resize_output_size(57, 91, 40) == cv::Size(40, 63));  // int(63.859...)
    CHECK(vit::resize_output_size(60000, 2, 256) == cv::Size(7680000, 256));
    CHECK(vit::resize_output_size(256, 1000, 256) == cv::Size(256, 1000));
    CHECK_THROWS_AS(vit::resize_output_size(1, 100000000, 256), vit::InputError);
}

TEST_CASE("preprocess matches torchvision's Resize/CenterCrop/ToTensor/Normalize") {
    for (const auto& c : read_cases("transform_cases.txt", 5)) {
        REQUIRE(c.size() == 8);
        vit::PreprocessConfig pp;
        const int in_chans = std::stoi(c[1]);
        pp.resize = std::stoi(c[2]);
        pp.crop = std::stoi(c[3]);
        pp.interpolation = parse_filter(c[4]);
        pp.mean = parse_floats(c[5]);
        pp.std = parse_floats(c[6]);
        std::vector<uint32_t> dims;
        const std::vector<float> want = read_tensor(c[7], dims);
        REQUIRE(dims == std::vector<uint32_t>{uint32_t(in_chans), uint32_t(pp.crop), uint32_t(pp.crop)});
        const std::vector<float> got = vit::preprocess_file(fixtures() / c[0], pp, in_chans);
        REQUIRE(got.size() == want.size());
        float d = 0;
        for (size_t i = 0; i < got.size(); ++i) d = std::max(d, std::fabs(got[i] - want[i]));
        report(c[7], d);
        CAPTURE(c[7]);
        CHECK(d <= 1e-6f);
    }
}

TEST_CASE("preprocess: extreme aspect ratios resample only the crop window") {
    vit::PreprocessConfig pp;
    pp.resize = 16;
    pp.crop = 12;
    // 200x3 -> 1066x16: compare with a full resize then crop, the obvious implementation.
    for (auto interp : {Interpolation::Nearest, Interpolation::Bilinear, Interpolation::Bicubic}) {
        pp.interpolation = interp;
        const cv::Mat src = random_image(200, 3, CV_8UC3, 9);
        std::vector<float> got(3 * 12 * 12);
        vit::preprocess(src, pp, 3, got.data());
        const cv::Mat full = vit::resize_pil(src, 1066, 16, interp);
        const cv::Mat crop = full(cv::Rect((1066 - 12) / 2, 2, 12, 12));  // round(527.0), round(2.0)
        float d = 0;
        for (int ch = 0; ch < 3; ++ch)
            for (int y = 0; y < 12; ++y)
                for (int x = 0; x < 12; ++x) {
                    const float want = (crop.at<cv::Vec3b>(y, x)[ch] / 255.0f - pp.mean[ch]) / pp.std[ch];
                    d = std::max(d, std::fabs(got[(ch * 12 + y) * 12 + x] - want));
                }
        CHECK(d == 0);
    }
    // 60000x2 -> 7,680,000x256 would be 5.9 GB; only the 224x224 window is resampled (its time:
    // scripts/bench/preprocess.sh). Every output is a normalised byte: within [-mean/std, (1-mean)/std].
    pp = vit::PreprocessConfig{};
    const cv::Mat thin = random_image(60000, 2, CV_8UC3, 1);
    std::vector<float> out(3 * 224 * 224, NAN);
    vit::preprocess(thin, pp, 3, out.data());
    for (int ch = 0; ch < 3; ++ch) {
        const float lo = -pp.mean[ch] / pp.std[ch], hi = (1 - pp.mean[ch]) / pp.std[ch];
        const auto plane = out.begin() + ch * 224 * 224;
        CHECK(std::all_of(plane, plane + 224 * 224, [&](float v) { return v >= lo && v <= hi; }));
    }
}

TEST_CASE("preprocess rejects bad arguments") {
    const cv::Mat rgb = random_image(10, 10, CV_8UC3, 1);
    vit::PreprocessConfig pp;
    std::vector<float> out(3 * 224 * 224);
    CHECK_THROWS_WITH_AS(vit::preprocess(rgb, pp, 2, out.data()), "preprocess: in_chans must be 1 or 3, got 2",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(vit::preprocess(rgb, pp, 1, out.data()),
                         "preprocess: mean and std need 1 values each, got 3 and 3", std::invalid_argument);
    CHECK_THROWS_AS(vit::preprocess(cv::Mat(10, 10, CV_8UC4), pp, 3, out.data()), std::invalid_argument);
    pp.crop = 0;
    CHECK_THROWS_AS(vit::preprocess(rgb, pp, 3, out.data()), std::invalid_argument);
}

TEST_CASE("to_gray matches PIL convert(\"L\")") {
    for (const auto& c : read_cases("gray_cases.txt", 2)) {
        const cv::Mat got = vit::to_gray(vit::decode_image_file(fixtures() / c[0]));
        const double d = max_diff(got, load_expected(c[1]));
        report(c[1], d);
        CHECK(d == 0);
    }
    // The integer formula at the extremes and a rounding boundary.
    cv::Mat px(1, 4, CV_8UC3);
    px.at<cv::Vec3b>(0, 0) = {255, 255, 255};
    px.at<cv::Vec3b>(0, 1) = {0, 0, 0};
    px.at<cv::Vec3b>(0, 2) = {255, 0, 0};  // 255 * 19595 / 65536 = 76.24 -> 76
    px.at<cv::Vec3b>(0, 3) = {0, 0, 255};  // 29.07 -> 29
    const cv::Mat g = vit::to_gray(px);
    CHECK(g.at<uint8_t>(0, 0) == 255);
    CHECK(g.at<uint8_t>(0, 1) == 0);
    CHECK(g.at<uint8_t>(0, 2) == 76);
    CHECK(g.at<uint8_t>(0, 3) == 29);
}

TEST_CASE("to_rgb gives cv::cvtColor's bytes for gray, BGR and BGRA") {
    std::mt19937 rng(7);
    const std::pair<int, int> kinds[] = {
        {CV_8UC1, cv::COLOR_GRAY2RGB}, {CV_8UC3, cv::COLOR_BGR2RGB}, {CV_8UC4, cv::COLOR_BGRA2RGB}};
    for (const auto& [type, code] : kinds) {
        CAPTURE(cv::typeToString(type));
        cv::Mat full(37, 53, type);
        for (auto it = full.datastart; it != full.dataend; ++it) *const_cast<uchar*>(it) = static_cast<uchar>(rng());
        // A window of it: rows that are not contiguous in memory.
        for (const cv::Mat& img : {full, full(cv::Rect(3, 5, 41, 29))}) {
            cv::Mat want;
            cv::cvtColor(img, want, code);
            const cv::Mat got = vit::to_rgb(img);
            REQUIRE(got.type() == CV_8UC3);
            REQUIRE(got.size() == img.size());
            CHECK(cv::norm(got, want, cv::NORM_INF) == 0);
        }
    }
    // One BGR pixel by hand: the channels swap, nothing else.
    cv::Mat px(1, 1, CV_8UC3, cv::Scalar(10, 20, 30));
    CHECK(vit::to_rgb(px).at<cv::Vec3b>(0, 0) == cv::Vec3b(30, 20, 10));
    CHECK_THROWS_WITH_AS(vit::to_rgb(cv::Mat(2, 2, CV_16UC3)),
                         "to_rgb: expected a CV_8UC1, CV_8UC3 or CV_8UC4 image, got CV_16UC3", std::invalid_argument);
    CHECK_THROWS_AS(vit::to_rgb(cv::Mat(2, 2, CV_8UC2)), std::invalid_argument);
}

TEST_CASE("decoding converts like PIL's convert(\"RGB\"), with EXIF orientation applied") {
    for (const auto& c : read_cases("convert_cases.txt", 29)) {
        CAPTURE(c[0]);
        cv::Mat got;
        // Nothing but vit's own words on stderr: conv_iccp_srgb.png carries the ICC profile libpng calls a
        // "known incorrect sRGB profile" (in many real photos), which OpenCV's PNG reader let it print.
        CHECK(stderr_of([&] { got = vit::decode_image_file(fixtures() / c[0]); }) == "");
        const cv::Mat want = load_expected(c[1]);
        REQUIRE(got.type() == CV_8UC3);
        CHECK(got.size() == want.size());
        const double d = max_diff(got, want);
        report(c[0], d);
        CHECK(d == 0);
    }
    // Orientation 6 (rotate 90 clockwise): a 24x16 picture is shown 16 wide, 24 tall, with its
    // top-left red block at the top right.
    const cv::Mat o6 = vit::decode_image_file(fixtures() / "exif_o6.jpg");
    CHECK(o6.size() == cv::Size(16, 24));
    const cv::Vec3b top_right = o6.at<cv::Vec3b>(2, 13);
    CHECK(top_right[0] > 200);
    CHECK(top_right[1] < 50);
    // 16-bit gray clips like PIL's mode "I" (min(v, 255)); 16-bit colour keeps the high byte.
    const cv::Mat g16 = vit::decode_image_file(fixtures() / "conv_gray16.png");
    const uint8_t want_g16[8] = {0, 1, 127, 255, 255, 255, 255, 255};
    for (int x = 0; x < 8; ++x) CHECK(g16.at<cv::Vec3b>(0, x) == cv::Vec3b::all(want_g16[x]));
}

TEST_CASE("the image codecs are bound within their own libraries (RTLD_DEEPBIND) where that is safe") {
    const cv::Mat got = vit::decode_image_file(fixtures() / "conv_rgb.tif");  // opens the module if not yet
    CHECK(got.type() == CV_8UC3);
    // Safe: no sanitizer runtime, nothing in LD_PRELOAD, and an executable without copy relocations (the
    // build's -fPIC): otherwise the libraries would bind to the originals of data the executable copied.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    const bool safe = false;
#else
    const char* preload = std::getenv("LD_PRELOAD");
    const bool safe = !(preload && *preload);
#endif
    CHECK(vit::image_codecs_deep_bound() == safe);
    // OpenCV writes its "imdecode_('')" line to std::cerr from inside libopencv_imgcodecs. Deep-bound in an
    // executable holding a copy of std::cerr, imgcodecs would write to libstdc++'s original, never constructed:
    // a segfault here instead of the message (seen with a -fPIE test program).
    std::vector<unsigned char> bad = file_bytes(fixtures() / "conv_rgb.tif");
    const std::pair<std::size_t, unsigned char> damage[] = {
        {75, 83}, {76, 63}, {142, 53}, {166, 136}, {182, 167}, {186, 108}};  // a strip TIFF's reader then fails
    for (const auto& [at, value] : damage) bad.at(at) = value;
    const std::string err = stderr_of([&] {
        CHECK_THROWS_WITH_AS(vit::decode_image_bytes(bad, "bad.tif"), "bad.tif: corrupt or unsupported TIFF data",
                             vit::InputError);
    });
    CHECK(err.rfind("imdecode_(''): can't read data: OpenCV(", 0) == 0);
}

TEST_CASE("a CMYK JPEG decodes within rounding of PIL") {
    const cv::Mat got = vit::decode_image_file(fixtures() / "conv_cmyk.jpg");
    const double d = max_diff(got, load_expected("expect_conv_cmyk_jpg.png"));
    report("conv_cmyk.jpg (OpenCV vs PIL CMYK->RGB)", d);
    CHECK(d <= 2);
}

TEST_CASE("decode errors name the file and the problem") {
    const vit::test::TempDir tmp("preprocess");
    const auto msg = [](const fs::path& p, const std::string& what) { return p.string() + ": " + what; };

    const fs::path missing = tmp / "missing.jpg";
    CHECK_THROWS_WITH_AS(vit::decode_image_file(missing), msg(missing, "no such file").c_str(), vit::InputError);

    CHECK_THROWS_WITH_AS(vit::decode_image_file(tmp.path()),
                         msg(tmp.path(), "is a directory, not an image file").c_str(), vit::InputError);

    const fs::path empty = tmp.write("empty.png", {});
    CHECK_THROWS_WITH_AS(vit::decode_image_file(empty), msg(empty, "empty file (0 bytes)").c_str(), vit::InputError);

    std::vector<unsigned char> noise(1000);
    std::mt19937 rng(1);
    for (auto& b : noise) b = static_cast<unsigned char>(rng());
    noise[0] = 0x00;  // not accidentally a known signature
    const fs::path random = tmp.write("random.jpg", noise);
    CHECK_THROWS_WITH_AS(vit::decode_image_file(random),
                         msg(random, "not an image (unrecognised or unsupported format)").c_str(), vit::InputError);

    const std::vector<unsigned char> png = file_bytes(fixtures() / "src_rgb_40x30.png");
    const fs::path cut_png = tmp.write("cut.png", {png.begin(), png.begin() + png.size() / 2});
    CHECK_THROWS_WITH_AS(vit::decode_image_file(cut_png),
                         msg(cut_png, "truncated PNG data (ends inside a chunk or before IEND)").c_str(),
                         vit::InputError);

    const std::vector<unsigned char> jpg = file_bytes(fixtures() / "src_photo_64x48.jpg");
    for (size_t keep : {jpg.size() - 2, jpg.size() / 2, size_t{300}}) {
        const fs::path cut_jpg = tmp.write("cut.jpg", {jpg.begin(), jpg.begin() + keep});
        CHECK_THROWS_WITH_AS(vit::decode_image_file(cut_jpg),
                             msg(cut_jpg, "truncated JPEG data (no end-of-image marker)").c_str(), vit::InputError);
    }

    std::vector<unsigned char> bad_jpg = jpg;  // intact structure, impossible 0-component frame header
    for (size_t i = 2; i + 9 < bad_jpg.size(); ++i)
        if (bad_jpg[i] == 0xFF && bad_jpg[i + 1] == 0xC0) {
            bad_jpg[i + 9] = 0;  // FFC0, length(2), precision, height(2), width(2), components
            break;
        }
    CHECK_THROWS_WITH_AS(vit::decode_image_bytes(bad_jpg, "bad.jpg"), "bad.jpg: corrupt or unsupported JPEG data",
                         vit::InputError);

    // GIF (decoded by vit): a header with no frame, a frame cut short, broken blocks and codes, a huge screen.
    const std::vector<unsigned char> gif = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0};
    CHECK_THROWS_WITH_AS(vit::decode_image_bytes(gif, "anim.gif"), "anim.gif: truncated GIF data", vit::InputError);
    auto with = [&](std::vector<unsigned char> tail) {
        auto g = gif;
        g.insert(g.end(), tail.begin(), tail.end());
        return g;
    };
    CHECK_THROWS_WITH_AS(vit::decode_image_bytes(with({';'}), "t.gif"),
                         "t.gif: GIF data has no image (trailer before the first frame)", vit::InputError);
    CHECK_THROWS_WITH_AS(vit::decode_image_bytes(with({'X'}), "b.gif"),
                         "b.gif: corrupt GIF data (unknown block type 0x58 before the first frame)", vit::InputError);
    // A 1x1 frame, 2-bit codes: clear (4), then 7, a code not yet defined.
    CHECK_THROWS_WITH_AS(vit::decode_image_bytes(with({',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 1, 0x3C, 0, ';'}), "c.gif"),
                         "c.gif: corrupt GIF data (invalid LZW code)", vit::InputError);
    // The same frame with a clear and an end code: no pixels.
    CHECK_THROWS_WITH_AS(vit::decode_image_bytes(with({',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 1, 0x2C, 0, ';'}), "e.gif"),
                         "e.gif: corrupt GIF data (the first frame's pixel data ends after 0 of 1 pixels)",
                         vit::InputError);
    CHECK_THROWS_WITH_AS(vit::decode_image_bytes(with({',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 5, 0x04}), "s.gif"),
                         "s.gif: truncated GIF data (ends inside the first frame's pixels)", vit::InputError);
    CHECK_THROWS_WITH_AS(
        vit::decode_image_bytes(with({',', 0, 0, 0, 0, 0x60, 0xEA, 0x60, 0xEA, 0}), "h.gif"),  // 60000x60000
        "h.gif: image is 60000x60000 = 3600000000 pixels, over the limit of 100000000", vit::InputError);
    auto anim = file_bytes(fixtures() / "conv_anim.gif");
    anim.resize(anim.size() / 2);
    CHECK_THROWS_WITH_AS(vit::decode_image_bytes(anim, "half.gif"),
                         "half.gif: truncated GIF data (ends inside the first frame's pixels)", vit::InputError);

    CHECK_THROWS_WITH_AS(vit::decode_image_bytes(png, "big.png", 1000),
                         "big.png: image is 40x30 = 1200 pixels, over the limit of 1000", vit::InputError);
    CHECK_THROWS_WITH_AS(vit::decode_image_bytes(jpg, "big.jpg", 3071),
                         "big.jpg: image is 64x48 = 3072 pixels, over the limit of 3071", vit::InputError);
    CHECK_THROWS_WITH_AS(vit::decode_image_bytes(file_bytes(fixtures() / "conv_rgb.tif"), "big.tif", 100),
                         "big.tif: image is 20x10 = 200 pixels, over the limit of 100", vit::InputError);
    CHECK(vit::decode_image_bytes(png, "ok.png", 1200).size() == cv::Size(40, 30));
    CHECK(vit::decode_image_bytes(png, "default.png", 0).size() == cv::Size(40, 30));

    const fs::path locked = tmp.write("locked.png", png);
    fs::permissions(locked, fs::perms::none);
    if (::geteuid() == 0) {
        MESSAGE("running as root: the permission-denied path cannot be exercised");
    } else {
        CHECK_THROWS_WITH_AS(vit::decode_image_file(locked), msg(locked, "permission denied").c_str(), vit::InputError);
    }
}
