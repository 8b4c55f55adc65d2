// The bf16 ops (ops_bf16.hpp) against float64 references computed from the same bf16-rounded inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "attention_reference.hpp"
#include "ops_bf16.hpp"

using namespace vit;

namespace {

float f32_of_bits(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// The nearest bf16 by comparing the two neighbours (ties to the even one): independent of the bit trick in lib/.
std::uint16_t nearest_bf16(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    const std::uint16_t lo = static_cast<std::uint16_t>(u >> 16), hi = static_cast<std::uint16_t>(lo + 1);
    const double dlo = std::fabs(static_cast<double>(f) - f32_of_bits(static_cast<std::uint32_t>(lo) << 16));
    const double dhi = std::fabs(static_cast<double>(f) - f32_of_bits(static_cast<std::uint32_t>(hi) << 16));
    if (dlo != dhi) return dlo < dhi ? lo : hi;
    return (lo & 1) ? hi : lo;
}

float bf16_value(std::uint16_t b) { return f32_of_bits(static_cast<std::uint32_t>(b) << 16); }

std::vector<float> random_values(std::size_t n, float lo, float hi, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// bf16 matmuls need AVX-512 in oneDNN 2.6: elsewhere these tests have nothing to run.
bool bf16_supported() {
    const float w[1] = {1.f};
    try {
        Linear(w, nullptr, 1, 1, Linear::Epilogue::None, Precision::BF16);
        return true;
    } catch (const std::runtime_error&) {
        return false;
    }
}

}  // namespace

TEST_CASE("to_bf16 rounds to nearest even on every lane and the tail; from_bf16 is exact") {
    std::vector<float> x = random_values(53, -1000.f, 1000.f, 1);  // 3 vectors of 16 and a tail of 5
    x[0] = f32_of_bits(0x3f808000u);                               // halfway, even below: stays 0x3f80
    x[1] = f32_of_bits(0x3f818000u);                               // halfway, odd below: up to 0x3f82
    x[2] = std::numeric_limits<float>::infinity();
    x[3] = -0.f;
    x[50] = f32_of_bits(0x7f7fffffu);  // FLT_MAX rounds to infinity
    x[52] = std::numeric_limits<float>::quiet_NaN();
    std::vector<std::uint16_t> y(x.size());
    to_bf16(x.data(), static_cast<std::int64_t>(x.size()), y.data());
    CHECK(y[0] == 0x3f80);
    CHECK(y[1] == 0x3f82);
    CHECK(y[2] == 0x7f80);
    CHECK(y[3] == 0x8000);
    CHECK(y[50] == 0x7f80);
    CHECK(std::isnan(bf16_value(y[52])));
    for (std::size_t i = 4; i < 50; ++i) CHECK(y[i] == nearest_bf16(x[i]));
    std::vector<float> back(x.size());
    from_bf16(y.data(), static_cast<std::int64_t>(y.size()), back.data());
    for (std::size_t i = 0; i < 52; ++i) CHECK(back[i] == bf16_value(y[i]));
}

TEST_CASE("softmax_rows_bf16 against hand-computed values and float64 on rows with a tail") {
    std::vector<float> x = {0, 0, 0, 1, 2, 3, 1000, 1000, -1000};
    std::vector<std::uint16_t> p(x.size());
    softmax_rows_bf16(x.data(), 3, 3, p.data(), true);
    const double e = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
    const double want[9] = {1.0 / 3, 1.0 / 3, 1.0 / 3, std::exp(1.0) / e, std::exp(2.0) / e, std::exp(3.0) / e,
                            0.5,     0.5,     0};
    for (int i = 0; i < 9; ++i) {
        CHECK(x[i] == doctest::Approx(want[i]).epsilon(1e-5));  // keep_f32: the f32 probabilities
        // exp(-2000) is 0 in f32 and below FLT_MIN here; AVX-512 BF16's conversion flushes such denormals to 0
        if (i < 8) CHECK(p[static_cast<std::size_t>(i)] == nearest_bf16(x[i]));
    }
    CHECK(bf16_value(p[8]) <= 1e-37f);
    for (std::int64_t cols : {std::int64_t{16}, std::int64_t{37}, std::int64_t{197}}) {  // no tail, tails of 5
        CAPTURE(cols);
        const std::int64_t rows = 5;
        auto s = random_values(static_cast<std::size_t>(rows * cols), -30.f, 30.f, 9);
        const auto s0 = s;
        std::vector<std::uint16_t> pb(s.size());
        softmax_rows_bf16(s.data(), rows, cols, pb.data(), false);
        double worst = 0;
        for (std::int64_t r = 0; r < rows; ++r) {
            double mx = -1e300, sum = 0;
            for (std::int64_t j = 0; j < cols; ++j) mx = std::max(mx, static_cast<double>(s0[r * cols + j]));
            for (std::int64_t j = 0; j < cols; ++j) sum += std::exp(s0[r * cols + j] - mx);
            for (std::int64_t j = 0; j < cols; ++j) {
                const double w = std::exp(s0[r * cols + j] - mx) / sum;
                const double got = bf16_value(pb[static_cast<std::size_t>(r * cols + j)]);
                worst = std::max(worst, std::fabs(got - w) / std::max(w, 1e-30));
            }
        }
        MESSAGE("softmax bf16, " << cols << " columns: max relative difference " << worst);
        CHECK(worst <= 1.0 / 200);  // one rounding to bf16 (<= 2^-8) and the f32 exponentials
    }
}

TEST_CASE("LayerNorm::forward_bf16 is the f32 layer norm rounded to bf16") {
    const int D = 200;  // 12 vectors of 16 and a tail of 8
    const std::int64_t M = 7;
    const auto g = random_values(D, 0.5f, 1.5f, 2), b = random_values(D, -0.5f, 0.5f, 3);
    auto x = random_values(static_cast<std::size_t>(M) * D, -3.f, 5.f, 4);
    LayerNorm ln(g.data(), b.data(), D, 1e-6f);
    std::vector<std::uint16_t> y(x.size());
    ln.forward_bf16(x.data(), M, y.data());
    double worst = 0;
    for (std::int64_t m = 0; m < M; ++m) {
        const float* r = x.data() + m * D;
        double mean = 0, var = 0;
        for (int i = 0; i < D; ++i) mean += r[i];
        mean /= D;
        for (int i = 0; i < D; ++i) var += (r[i] - mean) * (r[i] - mean);
        var /= D;
        for (int i = 0; i < D; ++i) {
            const double want = (r[i] - mean) / std::sqrt(var + 1e-6) * g[i] + b[i];
            const double got = bf16_value(y[static_cast<std::size_t>(m * D + i)]);
            // bf16 keeps 8 significant bits: half an ulp is at most 2^-8 relative, plus the f32 arithmetic
            worst = std::max(worst, std::fabs(got - want) / std::max(std::fabs(want), 1e-3));
        }
    }
    MESSAGE("layer norm bf16: max relative difference " << worst);
    CHECK(worst <= 1.0 / 200);
}

TEST_CASE("Linear::forward_bf16 with f32 and bf16 outputs, GELU and residual epilogues") {
    if (!bf16_supported()) {
        MESSAGE("skipped: oneDNN runs no bf16 matmul on this CPU (" << cpu_isa_name() << ")");
        return;
    }
    const int K = 96, N = 40;
    const std::int64_t M = 9;
    auto w = random_values(static_cast<std::size_t>(N) * K, -0.2f, 0.2f, 5);
    const auto bias = random_values(N, -1.f, 1.f, 6), x = random_values(static_cast<std::size_t>(M) * K, -2.f, 2.f, 7);
    std::vector<std::uint16_t> xb(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) xb[i] = nearest_bf16(x[i]);
    auto ref = [&](std::int64_t m, int n) {  // on the bf16-rounded inputs and weights
        double acc = bias[static_cast<std::size_t>(n)];
        for (int k = 0; k < K; ++k)
            acc += static_cast<double>(bf16_value(xb[static_cast<std::size_t>(m * K + k)])) *
                   bf16_value(nearest_bf16(w[static_cast<std::size_t>(n) * K + k]));
        return acc;
    };
    const Linear gelu(w.data(), bias.data(), K, N, Linear::Epilogue::Gelu, Precision::BF16);
    const Linear resid(w.data(), bias.data(), K, N, Linear::Epilogue::Residual, Precision::BF16);
    std::vector<std::uint16_t> yb(static_cast<std::size_t>(M) * N);
    std::vector<float> yf(yb.size(), 0.5f);
    gelu.forward_bf16(xb.data(), M, yb.data());
    resid.forward_bf16(xb.data(), M, yf.data());
    double err_gelu = 0, err_res = 0;
    for (std::int64_t m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
            const double a = ref(m, n), g = 0.5 * a * (1 + std::erf(a / std::sqrt(2.0)));
            const std::size_t i = static_cast<std::size_t>(m * N + n);
            err_gelu = std::max(err_gelu, std::fabs(bf16_value(yb[i]) - g) / std::max(std::fabs(g), 1e-2));
            err_res = std::max(err_res, std::fabs(yf[i] - (0.5 + a)));
        }
    MESSAGE("linear bf16: GELU bf16 output max relative difference " << err_gelu << ", residual f32 output max "
                                                                     << err_res);
    CHECK(err_gelu <= 1.0 / 128);  // one rounding to bf16 (<= 2^-8) plus f32 accumulation order
    CHECK(err_res <= 1e-4);

    const Linear f32(w.data(), bias.data(), K, N, Linear::Epilogue::None);
    CHECK_THROWS_WITH_AS(f32.forward_bf16(xb.data(), M, yf.data()),
                         "Linear::forward_bf16 called on a fp32 layer (bf16 expected)", std::logic_error);
}

TEST_CASE("AttentionBf16 against float64 attention on the bf16 inputs; probabilities for the attention sink") {
    if (!bf16_supported()) {
        MESSAGE("skipped: oneDNN runs no bf16 matmul on this CPU (" << cpu_isa_name() << ")");
        return;
    }
    const std::int64_t B = 2, T = 37, H = 3, d = 16, D = H * d;
    const float scale = 0.25f;
    const auto qkv = random_values(static_cast<std::size_t>(B * T * 3 * D), -2.f, 2.f, 8);
    std::vector<std::uint16_t> qkvb(qkv.size());
    for (std::size_t i = 0; i < qkv.size(); ++i) qkvb[i] = nearest_bf16(qkv[i]);
    auto at = [&](std::int64_t b, std::int64_t t, int j, std::int64_t h, std::int64_t k) {
        return static_cast<double>(bf16_value(qkvb[static_cast<std::size_t>(((b * T + t) * 3 + j) * D + h * d + k)]));
    };
    AttentionBf16 attn(static_cast<int>(H), static_cast<int>(d), scale);
    std::vector<float> scores(static_cast<std::size_t>(B * H * T * T));
    std::vector<std::uint16_t> ctx(static_cast<std::size_t>(B * T * D)), ctx_alone(ctx.size());
    attn.forward(qkvb.data(), B, T, scores.data(), ctx.data());
    attn.forward(qkvb.data(), B, T, nullptr, ctx_alone.data());  // without an attention sink: the same context
    CHECK(ctx_alone == ctx);
    const AttentionReference ref = attention_reference(B, T, H, d, scale, at);
    double err_ctx = 0, err_p = 0;
    for (std::size_t i = 0; i < ref.probs.size(); ++i) err_p = std::max(err_p, std::fabs(scores[i] - ref.probs[i]));
    for (std::size_t i = 0; i < ref.ctx.size(); ++i)
        err_ctx = std::max(err_ctx, std::fabs(bf16_value(ctx[i]) - ref.ctx[i]));
    MESSAGE("attention bf16: max |ctx difference| " << err_ctx << ", max |probability difference| " << err_p);
    CHECK(err_p <= 4e-3);    // probabilities <= 1 rounded to bf16
    CHECK(err_ctx <= 3e-2);  // |v| <= 2: bf16 probabilities, the bf16 output
}
