// Thin wrappers over oneDNN: the only place that knows about primitives, memory descriptors and DNNL_ARG_*.
//
// Dimension letters: M rows (batch x tokens), K input features, N output features, B batch, T tokens,
// H heads, d head dim, D = H*d model dim. Every op builds its primitive once per shape and reuses it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <dnnl.hpp>

#include "gemm_avx2.hpp"
#include "gemm_u8s8_avx2.hpp"
#include "runtime.hpp"

namespace vit {

// The CPU engine and stream every op runs on.
struct Runtime {
    Runtime();
    dnnl::engine engine;
    dnnl::stream stream;
    static Runtime& get();
};

// An element-wise activation applied in place, its primitive built once per length.
class Activation1d {
public:
    explicit Activation1d(dnnl::algorithm alg = dnnl::algorithm::eltwise_gelu_erf, float alpha = 0.f)
        : alg_(alg), alpha_(alpha) {}
    void forward(float* x, std::int64_t n) const;

private:
    dnnl::algorithm alg_;
    float alpha_;
    mutable std::map<std::int64_t, dnnl::eltwise_forward> prims_;
};

// Activations quantised per row (token) for an INT8 Linear: x[m, :] ≈ scale[m] * q[m, :], q in [-127, 127] (stored
// as the bytes of q + 128 on CPUs without AVX-512 VNNI, whose layers take a u8 source: see Linear).
struct QuantizedRows {
    std::vector<std::int8_t> q;  // [M, K]
    std::vector<float> scale;    // [M]
    std::int64_t M = 0, K = 0;
};

// y[M,N] = x[M,K] · Wᵀ + b, optionally followed by an activation (exact GELU, tanh GELU, quick GELU =
// x·sigmoid(1.702x)), or accumulated into y (y += x·Wᵀ + b) to fuse a residual connection. W is given in PyTorch's [N,
// K] layout and reordered once into oneDNN's preferred layout (or packed for gemm_avx2 on AVX2 CPUs without AVX-512);
// no other copy of it is kept.
// INT8: the s8 x s8 -> s32 matmul is followed by one pass of our own (quantize.hpp) that dequantises, adds the bias
// and applies the activation or the residual; its activations use polynomial erf/exp, not oneDNN's.
class Linear {
public:
    enum class Epilogue { None, Gelu, GeluTanh, QuickGelu, Residual };

    Linear() = default;
    Linear(const float* w_nk, const float* bias, int K, int N, Epilogue ep, Precision p = Precision::F32);

    void forward(const float* x, std::int64_t M, float* y) const;
    // INT8 only, for two INT8 Linears in a row (an MLP): the output quantised per row for the next one, with no
    // float copy of it (not with Epilogue::Residual), and the input taken already quantised.
    void forward(const float* x, std::int64_t M, QuantizedRows& y) const;
    void forward(const QuantizedRows& x, float* y) const;
    void prepare(std::int64_t M) const {  // builds forward(M)'s primitive without running it
        if (gemm_.empty() && gemm_s8_.empty()) prim(M);
    }
    // BF16 only (ops_bf16.cpp): x [M, K] already in bf16, no reorder; y f32 (epilogue as above) or bf16.
    void forward_bf16(const std::uint16_t* x, std::int64_t M, float* y) const;
    void forward_bf16(const std::uint16_t* x, std::int64_t M, std::uint16_t* y) const;
    void prepare_bf16(std::int64_t M, bool bf16_out) const;
    int in_features() const { return K_; }
    int out_features() const { return N_; }
    std::size_t weight_bytes() const;

private:
    struct Prim {
        dnnl::matmul mm;
        dnnl::memory::desc src_md, dst_md;
        dnnl::reorder to_bf16;  // BF16: the f32 activations into the matmul's bf16 input
    };
    const Prim& prim(std::int64_t M) const;
    const dnnl::matmul& bf16_out_prim(std::int64_t M) const;
    dnnl::memory::data_type weights_type() const {
        return precision_ == Precision::BF16   ? dnnl::memory::data_type::bf16
               : precision_ == Precision::INT8 ? dnnl::memory::data_type::s8
                                               : dnnl::memory::data_type::f32;
    }
    dnnl::memory::data_type src_type() const { return u8_src_ ? dnnl::memory::data_type::u8 : weights_type(); }
    std::string describe(std::int64_t M, const char* io) const;  // for op_profile: "linear 768->3072 gelu bf16 ..."

    int K_ = 0, N_ = 0;
    Epilogue ep_ = Epilogue::None;
    Precision precision_ = Precision::F32;
    dnnl::memory weights_, bias_;
    // INT8: acc [M, N] = xq [M, K] · Wqᵀ in s32.
    void int8_matmul(const std::int8_t* xq, std::int64_t M, std::int32_t* acc) const;
    const std::int32_t* quantized_matmul(const float* x, std::int64_t M, const float** xscale) const;
    // INT8: Wq [N, K] from W, and wscale_ (and acc_offset_ for a u8 source) set.
    std::vector<std::int8_t> quantize_weights(const float* w_nk);
    void check_int8(const char* what) const;

