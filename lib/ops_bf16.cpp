// The bf16 ops of ops_bf16.hpp, and the bf16-in / bf16-out entry points of Linear and LayerNorm (ops.hpp).
#include "ops_bf16.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "attention_amx.hpp"
#include "exp_rows.hpp"
#include "op_profile.hpp"
#include "safetensors.hpp"
#include "split_heads.hpp"  // float_to_bf16: the scalar conversion

// GCC 12 reports the _mm512_undefined_*() operand inside its own AVX-512 intrinsics as uninitialised (GCC bug
// 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace vit {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// -------------------------------------------------------------------------------------------- bf16 conversion

namespace {

// The bf16 path only runs where oneDNN runs bf16 matmuls, i.e. with AVX-512 (F, BW, VL, DQ: oneDNN's
// avx512_core); the scalar code is the fallback of a CPU without it. AVX-512 BF16 (Cooper Lake, Sapphire Rapids,
// Zen 4) converts f32 -> bf16 in one instruction, with the same rounding (to nearest even) as float_to_bf16, except
// that it flushes denormals (below 1.2e-38) to zero.
const bool kAvx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                     __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
const bool kAvx512Bf16 = kAvx512 && __builtin_cpu_supports("avx512bf16");

__attribute__((target("avx512f"))) inline __m512i bf16_bits(__m512 v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_maskz_srli_epi32(0xffff, u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x400000)));
    return _mm512_maskz_srli_epi32(0xffff, r, 16);
}

__attribute__((target("avx512f"))) void to_bf16_avx512(const float* x, std::int64_t n, std::uint16_t* y) {
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_mask_cvtepi32_storeu_epi16(y + i, 0xffff, bf16_bits(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        _mm512_mask_cvtepi32_storeu_epi16(y + i, m, bf16_bits(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

// One row of layer normalisation [D] in f32, written as bf16; the same two passes (mean, then the variance
// around it) as oneDNN's f32 layer normalisation. BF16 instructions only with native_bf16 (as scale_row_avx512).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))) void layer_norm_row_avx512(
    const float* x, std::int64_t D, const float* g, const float* b, float eps, std::uint16_t* y, bool native_bf16) {
    __m512 acc = _mm512_setzero_ps();
    std::int64_t i = 0;
    const std::int64_t tail = D % 16;
    const __mmask16 tm = static_cast<__mmask16>((1u << tail) - 1);
    for (i = 0; i + 16 <= D; i += 16) acc = _mm512_add_ps(acc, _mm512_loadu_ps(x + i));
    if (tail) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tm, x + i));
    const float mean = _mm512_reduce_add_ps(acc) / static_cast<float>(D);
    const __m512 vm = _mm512_set1_ps(mean);
    acc = _mm512_setzero_ps();
    for (i = 0; i + 16 <= D; i += 16) {
        const __m512 c = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm);
        acc = _mm512_fmadd_ps(c, c, acc);
    }
    if (tail) {
        const __m512 c = _mm512_maskz_sub_ps(tm, _mm512_maskz_loadu_ps(tm, x + i), vm);
        acc = _mm512_fmadd_ps(c, c, acc);
    }
    const float var = _mm512_reduce_add_ps(acc) / static_cast<float>(D);
    const __m512 inv = _mm512_set1_ps(1.f / std::sqrt(var + eps));
    for (i = 0; i + 16 <= D; i += 16) {
        const __m512 c = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), inv);
        const __m512 v = _mm512_fmadd_ps(c, _mm512_loadu_ps(g + i), _mm512_loadu_ps(b + i));
        if (native_bf16)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
        else _mm512_mask_cvtepi32_storeu_epi16(y + i, 0xffff, bf16_bits(v));
    }
    if (tail) {
        const __m512 c = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tm, x + i), vm), inv);
        const __m512 v = _mm512_fmadd_ps(c, _mm512_maskz_loadu_ps(tm, g + i), _mm512_maskz_loadu_ps(tm, b + i));
        if (native_bf16) _mm256_mask_storeu_epi16(y + i, tm, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
        else _mm512_mask_cvtepi32_storeu_epi16(y + i, tm, bf16_bits(v));
    }
}

