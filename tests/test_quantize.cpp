// INT8 quantisation and the INT8 Linear's fused epilogue (lib/quantize.cpp, Linear's INT8 path) against float64
// references computed here with <cmath>'s erf, tanh and exp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <vector>

#include "ops.hpp"
#include "quantize.hpp"

using namespace vit;

namespace {

double gelu_ref(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
double gelu_tanh_ref(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))); }
double quick_gelu_ref(double x) { return x / (1 + std::exp(-1.702 * x)); }

double act_ref(int8::Act a, double v) {
    switch (a) {
        case int8::Act::Gelu: return gelu_ref(v);
        case int8::Act::GeluTanh: return gelu_tanh_ref(v);
        case int8::Act::QuickGelu: return quick_gelu_ref(v);
        default: return v;
    }
}

// The instruction sets this CPU can run: every kernel build is checked where the CPU has it.
std::vector<SimdLevel> levels() {
    std::vector<SimdLevel> l{SimdLevel::Scalar};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) l.push_back(SimdLevel::Avx2);
    if (__builtin_cpu_supports("avx512f")) l.push_back(SimdLevel::Avx512);
    return l;
}

std::vector<float> random_vector(std::size_t n, float sd, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.f, sd);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

}  // namespace

TEST_CASE("the epilogue's activations match erf, tanh and exp") {
    double e_gelu = 0, e_tanh = 0, e_quick = 0;
    for (int i = -200000; i <= 200000; ++i) {  // [-20, 20] in steps of 1e-4, beyond both tails
        const float x = static_cast<float>(i) * 1e-4f;
        e_gelu = std::max(e_gelu, std::fabs(int8::gelu_erf(x) - gelu_ref(x)));
        e_tanh = std::max(e_tanh, std::fabs(int8::gelu_tanh(x) - gelu_tanh_ref(x)));
        e_quick = std::max(e_quick, std::fabs(int8::quick_gelu(x) - quick_gelu_ref(x)));
    }
    std::printf("  max |error| on [-20, 20]: gelu %.2e, gelu_tanh %.2e, quick_gelu %.2e\n", e_gelu, e_tanh, e_quick);
    CHECK(e_gelu < 2e-6);  // absolute, on values up to 20: float rounding of x itself is ~1e-6 there
    CHECK(e_tanh < 2e-6);
    CHECK(e_quick < 2e-6);
    // Far tails: no overflow or NaN from the exponentials.
    for (float x : {-1e4f, -100.f, 100.f, 1e4f}) {
        CHECK(std::isfinite(int8::gelu_erf(x)));
        CHECK(std::isfinite(int8::gelu_tanh(x)));
        CHECK(std::isfinite(int8::quick_gelu(x)));
    }
    CHECK(int8::gelu_erf(-100.f) == 0.f);
    CHECK(int8::gelu_erf(100.f) == 100.f);
    CHECK(int8::quick_gelu(-1e4f) == doctest::Approx(0.0));
}

TEST_CASE("each instruction set's epilogue activations match erf, tanh and exp on [-20, 20] and in the far tails") {
    const std::int64_t N = 400001;  // x = (n - 200000) * 1e-4, as above, through the vector kernels' dequantisation
    std::vector<std::int32_t> acc(N);
    for (std::int64_t n = 0; n < N; ++n) acc[n] = static_cast<std::int32_t>(n - 200000);
    const std::vector<float> ones(N, 1.f), zeros(N, 0.f);
    const float xscale = 1e-4f, tail_scale = 0.1f;
    const std::vector<std::int32_t> tails{-100000, -1000, 1000, 100000, -100000, -1000, 1000, 100000};
    for (SimdLevel level : levels())
        for (auto act : {int8::Act::Gelu, int8::Act::GeluTanh, int8::Act::QuickGelu}) {
            CAPTURE(static_cast<int>(level));
            CAPTURE(static_cast<int>(act));
            std::vector<float> y(N);
            int8::dequantize_rows(acc.data(), 1, N, &xscale, ones.data(), zeros.data(), act, false, y.data(), level);
            double e = 0;
            for (std::int64_t n = 0; n < N; ++n)
                e = std::max(e, std::fabs(y[n] - act_ref(act, static_cast<float>(acc[n]) * xscale)));
            CHECK(e < 2e-6);
            std::vector<float> t(tails.size());
            int8::dequantize_rows(tails.data(), 1, static_cast<std::int64_t>(tails.size()), &tail_scale, ones.data(),
                                  zeros.data(), act, false, t.data(), level);
            for (std::size_t i = 0; i < t.size(); ++i) {
                CAPTURE(tails[i]);
                const double x = static_cast<float>(tails[i]) * tail_scale;
                CHECK(std::isfinite(t[i]));
                CHECK(std::fabs(t[i] - (x > 0 ? x : 0.0)) <= 1e-6 * std::fabs(x));
            }
        }
}

