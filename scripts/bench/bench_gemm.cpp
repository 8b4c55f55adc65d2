// Not a test: GFLOP/s of the f32 linear layers' two AVX2 paths on ViT shapes, alternating within one process so that
// a shared machine's load falls on both: oneDNN's matmul as Linear built it before gemm_avx2 (weights "ba", bias,
// the epilogue as post-ops) and gemm_avx2 (lib/gemm_avx2.hpp); then GOP/s of the int8 ones (oneDNN's u8 x s8 matmul
// and gemm_u8s8). Run with ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 CPU.
//   bench_gemm [threads] [rounds] [peak GFLOP/s for the % column]   (scripts/bench/gemm.sh runs it)
#include <dnnl.hpp>

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "gemm_avx2.hpp"
#include "gemm_u8s8_avx2.hpp"

namespace {

using gemm_avx2_ep = vit::gemm_avx2::Epilogue;

struct Shape {
    const char* name;
    long M;
    int K, N;
    gemm_avx2_ep ep;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    const double peak = argc > 3 ? std::atof(argv[3]) : 0;
    omp_set_num_threads(threads);
    using E = gemm_avx2_ep;
    const Shape shapes[] = {
        {"B/16 qkv", 197, 768, 2304, E::None},          {"B/16 proj", 197, 768, 768, E::Residual},
        {"B/16 fc1", 197, 768, 3072, E::Gelu},          {"B/16 fc2", 197, 3072, 768, E::Residual},
        {"Ti/16 b32 qkv", 32 * 197, 192, 576, E::None}, {"Ti/16 b32 proj", 32 * 197, 192, 192, E::Residual},
        {"Ti/16 b32 fc1", 32 * 197, 192, 768, E::Gelu}, {"Ti/16 b32 fc2", 32 * 197, 768, 192, E::Residual},
        {"B/16 fc1 [1 row]", 1, 768, 3072, E::Gelu},
    };
    dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    dnnl::stream strm(eng);
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    std::printf("%-18s %10s %10s %8s %8s %8s\n", "shape", "oneDNN", "gemm_avx2", "ratio", "%peak", "");
    for (const Shape& s : shapes) {
        std::vector<float> x(static_cast<std::size_t>(s.M) * s.K), w(static_cast<std::size_t>(s.N) * s.K), b(s.N),
            y(static_cast<std::size_t>(s.M) * s.N);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) * 0.01f - 0.08f;
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 13) * 0.01f - 0.06f;
        const vit::gemm_avx2::PackedWeights packed(w.data(), s.K, s.N);
        const dnnl::memory::desc src_md({s.M, s.K}, dt::f32, tag::ab), w_md({s.K, s.N}, dt::f32, tag::ba),
            b_md({1, s.N}, dt::f32, tag::ab), dst_md({s.M, s.N}, dt::f32, tag::ab);
        dnnl::post_ops po;
        if (s.ep == E::Gelu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
        if (s.ep == E::Residual) po.append_sum(1.f);
        dnnl::primitive_attr attr;
        attr.set_post_ops(po);
        const dnnl::matmul mm(dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, w_md, b_md, dst_md), attr, eng));
        dnnl::memory xm(src_md, eng, x.data()), wm(w_md, eng, w.data()), bm(b_md, eng, b.data()),
            ym(dst_md, eng, y.data());
        const double flop = 2.0 * static_cast<double>(s.M) * s.K * s.N;
        const int reps = std::max(3, static_cast<int>(2e9 / flop));
        double best[2] = {1e30, 1e30};
        for (int r = 0; r < rounds; ++r)
            for (int side = 0; side < 2; ++side) {
                for (int rep = -1; rep < reps; ++rep) {  // rep -1 warms up
                    const auto t0 = std::chrono::steady_clock::now();
                    if (side == 0) {
                        mm.execute(
                            strm,
                            {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, ym}});
                        strm.wait();
                    } else {
                        vit::gemm_avx2::gemm(x.data(), s.M, packed, b.data(), s.ep, y.data());
                    }
                    if (rep >= 0) best[side] = std::min(best[side], seconds_since(t0));
                }
            }
        const double g0 = flop / best[0] * 1e-9, g1 = flop / best[1] * 1e-9;
        std::printf("%-18s %10.1f %10.1f %7.2fx", s.name, g0, g1, g1 / g0);
        if (peak > 0) std::printf(" %6.1f%% %6.1f%%", 100 * g0 / peak, 100 * g1 / peak);
        std::printf("\n");
    }
    std::printf("(GFLOP/s, best of %d rounds; %%peak columns: oneDNN, gemm_avx2; %d threads)\n", rounds, threads);

    // int8 on the AVX2 path: u8 source x s8 weights (7 bits) -> s32, oneDNN's matmul as Linear built it before
    // (weights "ba") against gemm_u8s8; the multiply-adds counted as 2 ops, as above.
    std::printf("\n%-18s %10s %10s %8s\n", "int8 shape", "oneDNN", "gemm_u8s8", "ratio");
    for (const Shape& s : shapes) {
        if (s.K % 4 != 0) continue;
        std::vector<std::uint8_t> x(static_cast<std::size_t>(s.M) * s.K);
        std::vector<std::int8_t> w(static_cast<std::size_t>(s.N) * s.K);
        std::vector<std::int32_t> acc(static_cast<std::size_t>(s.M) * s.N);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<std::uint8_t>(i * 37 % 256);
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<std::int8_t>(static_cast<int>(i * 11 % 127) - 63);
        const vit::gemm_avx2::PackedWeightsS8 packed(w.data(), s.K, s.N);
        const dnnl::memory::desc src_md({s.M, s.K}, dt::u8, tag::ab), w_md({s.K, s.N}, dt::s8, tag::ba),
            dst_md({s.M, s.N}, dt::s32, tag::ab);
        const dnnl::matmul mm(dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, w_md, dst_md), eng));
        dnnl::memory xm(src_md, eng, x.data()), wm(w_md, eng, w.data()), ym(dst_md, eng, acc.data());
        const double ops = 2.0 * static_cast<double>(s.M) * s.K * s.N;
        const int reps = std::max(3, static_cast<int>(4e9 / ops));
        double best[2] = {1e30, 1e30};
        for (int r = 0; r < rounds; ++r)
            for (int side = 0; side < 2; ++side)
                for (int rep = -1; rep < reps; ++rep) {
                    const auto t0 = std::chrono::steady_clock::now();
                    if (side == 0) {
                        mm.execute(strm, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}});
                        strm.wait();
                    } else {
                        vit::gemm_avx2::gemm_u8s8(x.data(), s.M, packed, acc.data());
                    }
                    if (rep >= 0) best[side] = std::min(best[side], seconds_since(t0));
                }
        const double g0 = ops / best[0] * 1e-9, g1 = ops / best[1] * 1e-9;
        std::printf("%-18s %10.1f %10.1f %7.2fx\n", s.name, g0, g1, g1 / g0);
    }
    std::printf("(GOP/s, best of %d rounds; %d threads)\n", rounds, threads);
}
