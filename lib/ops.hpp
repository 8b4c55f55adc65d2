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

namespace vit {

// Numeric precision of the linear layers (activations between ops stay float32).
//   BF16: bf16 weights and inputs, f32 accumulation and output (needs AVX-512 in oneDNN 2.6).
//   INT8: weights quantised per output channel at load, inputs quantised per row (token) at run time,
//         s8 x s8 -> s32 matmul, then dequantised with bias and epilogue in f32.
enum class Precision { F32, BF16, INT8 };
std::string to_string(Precision p);
Precision parse_precision(const std::string& s);   // "fp32" | "bf16" | "int8"; throws std::invalid_argument

// The instruction set oneDNN runs with on this CPU, e.g. "AVX2", "AVX-512 BF16".
std::string cpu_isa_name();

// The CPU engine and stream every op runs on.
struct Runtime {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    static Runtime& get();
};

// Inference threads used by the ops (OpenMP inside oneDNN and in our own loops).
void set_num_threads(int n);
int num_threads();

// y[M,N] = x[M,K] · Wᵀ + b, optionally followed by exact GELU, or accumulated into y (y += x·Wᵀ + b) to fuse
// a residual connection. W is given in PyTorch's [N, K] layout and reordered once into oneDNN's preferred
// layout; no other copy of it is kept.
class Linear {
public:
    enum class Epilogue { None, Gelu, Residual };

    Linear() = default;
    Linear(const float* w_nk, const float* bias, int K, int N, Epilogue ep, Precision p = Precision::F32);

    void forward(const float* x, std::int64_t M, float* y) const;
    int in_features() const { return K_; }
    int out_features() const { return N_; }
    std::size_t weight_bytes() const;
    // Implementation oneDNN picked for this M (for `vit bench` and tests), e.g. "brg:avx512_core".
    std::string impl_name(std::int64_t M) const;

private:
    struct Prim {
        dnnl::matmul mm;
        dnnl::memory::desc src_md, dst_md;
        std::string impl;
    };
    const Prim& prim(std::int64_t M) const;
    dnnl::memory::data_type src_type() const {
        return precision_ == Precision::BF16 ? dnnl::memory::data_type::bf16
               : precision_ == Precision::INT8 ? dnnl::memory::data_type::s8 : dnnl::memory::data_type::f32;
    }
    dnnl::memory::data_type weights_type() const { return src_type(); }

    int K_ = 0, N_ = 0;
    Epilogue ep_ = Epilogue::None;
    Precision precision_ = Precision::F32;
    dnnl::memory weights_, bias_;
    std::vector<float> wscale_;     // INT8: per-output-channel weight scales
    mutable std::map<std::int64_t, Prim> prims_;
};

// y = (x - mean) / sqrt(var + eps) * weight + bias over the last dimension of x [M, D].
class LayerNorm {
public:
    LayerNorm() = default;
    LayerNorm(const float* weight, const float* bias, int D, float eps);
    void forward(const float* x, std::int64_t M, float* y) const;

private:
    int D_ = 0;
    float eps_ = 0;
    dnnl::memory scale_, shift_;
    mutable std::map<std::int64_t, dnnl::layer_normalization_forward> prims_;
};

// In-place softmax over each row of x [rows, cols].
void softmax_rows(float* x, std::int64_t rows, std::int64_t cols);

// Element-wise exact (erf) GELU, in place.
void gelu(float* x, std::int64_t n);

// Multi-head scaled dot-product attention on packed projections.
// qkv [B, T, 3, H, d] (timm's qkv Linear output) -> ctx [B, T, H, d] = softmax(Q·Kᵀ·scale)·V per (batch, head);
// heads are viewed through strides, not copied. `scores` is scratch of B*H*T*T floats.
class Attention {
public:
    Attention() = default;
    Attention(int num_heads, int head_dim, float scale);
    void forward(const float* qkv, std::int64_t B, std::int64_t T, float* scores, float* ctx) const;

private:
    struct Prims {
        dnnl::matmul qk, pv;
        dnnl::softmax_forward softmax;
    };
    const Prims& prims(std::int64_t B, std::int64_t T) const;

    int H_ = 0, d_ = 0;
    float scale_ = 1;
    mutable std::map<std::pair<std::int64_t, std::int64_t>, Prims> prims_;
};

}  // namespace vit