TEST_CASE("per-row quantisation on a worked example") {
    // Row 0: max |x| = 2.54, scale 0.02; row 1: all zero, scale 1; row 2: halves round away from zero.
    const float x[3][4] = {{2.54f, -1.f, 0.01f, -0.03f}, {0, 0, 0, 0}, {127.f, 0.5f, -0.5f, -127.f}};
    for (SimdLevel level : levels()) {
        CAPTURE(static_cast<int>(level));
        std::int8_t q[12];
        float scale[3];
        int8::quantize_rows(&x[0][0], 3, 4, q, scale, level);
        CHECK(scale[0] == doctest::Approx(0.02));
        CHECK(q[0] == 127);
        CHECK(q[1] == -50);
        CHECK(q[2] == 1);   // 0.5 rounds to 1
        CHECK(q[3] == -2);  // -1.5 rounds to -2
        CHECK(scale[1] == 1.f);
        for (int k = 4; k < 8; ++k) CHECK(q[k] == 0);
        CHECK(scale[2] == 1.f);
        CHECK(q[8] == 127);
        CHECK(q[9] == 1);
        CHECK(q[10] == -1);
        CHECK(q[11] == -127);
    }
}

TEST_CASE("dequantisation with bias, activation, residual and re-quantisation against float64") {
    const std::int64_t M = 37, N = 100;  // N not a multiple of any vector width: the loops' tails run too
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> acc_d(-40000, 40000);
    std::vector<std::int32_t> acc(static_cast<std::size_t>(M * N));
    for (auto& a : acc) a = acc_d(rng);
    const auto xs = random_vector(M, 1e-3f, 1), ws = random_vector(N, 1e-3f, 2), b = random_vector(N, 1.f, 3);
    std::vector<float> xscale(M), wscale(N);
    for (std::int64_t i = 0; i < M; ++i) xscale[i] = std::fabs(xs[i]) + 1e-4f;
    for (std::int64_t i = 0; i < N; ++i) wscale[i] = std::fabs(ws[i]) + 1e-4f;
    const auto base = random_vector(M * N, 1.f, 4);
    for (SimdLevel level : levels())
        for (auto act : {int8::Act::None, int8::Act::Gelu, int8::Act::GeluTanh, int8::Act::QuickGelu}) {
            CAPTURE(static_cast<int>(level));
            CAPTURE(static_cast<int>(act));
            std::vector<double> ref(static_cast<std::size_t>(M * N));
            for (std::int64_t m = 0; m < M; ++m)
                for (std::int64_t n = 0; n < N; ++n)
                    ref[m * N + n] = act_ref(act, double(acc[m * N + n]) * xscale[m] * wscale[n] + b[n]);
            std::vector<float> y(static_cast<std::size_t>(M * N)), sum = base;
            int8::dequantize_rows(acc.data(), M, N, xscale.data(), wscale.data(), b.data(), act, false, y.data(),
                                  level);
            int8::dequantize_rows(acc.data(), M, N, xscale.data(), wscale.data(), b.data(), act, true, sum.data(),
                                  level);
            double e = 0, e_sum = 0;
            for (std::int64_t i = 0; i < M * N; ++i) {
                e = std::max(e, std::fabs(y[i] - ref[i]) / (1 + std::fabs(ref[i])));
                e_sum = std::max(e_sum, std::fabs(sum[i] - (base[i] + ref[i])) / (1 + std::fabs(ref[i])));
            }
            CHECK(e < 1e-5);
            CHECK(e_sum < 1e-5);
            // Re-quantised: each row's scale is its max |v| / 127 and q its rounded quotient (the float path's result).
            std::vector<std::int8_t> q(static_cast<std::size_t>(M * N));
            std::vector<float> qscale(M);
            int8::dequantize_requantize_rows(acc.data(), M, N, xscale.data(), wscale.data(), b.data(), act, q.data(),
                                             qscale.data(), level);
            for (std::int64_t m = 0; m < M; ++m) {
                double mx = 0;
                for (std::int64_t n = 0; n < N; ++n) mx = std::max(mx, std::fabs(ref[m * N + n]));
                CHECK(qscale[m] == doctest::Approx(mx / 127).epsilon(1e-5));
                int off = 0;  // the float rounding of v / scale may tip a value lying on a half step
                for (std::int64_t n = 0; n < N; ++n)
                    off = std::max(off,
                                   std::abs(q[m * N + n] - static_cast<int>(std::lround(ref[m * N + n] / qscale[m]))));
                CHECK(off <= 1);
            }
            // A u8 source's form (what the 7-bit weights path hands on): acc + acc_offset, bytes of q + 128.
            std::vector<std::int32_t> offset(static_cast<std::size_t>(N)), shifted(acc.size());
            for (std::int64_t n = 0; n < N; ++n) offset[n] = static_cast<std::int32_t>(n * 37 % 2001) - 1000;
            for (std::int64_t i = 0; i < M * N; ++i) shifted[i] = acc[i] + offset[i % N];
            std::vector<std::int8_t> q_s8(q.size()), q_u8(q.size());
            std::vector<float> scale_s8(M), scale_u8(M);
            int8::dequantize_requantize_rows(shifted.data(), M, N, xscale.data(), wscale.data(), b.data(), act,
                                             q_s8.data(), scale_s8.data(), level);
            int8::dequantize_requantize_rows(acc.data(), M, N, xscale.data(), wscale.data(), b.data(), act, q_u8.data(),
                                             scale_u8.data(), level, offset.data(), true);
            CHECK(scale_u8 == scale_s8);
            int bad = 0;
            for (std::size_t i = 0; i < q.size(); ++i)
                bad += static_cast<std::uint8_t>(q_u8[i]) != (static_cast<std::uint8_t>(q_s8[i]) ^ 0x80);
            CHECK(bad == 0);
        }
}

