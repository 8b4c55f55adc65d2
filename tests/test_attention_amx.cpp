// The AMX attention (attention_amx.hpp) against float64 attention computed from the same bf16 inputs, over the shapes
// that exercise its padding: tokens not a multiple of 16 or 32, head dims not a multiple of 32 or 16, odd ones, one
// token, several images and heads.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "attention_amx.hpp"
#include "attention_reference.hpp"
#include "runtime.hpp"

using namespace vit;

namespace {

float bf16_value(std::uint16_t b) {
    const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// Random bf16 values: the upper halves of random floats in [-2, 2) (truncation: any bf16 will do as an input).
std::vector<std::uint16_t> random_bf16(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-2.f, 2.f);
    std::vector<std::uint16_t> v(n);
    for (auto& x : v) {
        const float f = dist(rng);
        std::uint32_t u;
        std::memcpy(&u, &f, 4);
        x = static_cast<std::uint16_t>(u >> 16);
    }
    return v;
}

struct Errors {
    double ctx = 0, probs = 0;
};

// Runs attention_amx on random qkv [B, T, 3, H, d] and compares with float64 softmax(Q·Kᵀ·scale)·V.
Errors check_shape(std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t d, unsigned seed) {
    const std::int64_t D = H * d;
    const float scale = 1.f / std::sqrt(static_cast<float>(d));
    const auto qkv = random_bf16(static_cast<std::size_t>(B * T * 3 * D), seed);
    auto at = [&](std::int64_t b, std::int64_t t, int j, std::int64_t h, std::int64_t k) {
        return static_cast<double>(bf16_value(qkv[static_cast<std::size_t>(((b * T + t) * 3 + j) * D + h * d + k)]));
    };
    std::vector<float> probs(static_cast<std::size_t>(B * H * T * T), -1.f);
    std::vector<std::uint16_t> ctx(static_cast<std::size_t>(B * T * D), 0xffff), ctx_alone(ctx.size(), 0xffff);
    attention_amx(qkv.data(), B, T, H, d, scale, probs.data(), ctx.data());
    attention_amx(qkv.data(), B, T, H, d, scale, nullptr, ctx_alone.data());
    CHECK(ctx_alone == ctx);  // the probabilities for a sink change nothing else
    const AttentionReference ref = attention_reference(B, T, H, d, scale, at);
    Errors e;
    for (std::size_t i = 0; i < ref.probs.size(); ++i) e.probs = std::max(e.probs, std::fabs(probs[i] - ref.probs[i]));
    for (std::size_t i = 0; i < ref.ctx.size(); ++i) {
        const double got = bf16_value(ctx[i]);
        e.ctx = std::isfinite(got) ? std::max(e.ctx, std::fabs(got - ref.ctx[i])) : 1e9;
    }
    return e;
}

}  // namespace

TEST_CASE("attention_amx against float64 attention on the bf16 inputs, shapes that exercise the tile padding") {
    if (!amx_attention_available()) {
        MESSAGE("skipped: no usable AMX-BF16 on this CPU (" << cpu_isa_name() << ")");
        return;
    }
    struct Case {
        std::int64_t B, T, H, d;
    };
    // ViT-B's 197 tokens x 64 (queries read in place from qkv), a tail of one query row, head dims padded to 32 in
    // depth (48, 80, 17) and to 16 in columns (17, 8), five and eight column tiles (80, 128), one token, 32 tokens
    // (no key padding). Items of two query blocks (head dims <= 64): whole (197, 37, 32), with a partial second
    // block (20, 50, 40), after a single block (37, 40); one block per item (80, 96, 128) with three and two tiles
    // of queries per block; odd head dims in both (17, 9 x 17); a long sequence (601 tokens: the model runs any
    // length here, beyond kAttentionWholeTokens).
    const Case cases[] = {{1, 197, 2, 64}, {2, 37, 3, 16}, {1, 17, 2, 80}, {1, 33, 1, 128},
                          {2, 20, 2, 48},  {1, 9, 3, 17},  {1, 1, 2, 64},  {1, 32, 1, 8},
                          {3, 50, 1, 32},  {1, 40, 2, 17}, {2, 40, 1, 96}, {1, 601, 1, 64}};
    unsigned seed = 1;
    for (const Case& c : cases) {
        CAPTURE(c.B);
        CAPTURE(c.T);
        CAPTURE(c.H);
        CAPTURE(c.d);
        const Errors e = check_shape(c.B, c.T, c.H, c.d, seed++);
        MESSAGE("B " << c.B << " T " << c.T << " H " << c.H << " d " << c.d << ": max |ctx difference| " << e.ctx
                     << ", max |probability difference| " << e.probs);
        CHECK(e.probs <= 1e-5);  // f32 scores of exact bf16 products, f32 exponentials
        CHECK(e.ctx <= 2e-2);    // |v| < 2: bf16 exponentials into the product with V, a bf16 result
    }
}