// One softmax row after exp_rows: p = s * inv_sum in bf16 (and back into s as f32 when keep_f32).
// Compiled for AVX-512 BF16, but with native_bf16 false no BF16 instruction runs (GCC emits them only for the
// _mm512_cvtneps_pbh intrinsic); the native conversion takes a quarter off the whole softmax.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))) void scale_row_avx512(
    float* s, std::int64_t n, float inv_sum, std::uint16_t* p, bool keep_f32, bool native_bf16) {
    const std::int64_t tail = n % 16, full = n - tail;
    const __mmask16 tm = static_cast<__mmask16>((1u << tail) - 1);
    const __m512 inv = _mm512_set1_ps(inv_sum);
    for (std::int64_t i = 0; i < full; i += 16) {
        const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(s + i), inv);
        if (native_bf16)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + i), reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
        else _mm512_mask_cvtepi32_storeu_epi16(p + i, 0xffff, bf16_bits(v));
        if (keep_f32) _mm512_storeu_ps(s + i, v);
    }
    if (tail) {
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(tm, s + full), inv);
        if (native_bf16) _mm256_mask_storeu_epi16(p + full, tm, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
        else _mm512_mask_cvtepi32_storeu_epi16(p + full, tm, bf16_bits(v));
        if (keep_f32) _mm512_mask_storeu_ps(s + full, tm, v);
    }
}

void layer_norm_row(const float* x, std::int64_t D, const float* g, const float* b, float eps, std::uint16_t* y) {
    float sum = 0;
    for (std::int64_t i = 0; i < D; ++i) sum += x[i];
    const float mean = sum / static_cast<float>(D);
    float sq = 0;
    for (std::int64_t i = 0; i < D; ++i) sq += (x[i] - mean) * (x[i] - mean);
    const float inv = 1.f / std::sqrt(sq / static_cast<float>(D) + eps);
    for (std::int64_t i = 0; i < D; ++i) y[i] = float_to_bf16((x[i] - mean) * inv * g[i] + b[i]);
}

}  // namespace

// Both conversions split over the threads in chunks: int8 on AMX converts a whole layer's qkv and context with them.
constexpr std::int64_t kConvertChunk = 1 << 14;

void to_bf16(const float* x, std::int64_t n, std::uint16_t* y) {
    const bool avx512 = kAvx512;
#pragma omp parallel for if (n > kConvertChunk)
    for (std::int64_t c = 0; c < n; c += kConvertChunk) {
        const std::int64_t m = std::min(kConvertChunk, n - c);
        if (avx512) {
            to_bf16_avx512(x + c, m, y + c);
        } else {
            for (std::int64_t i = c; i < c + m; ++i) y[i] = float_to_bf16(x[i]);
        }
    }
}

void softmax_rows_bf16(float* s, std::int64_t rows, std::int64_t cols, std::uint16_t* p, bool keep_f32) {
    const SimdLevel level = simd_level();
    const bool avx512 = kAvx512 && level == SimdLevel::Avx512, native = avx512 && kAvx512Bf16;
    constexpr std::int64_t kChunk = 16;  // rows per exp_rows call: still in L1 for the scaling pass
#pragma omp parallel for
    for (std::int64_t r0 = 0; r0 < rows; r0 += kChunk) {
        const std::int64_t n = std::min(kChunk, rows - r0);
        float inv[kChunk];
        exp_rows(s + r0 * cols, n, cols, cols, inv, level);
        for (std::int64_t i = 0; i < n; ++i) {
            float* row = s + (r0 + i) * cols;
            std::uint16_t* out = p + (r0 + i) * cols;
            if (avx512) {
                scale_row_avx512(row, cols, inv[i], out, keep_f32, native);
            } else {
                for (std::int64_t j = 0; j < cols; ++j) {
                    out[j] = float_to_bf16(row[j] * inv[i]);
                    if (keep_f32) row[j] *= inv[i];
                }
            }
        }
    }
}

void from_bf16(const std::uint16_t* x, std::int64_t n, float* y) {
#pragma omp parallel for if (n > kConvertChunk)
    for (std::int64_t i = 0; i < n; ++i) {
        const std::uint32_t u = static_cast<std::uint32_t>(x[i]) << 16;
        std::memcpy(y + i, &u, 4);
    }
}

