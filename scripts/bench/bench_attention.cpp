// One layer's attention on its own, as figures on stdout: each kernel this CPU can run (AMX bf16, our f32 FMA
// kernels at AVX-512 and AVX2) on random q, k, v, min and median microseconds per call over rounds of calls.
// Built as build/tests/bench_attention. Usage: bench_attention [TOKENS [HEADS [HEAD_DIM [CALLS [IMAGES]]]]] (default
// ViT-B/16: 197 12 64, 1500 calls, 1 image); threads from OMP_NUM_THREADS. A pass runs the same kernels on qkv fresh
// from a linear layer: `vit bench --ops` gives their time there.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "attention_amx.hpp"
#include "attention_fused.hpp"
#include "runtime.hpp"

namespace {

void measure(const char* what, int calls, const std::function<void()>& f) {
    constexpr int kRounds = 15;
    const int per_round = std::max(1, calls / kRounds);
    f();  // warm-up: buffers, tile permission, threads
    std::vector<double> us;
    for (int r = 0; r < kRounds; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < per_round; ++i) f();
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
                     per_round);
    }
    std::sort(us.begin(), us.end());
    std::printf("%-34s min %8.1f us   median %8.1f us\n", what, us.front(), us[us.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
    const std::int64_t T = argc > 1 ? std::atol(argv[1]) : 197, H = argc > 2 ? std::atol(argv[2]) : 12;
    const std::int64_t d = argc > 3 ? std::atol(argv[3]) : 64;
    const int calls = argc > 4 ? std::atoi(argv[4]) : 1500;
    const std::int64_t B = argc > 5 ? std::atol(argv[5]) : 1;
    if (T < 1 || H < 1 || d < 1 || calls < 1 || B < 1) {
        std::fprintf(stderr,
                     "usage: bench_attention [TOKENS [HEADS [HEAD_DIM [CALLS [IMAGES]]]]] (positive numbers)\n");
        return 2;
    }
    const std::int64_t n = B * T * 3 * H * d;
    std::vector<float> qkv(static_cast<std::size_t>(n)), ctx(static_cast<std::size_t>(B * T * H * d));
    std::vector<std::uint16_t> qkv_bf16(qkv.size()), ctx_bf16(ctx.size());
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.f, 1.f);
    for (std::size_t i = 0; i < qkv.size(); ++i) {
        qkv[i] = dist(rng);
        std::uint32_t u;
        std::memcpy(&u, &qkv[i], 4);
        qkv_bf16[i] = static_cast<std::uint16_t>(u >> 16);
    }
    const float scale = 1.f / std::sqrt(static_cast<float>(d));
    std::printf("attention, %lld images, %lld tokens, %lld heads x %lld, %d threads, CPU ISA %s\n",
                static_cast<long long>(B), static_cast<long long>(T), static_cast<long long>(H),
                static_cast<long long>(d), vit::num_threads(), vit::cpu_isa_name().c_str());
    if (vit::amx_attention_available() && d <= vit::kAmxMaxHeadDim)
        measure("bf16 on AMX (attention_amx)", calls,
                [&] { vit::attention_amx(qkv_bf16.data(), B, T, H, d, scale, nullptr, ctx_bf16.data()); });
    const vit::SimdLevel top = vit::simd_level();
    if (top == vit::SimdLevel::Avx512)
        measure("f32, AVX-512 (attention_fused)", calls, [&] {
            vit::attention_fused(qkv.data(), B, T, H, d, scale, nullptr, ctx.data(), vit::SimdLevel::Avx512);
        });
    if (top == vit::SimdLevel::Avx512 || top == vit::SimdLevel::Avx2)
        measure("f32, AVX2 (attention_fused)", calls, [&] {
            vit::attention_fused(qkv.data(), B, T, H, d, scale, nullptr, ctx.data(), vit::SimdLevel::Avx2);
        });
    return 0;
}
