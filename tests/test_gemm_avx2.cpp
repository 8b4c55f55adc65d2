// gemm_avx2 (our f32 GEMM for AVX2 CPUs) against a float64 reference on shapes with every kind of remainder (rows
// past the 6-row micro-tile, columns past the 16-column panel, K past the K block, rows past the row block), each
// epilogue, at 1, 2 and 3 threads; and Linear's use of it where oneDNN's ISA is AVX2 (CTest runs this suite with
// ONEDNN_MAX_CPU_ISA=AVX2). The same for gemm_u8s8 (int8 on AVX2), exact against int64.
#include <doctest/doctest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "gemm_avx2.hpp"
#include "ops.hpp"

using namespace vit;
using gemm_avx2::Epilogue;

namespace {

std::vector<float> random_values(std::size_t n, std::uint32_t seed, float lo, float hi) {
    std::vector<float> v(n);
    for (auto& x : v) {
        seed = seed * 1664525u + 1013904223u;
        x = lo + (hi - lo) * static_cast<float>(seed >> 8) / static_cast<float>(1u << 24);
    }
    return v;
}

double activate(double v, Epilogue ep) {
    switch (ep) {
        case Epilogue::Gelu: return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
        case Epilogue::GeluTanh: return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        case Epilogue::QuickGelu: return v / (1 + std::exp(-1.702 * v));
        default: return v;
    }
}

// Runs gemm on [M, K] x [N, K]ᵀ and returns the largest error over the bound 1e-5 * (sum |x w| + |b| + |y0| + 1)
// that float32 accumulation and the vector activations stay within (<= 1 passes).
double worst_error(std::int64_t M, int K, int N, Epilogue ep, bool with_bias) {
    const auto x = random_values(static_cast<std::size_t>(M) * K, 7u + K, -2.f, 2.f);
    const auto w = random_values(static_cast<std::size_t>(N) * K, 11u + N, -0.5f, 0.5f);
    const auto b = random_values(N, 13u, -1.f, 1.f);
    const auto y0 = random_values(static_cast<std::size_t>(M) * N, 17u, -3.f, 3.f);
    std::vector<float> y = ep == Epilogue::Residual ? y0 : std::vector<float>(y0.size(), 1e30f);
    const gemm_avx2::PackedWeights packed(w.data(), K, N);
    gemm_avx2::gemm(x.data(), M, packed, with_bias ? b.data() : nullptr, ep, y.data());
    double worst = 0;
    for (std::int64_t m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
            double s = with_bias ? b[n] : 0.0, mag = std::fabs(s) + 1;
            for (int k = 0; k < K; ++k) {
                const double p = static_cast<double>(x[m * K + k]) * w[static_cast<std::size_t>(n) * K + k];
                s += p;
                mag += std::fabs(p);
            }
            double ref = activate(s, ep);
            if (ep == Epilogue::Residual) {
                ref += y0[m * N + n];
                mag += std::fabs(y0[m * N + n]);
            }
            const double err = std::fabs(y[m * N + n] - ref) / (1e-5 * mag);
            if (!(err <= worst)) worst = std::isnan(err) ? 1e9 : err;
        }
    return worst;
}

struct Shape {
    std::int64_t M;
    int K, N;
};

struct Threads {
    explicit Threads(int n) : saved(omp_get_max_threads()) { omp_set_num_threads(n); }
    ~Threads() { omp_set_num_threads(saved); }
    int saved;
};

}  // namespace

TEST_CASE("gemm_avx2 matches a float64 reference on every remainder, epilogue and thread count") {
    if (!gemm_avx2::supported()) {
        MESSAGE("no AVX2 + FMA on this CPU: gemm_avx2 is not used, nothing to test");
        return;
    }
    const Shape shapes[] = {{1, 1, 1},     {1, 5, 3},    {5, 7, 3},      {6, 16, 16},    {7, 17, 33},   {12, 32, 48},
                            {13, 257, 47}, {1, 768, 40}, {197, 192, 64}, {241, 513, 17}, {250, 40, 31}, {493, 24, 70}};
    const Epilogue eps[] = {Epilogue::None, Epilogue::Gelu, Epilogue::GeluTanh, Epilogue::QuickGelu,
                            Epilogue::Residual};
    for (int threads : {1, 2, 3}) {
        const Threads t(threads);
        for (const Shape& s : shapes)
            for (Epilogue ep : eps)
                for (bool bias : {true, false}) {
                    const double e = worst_error(s.M, s.K, s.N, ep, bias);
                    CAPTURE(threads);
                    CAPTURE(s.M);
                    CAPTURE(s.K);
                    CAPTURE(s.N);
                    CAPTURE(static_cast<int>(ep));
                    CAPTURE(bias);
                    CHECK(e <= 1.0);
                }
    }
}

