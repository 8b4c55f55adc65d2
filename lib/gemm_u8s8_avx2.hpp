// Our u8 x s8 -> s32 GEMM for the int8 Linear on CPUs with AVX2 and no AVX-512 VNNI: acc [M, N] = x [M, K] · Wᵀ with
// x as unsigned bytes (the quantised source + 128, see quantize.hpp) and W as signed 7-bit values (|w| <= 63: the
// vpmaddubsw instruction adds each pair of u8 x s8 products in saturating 16 bits, 2 x 255 x 63 fits). oneDNN 2.6's
// `gemm:jit` on those CPUs packs W on every call; here W is packed once at load into 16-column panels of 4-byte
// K groups and a 4 x 16 register-blocked kernel walks them (the loops of gemm_avx2.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace vit::gemm_avx2 {

// W in PyTorch's [N, K] order for gemm_u8s8(): 16-column panels, each K / 4 groups of [16 columns][4 bytes].
class PackedWeightsS8 {
public:
    PackedWeightsS8() = default;
    // K must be a multiple of 4 (std::invalid_argument otherwise), every |w| <= 63 (std::invalid_argument).
    PackedWeightsS8(const std::int8_t* w_nk, int K, int N);
    const std::int8_t* data() const { return data_.get(); }
    std::size_t bytes() const { return bytes_; }
    int K() const { return K_; }
    int N() const { return N_; }
    bool empty() const { return !data_; }

private:
    std::shared_ptr<std::int8_t> data_;  // 64-byte aligned
    std::size_t bytes_ = 0;
    int K_ = 0, N_ = 0;
};

// acc [M, N] = x [M, K] (row-major, unsigned) · Wᵀ, exactly (s32). Runs on the OpenMP threads; needs AVX2
// (gemm_avx2::supported()).
void gemm_u8s8(const std::uint8_t* x, std::int64_t M, const PackedWeightsS8& w, std::int32_t* acc);

}  // namespace vit::gemm_avx2
