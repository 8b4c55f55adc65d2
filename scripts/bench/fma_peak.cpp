// FMA throughput peak of this CPU per instruction set (AVX2 and AVX-512 fp32), for run.py's report: the ceiling
// each of oneDNN's code paths can reach. Each thread runs independent chains of fused multiply-adds (enough of them
// to cover the FMA latency on two ports) on registers only. Each thread's rate is its flops over its own CPU time
// (CLOCK_THREAD_CPUTIME_ID), so that time the thread spends preempted by other users of a shared machine does not
// count; the threads' rates are summed, and the figure is the best of several rounds.
//
//     c++ -O2 -pthread scripts/bench/fma_peak.cpp -o fma_peak && ./fma_peak [threads] [millions of iterations]
//
// Prints one JSON object: {"threads": N, "avx2_gflops": X, "avx512_gflops": Y} (null where the CPU lacks the ISA).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <vector>

namespace {

constexpr int kChains = 12;  // FMA latency 4 cycles x 2 ports = 8 chains in flight at least

// Returns the flops done: kChains FMAs (2 flops each) per lane per iteration.
__attribute__((target("avx2,fma"))) double run_avx2(long iterations, float* sink) {
    __m256 acc[kChains];
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (long it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
        for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    __m256 s = acc[0];
    for (int i = 1; i < kChains; ++i) s = _mm256_add_ps(s, acc[i]);
    *sink = _mm256_cvtss_f32(s);
    return 2.0 * 8 * kChains * static_cast<double>(iterations);
}

__attribute__((target("avx512f"))) double run_avx512(long iterations, float* sink) {
    __m512 acc[kChains];
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (long it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
        for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    __m512 s = acc[0];
    for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);  // every chain is live
    float lanes[16];
    _mm512_storeu_ps(lanes, s);
    *sink = lanes[0] + lanes[15];
    return 2.0 * 16 * kChains * static_cast<double>(iterations);
}

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// GFLOP/s of `threads` threads running `kernel` at once; best of `rounds`.
double measure(double (*kernel)(long, float*), int threads, long iterations, int rounds) {
    double best = 0;
    for (int r = 0; r < rounds; ++r) {
        std::vector<std::thread> pool;
        std::vector<float> sinks(static_cast<std::size_t>(threads));
        std::atomic<int> ready{0};
        std::atomic<bool> go{false};
        std::vector<double> rate(static_cast<std::size_t>(threads));  // flops per CPU second, per thread
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                ready.fetch_add(1);
                while (!go.load()) std::this_thread::yield();
                const double c0 = thread_cpu_seconds();
                const double flops = kernel(iterations, &sinks[static_cast<std::size_t>(t)]);
                rate[static_cast<std::size_t>(t)] = flops / (thread_cpu_seconds() - c0);
            });
        while (ready.load() < threads) std::this_thread::yield();
        go = true;
        for (auto& th : pool) th.join();
        double sum = 0;
        for (double r : rate) sum += r;
        best = std::max(best, sum / 1e9);
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::max(1, std::atoi(argv[1])) : 2;
    const long iterations = (argc > 2 ? std::max(1L, std::atol(argv[2])) : 50) * 1000000L / kChains;
    const int rounds = 5;
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = __builtin_cpu_supports("avx512f");
    const double g2 = avx2 ? measure(run_avx2, threads, iterations, rounds) : 0;
    const double g5 = avx512 ? measure(run_avx512, threads, iterations, rounds) : 0;
    std::printf("{\"threads\": %d, \"avx2_gflops\": ", threads);
    if (avx2) std::printf("%.1f", g2);
    else std::printf("null");
    std::printf(", \"avx512_gflops\": ");
    if (avx512) std::printf("%.1f", g5);
    else std::printf("null");
    std::printf("}\n");
    return 0;
}
