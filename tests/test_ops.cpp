// Op wrappers against hand-computed values and PyTorch references (tests/fixtures/ops.safetensors).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "attention_reference.hpp"
#include "exp_rows.hpp"
#include "ops.hpp"
#include "test_util.hpp"

using namespace vit;

TEST_CASE("attention on a worked example (unscaled, X·W convention)") {
    // X (3x4) and Wq, Wk, Wv (4x3) of the worked example in R. Karim, "Illustrated: Self-Attention" (Towards Data
    // Science, 2019). Expected: softmax(Q·Kᵀ)·V with Q = X·Wq, K = X·Wk, V = X·Wv, unscaled, in float64 (numpy).
    const float X[3][4] = {{1, 0, 1, 0}, {0, 2, 0, 2}, {1, 1, 1, 1}};
    const float Wq[4][3] = {{1, 0, 1}, {1, 0, 0}, {0, 0, 1}, {0, 1, 1}};
    const float Wk[4][3] = {{0, 0, 1}, {1, 1, 0}, {0, 1, 0}, {1, 1, 0}};
    const float Wv[4][3] = {{0, 2, 0}, {0, 3, 0}, {1, 0, 3}, {1, 1, 0}};
    // One packed projection in PyTorch's [out, in] layout: rows 0-2 = Wqᵀ, 3-5 = Wkᵀ, 6-8 = Wvᵀ.
    std::vector<float> w(9 * 4);
    for (int o = 0; o < 3; ++o)
        for (int i = 0; i < 4; ++i) {
            w[(0 + o) * 4 + i] = Wq[i][o];
            w[(3 + o) * 4 + i] = Wk[i][o];
            w[(6 + o) * 4 + i] = Wv[i][o];
        }
    Linear qkv(w.data(), nullptr, 4, 9, Linear::Epilogue::None);
    std::vector<float> packed(3 * 9), scores(9), out(9);
    qkv.forward(&X[0][0], 3, packed.data());
    Attention attn(/*heads=*/1, /*head_dim=*/3, /*scale=*/1.0f);
    attn.forward(packed.data(), 1, 3, scores.data(), out.data());
    const float expected[3][3] = {
        {1.9366f, 6.6831f, 1.5951f}, {2.0000f, 7.9640f, 0.0540f}, {1.9997f, 7.7599f, 0.3584f}};
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) CHECK(out[r * 3 + c] == doctest::Approx(expected[r][c]).epsilon(1e-4));
    // Each row of the attention matrix is a probability distribution.
    for (int r = 0; r < 3; ++r) CHECK(scores[r * 3] + scores[r * 3 + 1] + scores[r * 3 + 2] == doctest::Approx(1.0));
}

TEST_CASE("softmax rows against hand-computed values") {
    std::vector<float> x = {0, 0, 0, 1, 2, 3, 1000, 1000, -1000};
    softmax_rows(x.data(), 3, 3);
    for (int i = 0; i < 3; ++i) CHECK(x[i] == doctest::Approx(1.0 / 3));
    const double e = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
    CHECK(x[3] == doctest::Approx(std::exp(1.0) / e));
    CHECK(x[5] == doctest::Approx(std::exp(3.0) / e));
    CHECK(x[6] == doctest::Approx(0.5));
    CHECK(x[8] == doctest::Approx(0.0));
}

TEST_CASE("linear fuses bias, GELU and residual") {
    const float w[2 * 3] = {1, 2, 3, -1, 0, 1};  // [N=2, K=3]
    const float b[2] = {0.5f, -0.25f};
    const float x[3] = {1, -1, 2};
    float y[2];
    Linear(w, b, 3, 2, Linear::Epilogue::None).forward(x, 1, y);
    CHECK(y[0] == doctest::Approx(5.5));
    CHECK(y[1] == doctest::Approx(0.75));
    Linear(w, b, 3, 2, Linear::Epilogue::Gelu).forward(x, 1, y);
    CHECK(y[0] == doctest::Approx(5.5 * 0.5 * (1 + std::erf(5.5 / std::sqrt(2.0)))));
    CHECK(y[1] == doctest::Approx(0.75 * 0.5 * (1 + std::erf(0.75 / std::sqrt(2.0)))));
    float acc[2] = {10, 20};
    Linear(w, b, 3, 2, Linear::Epilogue::Residual).forward(x, 1, acc);
    CHECK(acc[0] == doctest::Approx(15.5));
    CHECK(acc[1] == doctest::Approx(20.75));
}