// ------------------------------------------------------------------------------------------------- LayerNorm

void LayerNorm::forward_bf16(const float* x, std::int64_t M, std::uint16_t* y) const {
    const op_profile::Scope timing(op_profile::Kind::Norm, [&] {
        return "layer norm " + std::to_string(D_) + ", bf16 out [" + std::to_string(M) + " rows]";
    });
    const float* g = static_cast<const float*>(scale_.get_data_handle());
    const float* b = static_cast<const float*>(shift_.get_data_handle());
    const std::int64_t D = D_;
    const float eps = eps_;
    const bool avx512 = kAvx512, native = kAvx512Bf16;
#pragma omp parallel for
    for (std::int64_t m = 0; m < M; ++m) {
        if (avx512) layer_norm_row_avx512(x + m * D, D, g, b, eps, y + m * D, native);
        else layer_norm_row(x + m * D, D, g, b, eps, y + m * D);
    }
}

// ---------------------------------------------------------------------------------------------------- Linear

namespace {

void require_bf16(Precision p) {
    if (p != Precision::BF16)
        throw std::logic_error("Linear::forward_bf16 called on a " + to_string(p) + " layer (bf16 expected)");
}

}  // namespace

void Linear::prepare_bf16(std::int64_t M, bool bf16_out) const {
    require_bf16(precision_);
    if (bf16_out) bf16_out_prim(M);
    else prim(M);
}

// forward()'s primitive with a bf16 destination: the same source, weights, bias and post-ops (the epilogue).
const dnnl::matmul& Linear::bf16_out_prim(std::int64_t M) const {
    auto it = bf16_out_prims_.find(M);
    if (it != bf16_out_prims_.end()) return it->second;
    const Prim& p = prim(M);
    const_dnnl_primitive_attr_t c_attr = nullptr;
    dnnl_primitive_attr_t attr_copy = nullptr;
    dnnl::error::wrap_c_api(dnnl_primitive_desc_get_attr(p.mm.get_primitive_desc(), &c_attr),
                            "could not read a matmul's attributes");
    dnnl::error::wrap_c_api(dnnl_primitive_attr_clone(&attr_copy, c_attr), "could not copy a matmul's attributes");
    const dnnl::primitive_attr attr(attr_copy);
    const memory::desc dst_md({M, N_}, dt::bf16, tag::ab);
    auto& rt = Runtime::get();
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(p.src_md, weights_.get_desc(), bias_.get_desc(), dst_md), attr,
                                    rt.engine);
    return bf16_out_prims_.emplace(M, dnnl::matmul(pd)).first->second;
}

void Linear::forward_bf16(const std::uint16_t* x, std::int64_t M, float* y) const {
    const op_profile::Scope timing(op_profile::Kind::Linear, [&] { return describe(M, ", bf16 in"); });
    require_bf16(precision_);
    auto& rt = Runtime::get();
    const Prim& p = prim(M);
    memory src(p.src_md, rt.engine, const_cast<std::uint16_t*>(x)), dst(p.dst_md, rt.engine, y);
    p.mm.execute(rt.stream,
                 {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_BIAS, bias_}, {DNNL_ARG_DST, dst}});
    rt.stream.wait();
}

void Linear::forward_bf16(const std::uint16_t* x, std::int64_t M, std::uint16_t* y) const {
    const op_profile::Scope timing(op_profile::Kind::Linear, [&] { return describe(M, ", bf16 in and out"); });
    require_bf16(precision_);
    auto& rt = Runtime::get();
    const dnnl::matmul& mm = bf16_out_prim(M);
    memory src({{M, K_}, dt::bf16, tag::ab}, rt.engine, const_cast<std::uint16_t*>(x));
    memory dst({{M, N_}, dt::bf16, tag::ab}, rt.engine, y);
    mm.execute(rt.stream,
               {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_BIAS, bias_}, {DNNL_ARG_DST, dst}});
    rt.stream.wait();
}

// --------------------------------------------------------------------------------------------- AttentionBf16

