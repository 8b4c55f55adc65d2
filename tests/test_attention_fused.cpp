// The f32 attention kernels (attention_fused.hpp) at every SIMD level this CPU has, against float64 attention, over
// shapes that exercise the tile edges: tokens not a multiple of the tile rows or of 32, head dims not a multiple of
// the tile columns, odd ones, one token, several images and heads; and exp_rows' scale.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "attention_fused.hpp"
#include "attention_reference.hpp"

using namespace vit;

namespace {

struct Errors {
    double ctx = 0, probs = 0;
};

Errors check_shape(std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t d, SimdLevel level, unsigned seed) {
    const std::int64_t D = H * d;
    const float scale = 1.f / std::sqrt(static_cast<float>(d));
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-2.f, 2.f);
    std::vector<float> qkv(static_cast<std::size_t>(B * T * 3 * D));
    for (auto& x : qkv) x = dist(rng);
    auto at = [&](std::int64_t b, std::int64_t t, int j, std::int64_t h, std::int64_t k) {
        return static_cast<double>(qkv[static_cast<std::size_t>(((b * T + t) * 3 + j) * D + h * d + k)]);
    };
    std::vector<float> probs(static_cast<std::size_t>(B * H * T * T), -1.f);
    std::vector<float> ctx(static_cast<std::size_t>(B * T * D), NAN), ctx_alone(ctx.size(), NAN);
    attention_fused(qkv.data(), B, T, H, d, scale, probs.data(), ctx.data(), level);
    attention_fused(qkv.data(), B, T, H, d, scale, nullptr, ctx_alone.data(), level);
    CHECK(ctx_alone == ctx);  // the probabilities for a sink change nothing else
    const AttentionReference ref = attention_reference(B, T, H, d, scale, at);
    Errors e;
    for (std::size_t i = 0; i < ref.probs.size(); ++i) e.probs = std::max(e.probs, std::fabs(probs[i] - ref.probs[i]));
    for (std::size_t i = 0; i < ref.ctx.size(); ++i) {
        const double got = ctx[i];
        e.ctx = std::isfinite(got) ? std::max(e.ctx, std::fabs(got - ref.ctx[i])) : 1e9;
    }
    return e;
}

}  // namespace

TEST_CASE("attention_fused against float64 attention at every SIMD level this CPU has") {
    struct Case {
        std::int64_t B, T, H, d;
    };
    // ViT-B's 197 tokens x 64, DINOv2-S's 64 x 6 heads at 257 tokens, head dims of partial column tiles (80, 48, 17,
    // 8, 24), one token, tokens fewer than a tile's rows, exactly 32 tokens, several images
    const Case cases[] = {{1, 197, 2, 64}, {1, 257, 1, 64}, {2, 37, 3, 16}, {1, 17, 2, 80}, {2, 20, 2, 48},
                          {1, 9, 3, 17},   {1, 1, 2, 64},   {1, 5, 1, 8},   {1, 32, 1, 24}, {3, 50, 1, 32}};
    const SimdLevel top = simd_level();
    for (SimdLevel level : {SimdLevel::Avx2, SimdLevel::Avx512}) {
        if (static_cast<int>(level) > static_cast<int>(top)) {
            MESSAGE("level " << static_cast<int>(level) << " skipped: not on this CPU");
            continue;
        }
        unsigned seed = 1;
        for (const Case& c : cases) {
            CAPTURE(static_cast<int>(level));
            CAPTURE(c.B);
            CAPTURE(c.T);
            CAPTURE(c.H);
            CAPTURE(c.d);
            const Errors e = check_shape(c.B, c.T, c.H, c.d, level, seed++);
            MESSAGE("level " << static_cast<int>(level) << " B " << c.B << " T " << c.T << " H " << c.H << " d " << c.d
                             << ": max |ctx difference| " << e.ctx << ", max |probability difference| " << e.probs);
            CHECK(e.probs <= 1e-6);
            CHECK(e.ctx <= 1e-5);  // |v| < 2, f32 accumulation over at most 257 keys
        }
    }
}