    std::vector<float> wscale_;  // INT8: per-output-channel weight scales
    // F32 where oneDNN's ISA is AVX2 (no AVX-512): our GEMM's packed weights (gemm_avx2.hpp), no oneDNN matmul.
    gemm_avx2::PackedWeights gemm_;
    // INT8 where oneDNN's ISA is AVX2: our u8 x s8 GEMM's packed weights (gemm_u8s8_avx2.hpp), no oneDNN matmul.
    gemm_avx2::PackedWeightsS8 gemm_s8_;
    // INT8 without AVX-512 VNNI: the source as u8 (q + 128), corrected by acc_offset_[n] = -128 * sum_k Wq[n, k].
    // oneDNN's s8 x s8 gemm there recomputes that correction from the weights in a scalar loop on every call (13% of
    // ViT-B/16's int8 pass on the AVX2 path).
    bool u8_src_ = false;
    std::vector<std::int32_t> acc_offset_;
    const std::int32_t* offset() const { return u8_src_ ? acc_offset_.data() : nullptr; }
    mutable std::map<std::int64_t, Prim> prims_;
    mutable std::map<std::int64_t, dnnl::matmul> bf16_out_prims_;  // BF16: forward_bf16 with a bf16 y
};

// y = (x - mean) / sqrt(var + eps) * weight + bias over the last dimension of x [M, D].
class LayerNorm {
public:
    LayerNorm() = default;
    LayerNorm(const float* weight, const float* bias, int D, float eps);
    void forward(const float* x, std::int64_t M, float* y) const;
    void prepare(std::int64_t M) const { prim(M); }  // builds forward(M)'s primitive without running it
    // The same in f32 arithmetic, y written in bf16 for a bf16 Linear (ops_bf16.cpp; oneDNN 2.6's layer
    // normalization has one data type for src and dst).
    void forward_bf16(const float* x, std::int64_t M, std::uint16_t* y) const;

private:
    const dnnl::layer_normalization_forward& prim(std::int64_t M) const;
    int D_ = 0;
    float eps_ = 0;
    dnnl::memory scale_, shift_;
    mutable std::map<std::int64_t, dnnl::layer_normalization_forward> prims_;
};

// In-place softmax over each row of x [rows, cols], and exact (erf) GELU of n values: one-off calls (tests);
// the model's ops own their primitives.
void softmax_rows(float* x, std::int64_t rows, std::int64_t cols);
void gelu(float* x, std::int64_t n);

// silu(a) * b for rows [M, 2F] holding a = [:, :F], b = [:, F:] -> out [M, F] (SwiGLU's gate).
void swiglu(const float* x, std::int64_t M, std::int64_t F, float* out);

// Multi-head scaled dot-product attention on packed projections (lib/attention.cpp).
// qkv [B, T, 3, H, d] (timm's qkv Linear output) -> ctx [B, T, H, d] = softmax(Q·Kᵀ·scale)·V per (batch, head);
// the matmuls read dense or packed copies of the heads. `probs`: null, or B*H*T*T floats
// that receive the attention probabilities [B, H, T, T] (for the attention sink).
// Up to `whole_tokens` tokens (default kAttentionWholeTokens) all heads run at once: three primitives per call.
// Longer sequences (DINOv2's 1370 tokens: 7.5 MB of scores per head) run per (batch, head) in blocks of
// `block_rows` query rows, each block on one thread, so that its scores are still in that core's cache when softmax
// and the product with V read them.
inline constexpr std::int64_t kAttentionWholeTokens = 256;
inline constexpr std::int64_t kAttentionBlockRows = 128;
class Attention {
public:
    Attention() = default;
    Attention(int num_heads, int head_dim, float scale, std::int64_t block_rows = kAttentionBlockRows,
              std::int64_t whole_tokens = kAttentionWholeTokens);
    // `queries` (-1: all T): only the first `queries` tokens of each image need their ctx rows (the last block);
    // a hint, the other paths compute all rows.
    void forward(const float* qkv, std::int64_t B, std::int64_t T, float* probs, float* ctx,
                 std::int64_t queries = -1) const;
    // Builds the primitives forward(B, T) will use (their JIT kernels included) without running them.
    void prepare(std::int64_t B, std::int64_t T) const;

private:
    struct Prims {  // all heads at once
        dnnl::matmul qk, pv;
        dnnl::softmax_forward softmax;
    };
    // Per sequence length T: each head's K and V reordered once from qkv into the blocked layouts the matmuls of
    // its row blocks read directly (with plain K and V every block's matmul repacks them: ~10% slower), and the
    // matmuls of a full block of R rows and of the tail. Run one per thread with the caller's scratchpad.
    struct Blocked {
        dnnl::reorder pack_k, pack_v;
        dnnl::memory::desc k_md, v_md;  // the packed layouts
        dnnl::matmul qk, pv, qk_tail, pv_tail;
        std::size_t scratch_bytes = 0;  // the largest scratchpad of the six
    };
    const Prims& prims(std::int64_t B, std::int64_t T) const;
    const Blocked& blocked(std::int64_t T) const;
    void forward_blocked(const float* qkv, std::int64_t B, std::int64_t T, float* probs, float* ctx) const;

    int H_ = 0, d_ = 0;
    float scale_ = 1;
    std::int64_t block_rows_ = kAttentionBlockRows, whole_tokens_ = kAttentionWholeTokens;
    mutable std::map<std::pair<std::int64_t, std::int64_t>, Prims> prims_;
    mutable std::map<std::int64_t, Blocked> blocked_;
};

}  // namespace vit