TEST_CASE("INT8 linear layers against float64, each epilogue, and an MLP through quantised activations") {
    const int M = 29, K = 96, F = 160;
    const auto x = random_vector(static_cast<std::size_t>(M) * K, 1.f, 11);
    const auto w1 = random_vector(static_cast<std::size_t>(F) * K, 0.1f, 12), b1 = random_vector(F, 0.5f, 13);
    const auto w2 = random_vector(static_cast<std::size_t>(K) * F, 0.1f, 14), b2 = random_vector(K, 0.5f, 15);
    // float64 reference: h = x·W1ᵀ + b1; u = gelu(h); y = base + u·W2ᵀ + b2
    std::vector<double> h(static_cast<std::size_t>(M) * F), u(h.size()), y_ref(static_cast<std::size_t>(M) * K);
    const auto base = random_vector(y_ref.size(), 1.f, 16);
    for (int m = 0; m < M; ++m)
        for (int f = 0; f < F; ++f) {
            double s = b1[f];
            for (int k = 0; k < K; ++k) s += double(x[m * K + k]) * w1[f * K + k];
            h[m * F + f] = s;
            u[m * F + f] = gelu_ref(s);
        }
    for (int m = 0; m < M; ++m)
        for (int k = 0; k < K; ++k) {
            double s = b2[k] + base[m * K + k];
            for (int f = 0; f < F; ++f) s += u[m * F + f] * w2[k * F + f];
            y_ref[m * K + k] = s;
        }
    auto max_rel = [](const std::vector<float>& got, const std::vector<double>& ref) {
        double e = 0, mx = 0;
        for (std::size_t i = 0; i < ref.size(); ++i) e = std::max(e, std::fabs(got[i] - ref[i]));
        for (double r : ref) mx = std::max(mx, std::fabs(r));
        return e / mx;
    };
    const Linear fc1(w1.data(), b1.data(), K, F, Linear::Epilogue::Gelu, Precision::INT8);
    const Linear fc1_none(w1.data(), b1.data(), K, F, Linear::Epilogue::None, Precision::INT8);
    const Linear fc2(w2.data(), b2.data(), F, K, Linear::Epilogue::Residual, Precision::INT8);
    std::vector<float> hf(h.size()), uf(u.size()), y1 = base, y2 = base;
    fc1_none.forward(x.data(), M, hf.data());
    fc1.forward(x.data(), M, uf.data());
    fc2.forward(uf.data(), M, y1.data());
    QuantizedRows uq;
    fc1.forward(x.data(), M, uq);
    CHECK(uq.M == M);
    CHECK(uq.K == F);
    fc2.forward(uq, y2.data());
    const double e_h = max_rel(hf, h), e_u = max_rel(uf, u), e_y1 = max_rel(y1, y_ref), e_y2 = max_rel(y2, y_ref);
    std::printf("  int8 vs float64, max |error| / max |ref|: fc1 %.2e, fc1+gelu %.2e, mlp %.2e, mlp quantised %.2e\n",
                e_h, e_u, e_y1, e_y2);
    // 8-bit operands: ~1/127 per operand, averaged down over K terms; 7-bit weights (no VNNI) double the weights'
    // share (2.2e-2, 2.3e-2, 1.3e-2 under ONEDNN_MAX_CPU_ISA=AVX2; 16-bit saturation, before the 7 bits, gave 0.18).
    const double bound = int8_weights_7bit() ? 0.04 : 0.02;
    CHECK(e_h < bound);
    CHECK(e_u < bound);
    CHECK(e_y1 < bound);
    CHECK(e_y2 < bound);
    // The quantised hand-off is the float path's quantisation without the float copy: same result.
    double d = 0;
    for (std::size_t i = 0; i < y1.size(); ++i) d = std::max(d, double(std::fabs(y1[i] - y2[i])));
    CHECK(d < 1e-3 * std::fabs(*std::max_element(y_ref.begin(), y_ref.end())) + 1e-4);
}