TEST_CASE("gemm_avx2 on ViT shapes (197 rows, D 192/768, MLP 768/3072) matches a float64 reference") {
    if (!gemm_avx2::supported()) return;
    const Threads t(2);
    double worst = 0;
    worst = std::max(worst, worst_error(197, 768, 2304, Epilogue::None, true));
    worst = std::max(worst, worst_error(197, 768, 3072, Epilogue::Gelu, true));
    worst = std::max(worst, worst_error(197, 3072, 768, Epilogue::Residual, true));
    worst = std::max(worst, worst_error(394, 192, 768, Epilogue::GeluTanh, true));
    worst = std::max(worst, worst_error(197, 768, 192, Epilogue::QuickGelu, true));
    std::printf("gemm_avx2 on ViT shapes: worst error %.3g of the float32 bound\n", worst);
    CHECK(worst <= 1.0);
}

TEST_CASE("gemm_avx2 refuses empty weights") {
    const float w = 1.f;
    CHECK_THROWS_AS(gemm_avx2::PackedWeights(&w, 0, 1), std::invalid_argument);
    CHECK_THROWS_AS(gemm_avx2::PackedWeights(&w, 1, 0), std::invalid_argument);
}

TEST_CASE("Linear runs gemm_avx2 where oneDNN's ISA is AVX2, oneDNN elsewhere, with the same results") {
    const int K = 100, N = 70;
    const std::int64_t M = 9;
    const auto x = random_values(static_cast<std::size_t>(M) * K, 3u, -1.f, 1.f);
    const auto w = random_values(static_cast<std::size_t>(N) * K, 5u, -1.f, 1.f);
    const auto b = random_values(N, 9u, -1.f, 1.f);
    const auto isa = dnnl::get_effective_cpu_isa();
    const bool own = (isa == dnnl::cpu_isa::avx2 || isa == dnnl::cpu_isa::avx2_vnni) && gemm_avx2::supported();
    MESSAGE("oneDNN ISA " << cpu_isa_name() << ": Linear f32 by " << std::string(own ? "gemm_avx2" : "oneDNN"));
    const Linear lin(w.data(), b.data(), K, N, Linear::Epilogue::Gelu);
    std::vector<float> y(static_cast<std::size_t>(M) * N), y_ref(y.size());
    lin.forward(x.data(), M, y.data());
    double worst = 0;
    for (std::int64_t m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
            double s = b[n];
            for (int k = 0; k < K; ++k) s += static_cast<double>(x[m * K + k]) * w[static_cast<std::size_t>(n) * K + k];
            worst = std::max(worst, std::fabs(y[m * N + n] - activate(s, Epilogue::Gelu)));
        }
    CHECK(worst < 1e-4);
    const std::size_t packed_bytes = (N + 15) / 16 * 16 * K * sizeof(float);
    if (own) {
        CHECK(lin.weight_bytes() == packed_bytes);
        const gemm_avx2::PackedWeights packed(w.data(), K, N);
        gemm_avx2::gemm(x.data(), M, packed, b.data(), Epilogue::Gelu, y_ref.data());
        CHECK(std::equal(y.begin(), y.end(), y_ref.begin()));
    }
}

// ------------------------------------------------------------------------------- gemm_u8s8 (int8 on AVX2)

namespace {

// The largest |acc - exact| of gemm_u8s8 on [M, K] u8 x [N, K] s7, against an int64 reference (0 when exact).
std::int64_t u8s8_error(std::int64_t M, int K, int N, std::uint32_t seed) {
    std::vector<std::uint8_t> x(static_cast<std::size_t>(M) * K);
    std::vector<std::int8_t> w(static_cast<std::size_t>(N) * K);
    for (auto& v : x) v = static_cast<std::uint8_t>((seed = seed * 1664525u + 1013904223u) >> 24);
    for (auto& v : w)
        v = static_cast<std::int8_t>(static_cast<int>(((seed = seed * 1664525u + 1013904223u) >> 8) % 127) - 63);
    // the extremes too: full-scale products in the first row and column (the 16-bit pair sums' worst case)
    for (int k = 0; k < K; ++k) {
        x[k] = 255;
        w[k] = static_cast<std::int8_t>(k % 4 < 2 ? 63 : -63);  // pairs of +63 and of -63
    }
    const gemm_avx2::PackedWeightsS8 packed(w.data(), K, N);
    std::vector<std::int32_t> acc(static_cast<std::size_t>(M) * N, -1);
    gemm_avx2::gemm_u8s8(x.data(), M, packed, acc.data());
    std::int64_t worst = 0;
    for (std::int64_t m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
            std::int64_t s = 0;
            for (int k = 0; k < K; ++k) s += std::int64_t{x[m * K + k]} * w[static_cast<std::size_t>(n) * K + k];
            worst = std::max<std::int64_t>(worst, std::llabs(s - acc[m * N + n]));
        }
    return worst;
}

}  // namespace