TEST_CASE("attention_fused for the first tokens only (the last block): their rows exact, the others untouched") {
    const std::int64_t B = 2, T = 197, H = 3, d = 64, D = H * d;
    const float scale = 0.125f;
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> dist(-2.f, 2.f);
    std::vector<float> qkv(static_cast<std::size_t>(B * T * 3 * D));
    for (auto& x : qkv) x = dist(rng);
    const SimdLevel top = simd_level();
    for (SimdLevel level : {SimdLevel::Avx2, SimdLevel::Avx512}) {
        if (static_cast<int>(level) > static_cast<int>(top)) continue;
        std::vector<float> all(static_cast<std::size_t>(B * T * D));
        attention_fused(qkv.data(), B, T, H, d, scale, nullptr, all.data(), level);
        for (std::int64_t n : {1, 2, 5, 7, 13}) {  // one, a class and distillation token, a tile and a bit
            CAPTURE(static_cast<int>(level));
            CAPTURE(n);
            std::vector<float> few(all.size(), 7.f);
            attention_fused(qkv.data(), B, T, H, d, scale, nullptr, few.data(), level, n);
            int wrong = 0, touched = 0;
            for (std::int64_t b = 0; b < B; ++b)
                for (std::int64_t t = 0; t < T; ++t)
                    for (std::int64_t c = 0; c < D; ++c) {
                        const std::size_t i = static_cast<std::size_t>((b * T + t) * D + c);
                        if (t < n) wrong += few[i] != all[i];  // the same items, bit for bit
                        else touched += few[i] != 7.f;
                    }
            CHECK(wrong == 0);
            CHECK(touched == 0);
        }
    }
    std::vector<float> probs(static_cast<std::size_t>(B * H * T * T)), ctx(static_cast<std::size_t>(B * T * D));
    const SimdLevel any = top == SimdLevel::Scalar ? SimdLevel::Avx2 : top;
    if (top != SimdLevel::Scalar) {
        CHECK_THROWS_AS(attention_fused(qkv.data(), B, T, H, d, scale, probs.data(), ctx.data(), any, 1),
                        std::invalid_argument);  // probabilities need every row
        CHECK_THROWS_AS(attention_fused(qkv.data(), B, T, H, d, scale, nullptr, ctx.data(), any, T + 1),
                        std::invalid_argument);
        CHECK_THROWS_AS(attention_fused(qkv.data(), B, T, H, d, scale, nullptr, ctx.data(), any, 0),
                        std::invalid_argument);
    }
}

TEST_CASE("attention_fused refuses a scalar level, an empty head and a scale that is not positive") {
    std::vector<float> qkv(3 * 8 * 2, 0.f), ctx(8 * 2, 0.f);
    CHECK_THROWS_AS(attention_fused(qkv.data(), 1, 2, 1, 8, 0.1f, nullptr, ctx.data(), SimdLevel::Scalar),
                    std::logic_error);
    CHECK_THROWS_AS(attention_fused(qkv.data(), 1, 2, 1, 0, 0.1f, nullptr, ctx.data(), SimdLevel::Avx2),
                    std::invalid_argument);
    CHECK_THROWS_AS(attention_fused(qkv.data(), 1, 2, 1, 8, -1.f, nullptr, ctx.data(), SimdLevel::Avx2),
                    std::invalid_argument);
}

TEST_CASE("exp_rows with a scale: exp(scale * (x - row max)) at every SIMD level this CPU has") {
    const std::int64_t rows = 6, cols = 37;  // a group of four rows, then one by one
    std::vector<float> x(rows * cols);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i * 7919 % 101) - 50) * 0.37f;
    const SimdLevel top = simd_level();
    for (SimdLevel level : {SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512}) {
        if (static_cast<int>(level) > static_cast<int>(top)) continue;
        std::vector<float> y = x, inv(rows);
        exp_rows(y.data(), rows, cols, cols, inv.data(), level, 0.125f);
        double worst = 0;
        for (std::int64_t r = 0; r < rows; ++r) {
            const float mx = *std::max_element(x.begin() + r * cols, x.begin() + (r + 1) * cols);
            double sum = 0;
            for (std::int64_t j = 0; j < cols; ++j) {
                const double want = std::exp(0.125 * static_cast<double>(x[r * cols + j] - mx));
                sum += want;
                worst = std::max(worst, std::fabs(y[r * cols + j] - want) / want);
            }
            CHECK(inv[r] == doctest::Approx(1.0 / sum).epsilon(1e-6));
        }
        MESSAGE("exp_rows scale 0.125, level " << static_cast<int>(level) << ": max relative error " << worst);
        CHECK(worst < 5e-7);
    }
}