const AttentionBf16::Prims& AttentionBf16::prims(std::int64_t B, std::int64_t T) const {
    auto key = std::make_pair(B, T);
    auto it = prims_.find(key);
    if (it != prims_.end()) return it->second;
    auto& rt = Runtime::get();
    const std::int64_t H = H_, d = d_;
    const memory::desc q_md({B, H, T, d}, dt::bf16, tag::abcd);
    const memory::desc kt_md({B, H, d, T}, dt::bf16, tag::abdc);  // k [B, H, T, d] read transposed
    const memory::desc s_md({B, H, T, T}, dt::f32, tag::abcd);
    const memory::desc p_md({B, H, T, T}, dt::bf16, tag::abcd);
    const memory::desc ctx_md({B, H, T, d}, dt::bf16, tag::acbd);  // written straight into [B, T, H, d]
    dnnl::primitive_attr qk_attr;
    qk_attr.set_output_scales(0, {scale_});
    dnnl::matmul::primitive_desc qk_pd(dnnl::matmul::desc(q_md, kt_md, s_md), qk_attr, rt.engine);
    dnnl::matmul::primitive_desc pv_pd(dnnl::matmul::desc(p_md, q_md, ctx_md), rt.engine);
    Prims p{dnnl::matmul(qk_pd), dnnl::matmul(pv_pd)};
    return prims_.emplace(key, std::move(p)).first->second;
}

bool AttentionBf16::on_amx() const { return d_ <= kAmxMaxHeadDim && amx_attention_available(); }

void AttentionBf16::prepare(std::int64_t B, std::int64_t T) const {
    if (!on_amx()) prims(B, T);
}

void AttentionBf16::forward(const std::uint16_t* qkv, std::int64_t B, std::int64_t T, float* probs, std::uint16_t* ctx,
                            std::int64_t queries) const {
    const op_profile::Scope timing(op_profile::Kind::Attention, [&] {
        return "attention bf16 " + std::string(on_amx() ? "(AMX) " : "") + std::to_string(H_) + " heads x " +
               std::to_string(d_) + ", " + std::to_string(T) + " tokens [" + std::to_string(B) + " images]";
    });
    if (on_amx()) return attention_amx(qkv, B, T, H_, d_, scale_, probs, ctx, probs ? T : queries);
    auto& rt = Runtime::get();
    const std::int64_t H = H_, d = d_, D = H * d, S = B * H * T * T;
    thread_local std::vector<std::uint16_t> heads, probs_bf16;  // q, k, v [B, H, T, d]; P [B, H, T, T]
    thread_local std::vector<float> scratch;                    // scores [B, H, T, T] when no `probs` is given
    heads.resize(static_cast<std::size_t>(3 * B * T * D));
    probs_bf16.resize(static_cast<std::size_t>(S));
    float* scores = probs;
    if (!scores) {
        scratch.resize(static_cast<std::size_t>(S));
        scores = scratch.data();
    }
    std::uint16_t* q = heads.data();
    std::uint16_t* k = q + B * T * D;
    std::uint16_t* v = k + B * T * D;
    split_heads(qkv, B, T, H, d, q, k, v);
    const Prims& p = prims(B, T);
    const memory::desc q_md({B, H, T, d}, dt::bf16, tag::abcd);
    const memory::desc kt_md({B, H, d, T}, dt::bf16, tag::abdc);
    const memory::desc s_md({B, H, T, T}, dt::f32, tag::abcd);
    const memory::desc p_md({B, H, T, T}, dt::bf16, tag::abcd);
    const memory::desc ctx_md({B, H, T, d}, dt::bf16, tag::acbd);
    memory qm(q_md, rt.engine, q), kt(kt_md, rt.engine, k), vm(q_md, rt.engine, v);
    memory s(s_md, rt.engine, scores), pm(p_md, rt.engine, probs_bf16.data()), out(ctx_md, rt.engine, ctx);
    p.qk.execute(rt.stream, {{DNNL_ARG_SRC, qm}, {DNNL_ARG_WEIGHTS, kt}, {DNNL_ARG_DST, s}});
    rt.stream.wait();
    softmax_rows_bf16(scores, B * H * T, T, probs_bf16.data(), probs != nullptr);
    p.pv.execute(rt.stream, {{DNNL_ARG_SRC, pm}, {DNNL_ARG_WEIGHTS, vm}, {DNNL_ARG_DST, out}});
    rt.stream.wait();
}

}  // namespace vit