TEST_CASE("INT8 linear with every product at full scale: exact, no 16-bit saturation on any instruction set") {
    // x rows of +1 and -1 quantise to +-127 (u8 255 and 1 in oneDNN's shifted source), weights of +-1 to the top
    // code: without VNNI, pairs of 255 x 127 products overflowed oneDNN's saturating 16-bit sums.
    const int M = 3, K = 64, N = 8;
    std::vector<float> x(static_cast<std::size_t>(M) * K), w(static_cast<std::size_t>(N) * K, 1.f);
    for (int k = 0; k < K; ++k) {
        x[static_cast<std::size_t>(k)] = 1.f;
        x[static_cast<std::size_t>(K + k)] = -1.f;
        x[static_cast<std::size_t>(2 * K + k)] = k % 2 ? 1.f : -1.f;
    }
    for (int n = 1; n < N; n += 2)
        for (int k = 0; k < K; ++k) w[static_cast<std::size_t>(n * K + k)] = -1.f;
    const Linear fc(w.data(), nullptr, K, N, Linear::Epilogue::None, Precision::INT8);
    std::vector<float> y(static_cast<std::size_t>(M) * N);
    fc.forward(x.data(), M, y.data());
    MESSAGE(cpu_isa_name() << ": weights in " << (int8_weights_7bit() ? 7 : 8) << " bits");
    for (int n = 0; n < N; ++n) {
        const double sign = n % 2 ? -1.0 : 1.0;
        CHECK(y[static_cast<std::size_t>(n)] == doctest::Approx(K * sign).epsilon(1e-5));
        CHECK(y[static_cast<std::size_t>(N + n)] == doctest::Approx(-K * sign).epsilon(1e-5));
        CHECK(std::fabs(y[static_cast<std::size_t>(2 * N + n)]) < 1e-3);
    }
}

TEST_CASE("INT8 linear: quantised hand-offs are refused where they do not apply") {
    const std::vector<float> w(4 * 3, 0.5f), x(2 * 3, 1.f);
    std::vector<float> y(2 * 4);
    QuantizedRows q;
    const Linear f32(w.data(), nullptr, 3, 4, Linear::Epilogue::None);
    CHECK_THROWS_WITH_AS(f32.forward(x.data(), 2, q),
                         "Linear::forward with quantized output needs an int8 layer, this one is fp32",
                         std::logic_error);
    const Linear res(w.data(), nullptr, 3, 4, Linear::Epilogue::Residual, Precision::INT8);
    CHECK_THROWS_AS(res.forward(x.data(), 2, q), std::logic_error);
    const Linear a(w.data(), nullptr, 3, 4, Linear::Epilogue::Gelu, Precision::INT8);
    a.forward(x.data(), 2, q);  // K = 4 features
    CHECK_THROWS_WITH_AS(a.forward(q, y.data()), "Linear::forward: quantized input has 4 features, the layer expects 3",
                         std::invalid_argument);
}