TEST_CASE("gemm_u8s8 is exact on shapes with every kind of remainder, at 1, 2 and 3 threads") {
    if (!gemm_avx2::supported()) {
        MESSAGE("no AVX2 on this CPU: gemm_u8s8 is not used, nothing to test");
        return;
    }
    struct Shape {
        std::int64_t M;
        int K, N;
    };
    // rows past the 4-row tile and the 240-row block, columns past the 16-column panel, K past the K block (1024 or
    // 1536 with a 48 KiB L1)
    const Shape shapes[] = {{1, 4, 1},      {3, 8, 17},    {4, 16, 16},   {5, 20, 33},   {13, 64, 47},
                            {197, 192, 64}, {241, 36, 70}, {9, 1540, 19}, {7, 3076, 40}, {197, 768, 200}};
    for (int threads : {1, 2, 3}) {
        const Threads t(threads);
        for (const Shape& s : shapes) {
            CAPTURE(threads);
            CAPTURE(s.M);
            CAPTURE(s.K);
            CAPTURE(s.N);
            CHECK(u8s8_error(s.M, s.K, s.N, 17u + static_cast<std::uint32_t>(s.K)) == 0);
        }
    }
}

TEST_CASE("gemm_u8s8 refuses K not a multiple of 4 and weights beyond 7 bits") {
    const std::vector<std::int8_t> w(24, 1);
    CHECK_THROWS_AS(gemm_avx2::PackedWeightsS8(w.data(), 6, 4), std::invalid_argument);
    CHECK_THROWS_AS(gemm_avx2::PackedWeightsS8(w.data(), 0, 4), std::invalid_argument);
    std::vector<std::int8_t> big(w);
    big[13] = 64;
    CHECK_THROWS_WITH_AS(gemm_avx2::PackedWeightsS8(big.data(), 8, 3), doctest::Contains("weight [1, 5] = 64"),
                         std::invalid_argument);
    big[13] = -64;
    CHECK_THROWS_AS(gemm_avx2::PackedWeightsS8(big.data(), 8, 3), std::invalid_argument);
    big[13] = -63;
    CHECK_NOTHROW(gemm_avx2::PackedWeightsS8(big.data(), 8, 3));
}

TEST_CASE("an INT8 Linear on the AVX2 path runs gemm_u8s8 (K a multiple of 4) or oneDNN, both against float64") {
    const auto isa = dnnl::get_effective_cpu_isa();
    const bool own = (isa == dnnl::cpu_isa::avx2 || isa == dnnl::cpu_isa::avx2_vnni) && gemm_avx2::supported();
    for (int K : {100, 102}) {  // 102: oneDNN's gemm
        CAPTURE(K);
        const int N = 37;
        const std::int64_t M = 11;
        const auto x = random_values(static_cast<std::size_t>(M) * K, 3u, -1.f, 1.f);
        const auto w = random_values(static_cast<std::size_t>(N) * K, 5u, -1.f, 1.f);
        const auto b = random_values(N, 9u, -1.f, 1.f);
        const Linear lin(w.data(), b.data(), K, N, Linear::Epilogue::None, Precision::INT8);
        if (own && K % 4 == 0) CHECK(lin.weight_bytes() == static_cast<std::size_t>((N + 15) / 16 * 16 * K));
        std::vector<float> y(static_cast<std::size_t>(M) * N);
        lin.forward(x.data(), M, y.data());
        double worst = 0, scale = 0;
        for (std::int64_t m = 0; m < M; ++m)
            for (int n = 0; n < N; ++n) {
                double s = b[n];
                for (int k = 0; k < K; ++k)
                    s += static_cast<double>(x[m * K + k]) * w[static_cast<std::size_t>(n) * K + k];
                worst = std::max(worst, std::fabs(y[m * N + n] - s));
                scale = std::max(scale, std::fabs(s));
            }
        CHECK(worst < 0.03 * scale);  // 8-bit activations, 7-bit weights
    }
}
