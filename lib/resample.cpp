// PIL-exact resampling. Each piece names the Pillow 9.4 function it mirrors (libImaging/Resample.c,
// libImaging/Geometry.c, _imaging.c): keep the arithmetic in the same order and types, or bits change.
#include "resample.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace vit {
namespace {

// 8 bits of result and 2 bits of headroom: filters with negative lobes can sum above 1 or below 0.
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);

// clip8: PIL looks `v >> PRECISION_BITS` up in a table that clamps to [0, 255].
inline uint8_t clip8(int32_t v) {
    const int32_t s = v >> kPrecisionBits;  // arithmetic shift, as in C on every target PIL builds for
    return static_cast<uint8_t>(s < 0 ? 0 : (s > 255 ? 255 : s));
}

double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

double bicubic_filter(double x) {
    constexpr double a = -0.5;  // PIL's choice; OpenCV and torch use -0.75
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

struct Filter {
    double (*fn)(double);
    double support;
};

// One axis of a resize, for the output indices [begin, begin + n): source taps and fixed-point weights.
struct AxisCoeffs {
    int ksize = 0;                 // weight slots per output index
    std::vector<int> first;        // [n] first source index
    std::vector<int> count;        // [n] source taps used (<= ksize)
    std::vector<int32_t> weights;  // [n * ksize] weights in 1 << kPrecisionBits units
    int src_begin() const { return *std::min_element(first.begin(), first.end()); }
    int src_end() const {
        int e = 0;
        for (size_t i = 0; i < first.size(); ++i) e = std::max(e, first[i] + count[i]);
        return e;
    }
};

// precompute_coeffs + normalize_coeffs_8bpc, for a sub-range of output indices (each output index's
// coefficients depend only on that index, so a sub-range gives the same numbers as the full table).
AxisCoeffs precompute_coeffs(int in_size, int out_size, int begin, int n, const Filter& f, bool antialias) {
    // PIL's box is float[4]: (double)(in1 - in0) with in0 = 0.f, in1 = (float)in_size.
    const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
    double filterscale = scale;
    if (filterscale < 1.0 || !antialias) filterscale = 1.0;
    const double support = f.support * filterscale;
    AxisCoeffs c;
    c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    c.first.resize(n);
    c.count.resize(n);
    c.weights.assign(static_cast<size_t>(n) * c.ksize, 0);
    std::vector<double> k(c.ksize);
    const double ss = 1.0 / filterscale;
    for (int i = 0; i < n; ++i) {
        const int xx = begin + i;
        const double center = 0.0 + (xx + 0.5) * scale;  // in0 + ..., in0 = 0
        int xmin = static_cast<int>(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = static_cast<int>(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        xmax = std::min(xmax, c.ksize);  // never binds; guards the buffer
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            const double w = f.fn((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        int32_t* out = &c.weights[static_cast<size_t>(i) * c.ksize];
        for (int x = 0; x < xmax; ++x) {
            double w = k[x];
            if (ww != 0.0) w /= ww;  // a division, as PIL does, not a multiply by 1/ww
            out[x] = w < 0 ? static_cast<int32_t>(-0.5 + w * (1 << kPrecisionBits))
                           : static_cast<int32_t>(0.5 + w * (1 << kPrecisionBits));
        }
        c.first[i] = xmin;
        c.count[i] = std::max(xmax, 0);
    }
    return c;
}

// The hot loops are compiled for AVX2 and SSE4.1 too and picked at run time (GCC/Clang ifunc):
// baseline x86-64 (SSE2) has no 32-bit vector multiply, and the weights need 24 bits.
#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define VIT_MULTIVERSION __attribute__((target_clones("avx2", "sse4.1", "default")))
#else
#define VIT_MULTIVERSION
#endif

// acc[i] += in[i] * w over a row. Fixed 16-element blocks let GCC vectorise this at -O2 too
// (its "very cheap" cost model only vectorises loops that need no scalar epilogue).
VIT_MULTIVERSION void accumulate_row(int32_t* __restrict acc, const uint8_t* __restrict in, int32_t w, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; ++j) acc[i + j] += in[i + j] * w;
    for (; i < n; ++i) acc[i] += in[i] * w;
}

VIT_MULTIVERSION void clip_row(uint8_t* __restrict out, const int32_t* __restrict acc, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; ++j) out[i + j] = clip8(acc[i + j]);
    for (; i < n; ++i) out[i] = clip8(acc[i]);
}

// ImagingResampleVertical_8bpc: dst row r = sum over taps t of k[t] * src row (first[r] + t - row_offset),
// elementwise over all columns and channels. Integer sums do not depend on the order of the taps,
// so accumulating whole rows (vectorisable) gives PIL's per-pixel result exactly.
void vertical_pass(const cv::Mat& src, int row_offset, const AxisCoeffs& cy, cv::Mat& dst) {
    const int n = dst.cols * dst.channels();
    std::vector<int32_t> acc(n);
    for (int r = 0; r < dst.rows; ++r) {
        std::fill(acc.begin(), acc.end(), kHalf);
        const int32_t* k = &cy.weights[static_cast<size_t>(r) * cy.ksize];
        for (int t = 0; t < cy.count[r]; ++t)
            accumulate_row(acc.data(), src.ptr<uint8_t>(cy.first[r] - row_offset + t), k[t], n);
        clip_row(dst.ptr<uint8_t>(r), acc.data(), n);
    }
}

// ImagingResampleHorizontal_8bpc on rows [row_begin, row_end) of src, output columns as in cx.
// Each output pixel is the same integer sum as PIL's, computed as a vertical pass over the transposed
// source columns [cx.src_begin(), cx.src_end()) and transposed back: rows vectorise, pixels do not.
cv::Mat horizontal_pass(const cv::Mat& src, int row_begin, int row_end, const AxisCoeffs& cx) {
    const int col_begin = cx.src_begin(), col_end = cx.src_end();
    cv::Mat src_t;  // [W_used, H_used] with channels interleaved
    cv::transpose(src(cv::Range(row_begin, row_end), cv::Range(col_begin, col_end)), src_t);
    cv::Mat dst_t(static_cast<int>(cx.first.size()), row_end - row_begin, src.type());
    vertical_pass(src_t, col_begin, cx, dst_t);
    cv::Mat dst;
    cv::transpose(dst_t, dst);
    return dst;
}

// Source index of each output index in [begin, begin + n) for PIL's nearest resize, -1 where PIL
// leaves the zero fill. _resize builds an affine matrix a = (in/out, 0, 0, 0, in/out, 0) in double
// from the float box, and ImagingScaleAffine *accumulates* the position (xo += a[0]) from
// a[0] * 0.5, so the positions are summed exactly as it does rather than computed as (x + 0.5) * a[0].
std::vector<int> nearest_index(int in_size, int out_size, int begin, int n) {
    const double a = static_cast<double>(static_cast<float>(in_size) - 0.0f) / out_size;
    double xo = 0.0 + a * 0.5;
    std::vector<int> idx(n);
    for (int x = 0; x < begin + n; ++x) {
        if (x >= begin) {
            const int xin = xo < 0.0 ? -1 : static_cast<int>(xo);  // COORD()
            idx[x - begin] = (xin >= 0 && xin < in_size) ? xin : -1;
        }
        xo += a;
    }
    return idx;
}

cv::Mat resize_nearest(const cv::Mat& src, int out_w, int out_h, const cv::Rect& roi) {
    const int C = src.channels();
    const std::vector<int> xs = nearest_index(src.cols, out_w, roi.x, roi.width);
    const std::vector<int> ys = nearest_index(src.rows, out_h, roi.y, roi.height);
    cv::Mat dst(roi.height, roi.width, src.type(), cv::Scalar::all(0));
    for (int r = 0; r < roi.height; ++r) {
        if (ys[r] < 0) continue;
        const uint8_t* in = src.ptr<uint8_t>(ys[r]);
        uint8_t* out = dst.ptr<uint8_t>(r);
        for (int x = 0; x < roi.width; ++x) {
            if (xs[x] < 0) continue;
            for (int ch = 0; ch < C; ++ch) out[x * C + ch] = in[xs[x] * C + ch];
        }
    }
    return dst;
}

}  // namespace

cv::Mat resize_pil_roi(const cv::Mat& src, int out_w, int out_h, const cv::Rect& roi, Interpolation interp,
                       bool antialias) {
    if (src.type() != CV_8UC1 && src.type() != CV_8UC3)
        throw std::invalid_argument("resize_pil: expected a CV_8UC1 or CV_8UC3 image, got " +
                                    cv::typeToString(src.type()));
    if (src.empty() || out_w <= 0 || out_h <= 0)
        throw std::invalid_argument("resize_pil: cannot resize " + std::to_string(src.cols) + "x" +
                                    std::to_string(src.rows) + " to " + std::to_string(out_w) + "x" +
                                    std::to_string(out_h));
    if (roi.x < 0 || roi.y < 0 || roi.width < 0 || roi.height < 0 || roi.x + roi.width > out_w ||
        roi.y + roi.height > out_h)
        throw std::invalid_argument("resize_pil: region outside the " + std::to_string(out_w) + "x" +
                                    std::to_string(out_h) + " output");
    if (roi.empty()) return cv::Mat(roi.height, roi.width, src.type());

    // Image.resize returns a copy when the size does not change, whatever the filter.
    if (out_w == src.cols && out_h == src.rows) return src(roi).clone();
    if (interp == Interpolation::Nearest) return resize_nearest(src, out_w, out_h, roi);

    const Filter filter = interp == Interpolation::Bilinear ? Filter{bilinear_filter, 1.0}
                                                            : Filter{bicubic_filter, 2.0};
    // ImagingResampleInner: an axis is resampled only if its size changes; x before y.
    const bool need_h = out_w != src.cols;
    const bool need_v = out_h != src.rows;

    AxisCoeffs cy;
    int row_begin = roi.y, row_end = roi.y + roi.height;
    if (need_v) {
        cy = precompute_coeffs(src.rows, out_h, roi.y, roi.height, filter, antialias);
        row_begin = cy.src_begin();
        row_end = cy.src_end();
    }

    cv::Mat tmp;  // rows [row_begin, row_end) of the horizontally resampled image, roi columns only
    if (need_h) {
        const AxisCoeffs cx = precompute_coeffs(src.cols, out_w, roi.x, roi.width, filter, antialias);
        tmp = horizontal_pass(src, row_begin, row_end, cx);
    } else {
        tmp = src(cv::Range(row_begin, row_end), cv::Range(roi.x, roi.x + roi.width));
    }
    if (!need_v) return need_h ? tmp : tmp.clone();

    cv::Mat dst(roi.height, roi.width, src.type());
    vertical_pass(tmp, row_begin, cy, dst);
    return dst;
}

cv::Mat resize_pil(const cv::Mat& src, int out_w, int out_h, Interpolation interp, bool antialias) {
    return resize_pil_roi(src, out_w, out_h, cv::Rect(0, 0, out_w, out_h), interp, antialias);
}

}  // namespace vit