TEST_CASE("attention_amx refuses head dims it has no tiles for, and a scale that is not positive") {
    if (!amx_attention_available()) {
        MESSAGE("skipped: no usable AMX-BF16 on this CPU (" << cpu_isa_name() << ")");
        return;
    }
    std::vector<std::uint16_t> qkv(3 * 129 * 2, 0), ctx(129 * 2, 0);
    CHECK_THROWS_AS(attention_amx(qkv.data(), 1, 2, 1, 129, 0.1f, nullptr, ctx.data()), std::invalid_argument);
    CHECK_THROWS_AS(attention_amx(qkv.data(), 1, 2, 1, 0, 0.1f, nullptr, ctx.data()), std::invalid_argument);
    CHECK_THROWS_AS(attention_amx(qkv.data(), 1, 2, 1, 64, 0.f, nullptr, ctx.data()), std::invalid_argument);
}

TEST_CASE("attention_amx for the first tokens only (the last block): their rows exact, the others untouched") {
    if (!amx_attention_available()) {
        MESSAGE("skipped: no usable AMX-BF16 on this CPU (" << cpu_isa_name() << ")");
        return;
    }
    for (const std::int64_t d : {64, 96}) {  // two 16-row blocks per item, and one
        const std::int64_t B = 2, T = 197, H = 2, D = H * d;
        std::vector<std::uint16_t> qkv(static_cast<std::size_t>(B * T * 3 * D));
        std::uint32_t seed = 11;
        for (auto& v : qkv) {  // bf16 of values in [-2, 2)
            seed = seed * 1664525u + 1013904223u;
            const float f = -2.f + 4.f * static_cast<float>(seed >> 8) / static_cast<float>(1u << 24);
            std::uint32_t bits;
            std::memcpy(&bits, &f, sizeof bits);
            v = static_cast<std::uint16_t>(bits >> 16);
        }
        std::vector<std::uint16_t> all(static_cast<std::size_t>(B * T * D));
        attention_amx(qkv.data(), B, T, H, d, 0.125f, nullptr, all.data());
        for (const std::int64_t n : {1, 2, 17, 33}) {
            CAPTURE(d);
            CAPTURE(n);
            std::vector<std::uint16_t> few(all.size(), 0x7777);
            attention_amx(qkv.data(), B, T, H, d, 0.125f, nullptr, few.data(), n);
            int wrong = 0, touched = 0;
            for (std::int64_t b = 0; b < B; ++b)
                for (std::int64_t t = 0; t < T; ++t)
                    for (std::int64_t c = 0; c < D; ++c) {
                        const std::size_t i = static_cast<std::size_t>((b * T + t) * D + c);
                        if (t < n) wrong += few[i] != all[i];
                        else touched += few[i] != 0x7777;
                    }
            CHECK(wrong == 0);
            CHECK(touched == 0);
        }
        std::vector<float> probs(static_cast<std::size_t>(B * H * T * T));
        std::vector<std::uint16_t> ctx(all.size());
        CHECK_THROWS_AS(attention_amx(qkv.data(), B, T, H, d, 0.125f, probs.data(), ctx.data(), 1),
                        std::invalid_argument);
        CHECK_THROWS_AS(attention_amx(qkv.data(), B, T, H, d, 0.125f, nullptr, ctx.data(), T + 1),
                        std::invalid_argument);
    }
}
