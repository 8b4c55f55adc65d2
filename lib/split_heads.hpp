// Copying the heads out of a packed qkv projection, for the f32 (attention.cpp) and bf16 (ops_bf16.cpp) attention.
#pragma once

#include <cstdint>
#include <cstring>

namespace vit {

// qkv [B, T, 3, H, d] -> q, k, v [B, H, T, d] each, contiguous: oneDNN's brgemm matmul (AVX-512, AMX) takes only
// dense operands, and on the strided views of qkv it falls back to `gemm:jit`: ~2x slower for f32 on these shapes
// (and it generates its kernels on the first call, ~30 ms of a one-image `vit classify`), ~100x for bf16 Q·Kᵀ.
template <typename E>
void split_heads(const E* qkv, std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t d, E* q, E* k, E* v) {
    const std::int64_t D = H * d;
    E* dst[3] = {q, k, v};
#pragma omp parallel for collapse(2)
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t h = 0; h < H; ++h)
            for (std::int64_t t = 0; t < T; ++t) {
                const E* src = qkv + (b * T + t) * 3 * D + h * d;
                for (int j = 0; j < 3; ++j)
                    std::memcpy(dst[j] + ((b * H + h) * T + t) * d, src + j * D,
                                static_cast<std::size_t>(d) * sizeof(E));
            }
}

}  // namespace vit