TEST_CASE("attention in row blocks (long sequences) equals the whole-matrix path and a naive reference") {
    const std::int64_t B = 2, T = 11, H = 3, d = 5, D = H * d;
    std::vector<float> qkv(B * T * 3 * D);
    std::uint32_t state = 12345;
    for (auto& v : qkv) {  // deterministic values in [-1, 1)
        state = state * 1664525u + 1013904223u;
        v = static_cast<float>(state >> 8) / static_cast<float>(1u << 23) - 1.0f;
    }
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    // Naive reference in double: qkv [B, T, 3, H, d].
    auto at = [&](std::int64_t b, std::int64_t t, int which, std::int64_t h, std::int64_t i) {
        return static_cast<double>(qkv[((b * T + t) * 3 + which) * D + h * d + i]);
    };
    const AttentionReference ref = attention_reference(B, T, H, d, scale, at);
    const std::vector<double>&want_ctx = ref.ctx, &want_p = ref.probs;
    // blocks of 4 rows (and a tail of 3), of 10 (and a tail of 1), the whole matrix at once
    for (std::int64_t rows : {std::int64_t{4}, std::int64_t{10}, std::int64_t{1000}}) {
        CAPTURE(rows);
        Attention attn(static_cast<int>(H), static_cast<int>(d), scale, rows, rows);
        std::vector<float> scores(B * H * T * T, -1.f), ctx(B * T * D, -1.f);
        attn.forward(qkv.data(), B, T, scores.data(), ctx.data());
        double err_ctx = 0, err_p = 0;
        for (std::size_t i = 0; i < ctx.size(); ++i) err_ctx = std::max(err_ctx, std::fabs(ctx[i] - want_ctx[i]));
        for (std::size_t i = 0; i < scores.size(); ++i) err_p = std::max(err_p, std::fabs(scores[i] - want_p[i]));
        CHECK(err_ctx < 1e-5);
        CHECK(err_p < 1e-6);  // the probabilities are left in `scores` for the attention sink
        // without a probabilities buffer (the model without a sink): the same context
        std::vector<float> ctx2(B * T * D, -1.f);
        attn.forward(qkv.data(), B, T, nullptr, ctx2.data());
        double err_ctx2 = 0;
        for (std::size_t i = 0; i < ctx2.size(); ++i) err_ctx2 = std::max(err_ctx2, std::fabs(ctx2[i] - want_ctx[i]));
        MESSAGE("rows ", rows, ": max |ctx - ref| ", err_ctx, " (no probs: ", err_ctx2, "), max |p - ref| ", err_p);
        CHECK(err_ctx2 < 1e-5);
    }
}

TEST_CASE("exp_rows: exp(x - row max) and 1 / row sum at every SIMD level this CPU has") {
    // rows of 1370 (DINOv2's tokens: vector tails), 16, 7 and 1 values, 7 rows each (a group of four, then one by one),
    // padded (ld)
    const SimdLevel top = simd_level();
    for (std::int64_t cols : {std::int64_t{1370}, std::int64_t{16}, std::int64_t{7}, std::int64_t{1}}) {
        const std::int64_t rows = 7, ld = cols + 5;
        std::vector<float> x(rows * ld);
        std::uint32_t state = 777;
        for (auto& v : x) {  // values in [-60, 60): large spreads, exponents far below the row max
            state = state * 1664525u + 1013904223u;
            v = (static_cast<float>(state >> 8) / static_cast<float>(1u << 23) - 1.0f) * 60.f;
        }
        for (SimdLevel level : {SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512}) {
            if (static_cast<int>(level) > static_cast<int>(top)) continue;
            CAPTURE(cols);
            CAPTURE(static_cast<int>(level));
            std::vector<float> y = x, inv(rows);
            exp_rows(y.data(), rows, cols, ld, inv.data(), level);
            double worst = 0;
            for (std::int64_t r = 0; r < rows; ++r) {
                // the reference takes the same float differences x - max (their rounding, up to 4e-6 at |x| = 60,
                // is the input's, not the kernel's)
                float mx = x[r * ld];
                for (std::int64_t j = 0; j < cols; ++j) mx = std::max(mx, x[r * ld + j]);
                double sum = 0;
                for (std::int64_t j = 0; j < cols; ++j) sum += std::exp(static_cast<double>(x[r * ld + j] - mx));
                for (std::int64_t j = 0; j < cols; ++j) {
                    const double want = std::exp(static_cast<double>(x[r * ld + j] - mx));
                    const double got = y[r * ld + j];
                    if (want > 1e-37) worst = std::max(worst, std::fabs(got - want) / want);
                    CHECK(got >= 0);
                }
                CHECK(inv[r] == doctest::Approx(1.0 / sum).epsilon(1e-6));
                for (std::int64_t j = cols; j < ld; ++j) CHECK(y[r * ld + j] == x[r * ld + j]);  // padding untouched
            }
            MESSAGE("cols ", cols, " level ", static_cast<int>(level), ": max relative error ", worst);
            CHECK(worst < 5e-7);
        }
    }
}
