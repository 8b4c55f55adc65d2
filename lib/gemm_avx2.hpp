// Our f32 GEMM for CPUs with AVX2 + FMA and no AVX-512: y [M, N] = x [M, K] · Wᵀ + b with the Linear's epilogue
// (GELU erf / tanh, quick GELU, residual add) applied in the store. oneDNN 2.6's `gemm:jit` on those CPUs packs W on
// every call and runs the activation as a second pass; here W is packed once at load into 16-column panels and a
// 6 x 16 register-blocked FMA microkernel walks them (BLIS's loop order: K blocks in L1/L2, threads over N).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace vit::gemm_avx2 {

enum class Epilogue { None, Gelu, GeluTanh, QuickGelu, Residual };  // as Linear::Epilogue

// The CPU runs AVX2 and FMA instructions.
bool supported();

// W in PyTorch's [N, K] order, packed for gemm(): 16-column panels, each K rows of 16 floats (zero past N).
class PackedWeights {
public:
    PackedWeights() = default;
    PackedWeights(const float* w_nk, int K, int N);
    const float* data() const { return data_.get(); }
    bool empty() const { return !data_; }
    std::size_t bytes() const { return bytes_; }
    int K() const { return K_; }
    int N() const { return N_; }

private:
    std::shared_ptr<float> data_;  // 64-byte aligned
    std::size_t bytes_ = 0;
    int K_ = 0, N_ = 0;
};

// y [M, N] = act(x [M, K] · Wᵀ + bias), or y += x · Wᵀ + bias for Epilogue::Residual; bias may be null.
// Runs on the OpenMP threads (omp_get_max_threads()); supported() must hold.
void gemm(const float* x, std::int64_t M, const PackedWeights& w, const float* bias, Epilogue ep, float* y);

}  // namespace vit::gemm_avx2
