// Multi-head attention (see Attention in ops.hpp): short sequences on our fused kernels (attention_fused.hpp) with
// AVX-512 or AVX2, else all heads at once on oneDNN matmuls; long ones in per-core blocks of query rows on oneDNN
// matmuls.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

#include "attention_fused.hpp"
#include "exp_rows.hpp"
#include "op_profile.hpp"
#include "ops.hpp"
#include "split_heads.hpp"

namespace vit {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

Attention::Attention(int num_heads, int head_dim, float scale, std::int64_t block_rows, std::int64_t whole_tokens)
    : H_(num_heads), d_(head_dim), scale_(scale), block_rows_(block_rows > 0 ? block_rows : kAttentionBlockRows),
      whole_tokens_(whole_tokens >= 0 ? whole_tokens : kAttentionWholeTokens) {}

namespace {

// A 64-byte aligned view of a per-thread byte buffer of at least n bytes.
void* aligned_scratch(std::vector<unsigned char>& buf, std::size_t n) {
    if (buf.size() < n + 64) buf.resize(n + 64);
    auto p = reinterpret_cast<std::uintptr_t>(buf.data());
    return reinterpret_cast<void*>((p + 63) & ~std::uintptr_t{63});
}

}  // namespace

const Attention::Prims& Attention::prims(std::int64_t B, std::int64_t T) const {
    auto key = std::make_pair(B, T);
    auto it = prims_.find(key);
    if (it != prims_.end()) return it->second;
    auto& rt = Runtime::get();
    const std::int64_t H = H_, d = d_;
    const memory::desc q_md({B, H, T, d}, dt::f32, tag::abcd);
    const memory::desc kt_md({B, H, d, T}, dt::f32, tag::abdc);  // k [B, H, T, d] read transposed
    const memory::desc s_md({B, H, T, T}, dt::f32, tag::abcd);
    const memory::desc ctx_md({B, H, T, d}, dt::f32, tag::acbd);  // written straight into [B, T, H, d]
    dnnl::primitive_attr qk_attr;
    qk_attr.set_output_scales(0, {scale_});
    dnnl::matmul::primitive_desc qk_pd(dnnl::matmul::desc(q_md, kt_md, s_md), qk_attr, rt.engine);
    dnnl::matmul::primitive_desc pv_pd(dnnl::matmul::desc(s_md, q_md, ctx_md), rt.engine);
    const memory::desc rows_md({B * H * T, T}, dt::f32, tag::ab);
    dnnl::softmax_forward::desc sm(dnnl::prop_kind::forward_inference, rows_md, 1);
    Prims p{dnnl::matmul(qk_pd), dnnl::matmul(pv_pd), dnnl::softmax_forward({sm, rt.engine})};
    return prims_.emplace(key, std::move(p)).first->second;
}

// The blocked path's primitives run on one thread each, two or more at a time: oneDNN's default scratchpad is one
// buffer shared by all primitives (not safe to use concurrently), so each thread passes its own.
const Attention::Blocked& Attention::blocked(std::int64_t T) const {
    auto it = blocked_.find(T);
    if (it != blocked_.end()) return it->second;
    auto& rt = Runtime::get();
    const std::int64_t d = d_, D = H_ * d_, R = std::min(block_rows_, T), tail = T - (T - 1) / R * R;
    dnnl::primitive_attr attr, qk_attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    qk_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    qk_attr.set_output_scales(0, {scale_});
    Blocked bl;
    std::size_t pad = 0;
    // S [r, T] = Q [r, d] · Kᵀ [d, T] and out [r, d] = S · V [T, d]; K and V in the layouts oneDNN picks (`any`)
    // for full blocks, which the tail's matmuls are then given as they are.
    auto make = [&](std::int64_t r, const memory::desc& k_md, const memory::desc& v_md, dnnl::matmul& qk,
                    dnnl::matmul& pv) {
        const memory::desc q_md({r, d}, dt::f32, tag::ab), s_md({r, T}, dt::f32, tag::ab);
        dnnl::matmul::primitive_desc qk_pd(dnnl::matmul::desc(q_md, k_md, s_md), qk_attr, rt.engine);
        dnnl::matmul::primitive_desc pv_pd(dnnl::matmul::desc(s_md, v_md, {{r, d}, dt::f32, tag::ab}), attr, rt.engine);
        pad = std::max({pad, qk_pd.scratchpad_desc().get_size(), pv_pd.scratchpad_desc().get_size()});
        qk = dnnl::matmul(qk_pd);
        pv = dnnl::matmul(pv_pd);
        return std::make_pair(qk_pd.weights_desc(), pv_pd.weights_desc());
    };
    std::tie(bl.k_md, bl.v_md) = make(R, {{d, T}, dt::f32, tag::any}, {{T, d}, dt::f32, tag::any}, bl.qk, bl.pv);
    if (tail != R) make(tail, bl.k_md, bl.v_md, bl.qk_tail, bl.pv_tail);
    // a head's Kᵀ [d, T] and V [T, d] where they lie in qkv [T, 3, H, d]
    const memory::desc kt_view({d, T}, dt::f32, memory::dims{1, 3 * D}), v_view({T, d}, dt::f32, {3 * D, 1});
    dnnl::reorder::primitive_desc k_pd(rt.engine, kt_view, rt.engine, bl.k_md, attr);
    dnnl::reorder::primitive_desc v_pd(rt.engine, v_view, rt.engine, bl.v_md, attr);
    bl.pack_k = dnnl::reorder(k_pd);
    bl.pack_v = dnnl::reorder(v_pd);
    bl.scratch_bytes = std::max({pad, k_pd.scratchpad_desc().get_size(), v_pd.scratchpad_desc().get_size()});
    return blocked_.emplace(T, std::move(bl)).first->second;
}

void Attention::prepare(std::int64_t B, std::int64_t T) const {
    if (T > whole_tokens_) {
        blocked(T);
    } else if (simd_level() == SimdLevel::Scalar) {
        prims(B, T);
    }
}

void Attention::forward(const float* qkv, std::int64_t B, std::int64_t T, float* probs, float* ctx,
                        std::int64_t queries) const {
    const op_profile::Scope timing(op_profile::Kind::Attention, [&] {
        return "attention " + std::to_string(H_) + " heads x " + std::to_string(d_) + ", " + std::to_string(T) +
               " tokens [" + std::to_string(B) + " images]";
    });
    if (T > whole_tokens_) {
        forward_blocked(qkv, B, T, probs, ctx);
        return;
    }
    if (const SimdLevel level = simd_level(); level != SimdLevel::Scalar) {
        attention_fused(qkv, B, T, H_, d_, scale_, probs, ctx, level, probs ? T : queries);
        return;
    }
    auto& rt = Runtime::get();
    const std::int64_t H = H_, d = d_, D = H * d;
    thread_local std::vector<float> heads;
    heads.resize(static_cast<std::size_t>(3 * B * T * D));
    float* q = heads.data();
    float* k = q + B * T * D;
    float* v = k + B * T * D;
    split_heads(qkv, B, T, H, d, q, k, v);
    thread_local std::vector<float> scratch;
    if (!probs) {
        scratch.resize(static_cast<std::size_t>(B * H * T * T));
        probs = scratch.data();
    }
    const Prims& p = prims(B, T);
    const memory::desc q_md({B, H, T, d}, dt::f32, tag::abcd);
    const memory::desc kt_md({B, H, d, T}, dt::f32, tag::abdc);
    const memory::desc s_md({B, H, T, T}, dt::f32, tag::abcd);
    const memory::desc ctx_md({B, H, T, d}, dt::f32, tag::acbd);
    const memory::desc rows_md({B * H * T, T}, dt::f32, tag::ab);
    memory qm(q_md, rt.engine, q), kt(kt_md, rt.engine, k), vm(q_md, rt.engine, v);
    memory s(s_md, rt.engine, probs), rows(rows_md, rt.engine, probs), out(ctx_md, rt.engine, ctx);
    p.qk.execute(rt.stream, {{DNNL_ARG_SRC, qm}, {DNNL_ARG_WEIGHTS, kt}, {DNNL_ARG_DST, s}});
    p.softmax.execute(rt.stream, {{DNNL_ARG_SRC, rows}, {DNNL_ARG_DST, rows}});
    p.pv.execute(rt.stream, {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, vm}, {DNNL_ARG_DST, out}});
    rt.stream.wait();
}

// Two steps in one parallel region: each head's K and V packed (one head per thread at a time), then work items of
// (image, head, block of R query rows) shared out among the threads, each running its items' primitives on its own
// (oneDNN runs a primitive called inside a parallel region on the calling thread only). One thread hand-off per
// call instead of three per block, and a block's scores stay in the core's L2 (R = 128: 0.7 MB at 1370 tokens)
// from the product with Kᵀ through the exponentials to the product with V.
void Attention::forward_blocked(const float* qkv, std::int64_t B, std::int64_t T, float* probs, float* ctx) const {
    auto& rt = Runtime::get();
    const Blocked& bl = blocked(T);
    const std::int64_t H = H_, d = d_, D = H * d, R = std::min(block_rows_, T);
    const std::int64_t blocks = (T + R - 1) / R, items = B * H * blocks;
    const auto round64 = [](std::size_t n) { return (n + 63) / 64 * 64; };
    const std::size_t k_bytes = round64(bl.k_md.get_size()), v_bytes = round64(bl.v_md.get_size());
    const std::size_t pad_bytes = std::max(bl.scratch_bytes, std::size_t{1});
    const memory::desc pad_md({static_cast<memory::dim>(pad_bytes)}, dt::u8, tag::a);
    const memory::desc kt_view({d, T}, dt::f32, memory::dims{1, 3 * D}), v_view({T, d}, dt::f32, {3 * D, 1});
    thread_local std::vector<unsigned char> packed_buf;  // per (image, head): packed K, then packed V
    auto* packed = static_cast<unsigned char*>(aligned_scratch(packed_buf, B * H * (k_bytes + v_bytes)));
    const SimdLevel simd = simd_level();
    std::exception_ptr error;
    std::atomic<bool> failed{false};
    auto fail = [&error, &failed] {
#pragma omp critical(vit_attention_error)
        if (!error) error = std::current_exception();
        failed = true;
    };
    // An exception must not leave a worksharing loop (the other threads wait for this one at its end): each is
    // caught where it happens, the remaining work skipped, and the first one rethrown after the region.
#pragma omp parallel
    {
        thread_local std::vector<float> q_buf, s_buf, out_buf, inv_sum;
        thread_local std::vector<unsigned char> pad_buf;
        thread_local dnnl::stream stream(rt.engine);  // a stream per thread: oneDNN's are not shared between threads
        void* pad_ptr = nullptr;
        try {
            q_buf.resize(static_cast<std::size_t>(R * d));
            if (!probs) s_buf.resize(static_cast<std::size_t>(R * T));
            out_buf.resize(static_cast<std::size_t>(R * d));
            inv_sum.resize(static_cast<std::size_t>(R));
            pad_ptr = aligned_scratch(pad_buf, pad_bytes);
        } catch (...) {
            fail();
        }
#pragma omp for
        for (std::int64_t bh = 0; bh < B * H; ++bh) {
            if (!pad_ptr) continue;
            try {
                const float* head = qkv + bh / H * T * 3 * D + bh % H * d;  // q of (b, h) at token 0
                unsigned char* kp = packed + bh * (k_bytes + v_bytes);
                memory k_src(kt_view, rt.engine, const_cast<float*>(head + D)), k_dst(bl.k_md, rt.engine, kp);
                memory v_src(v_view, rt.engine, const_cast<float*>(head + 2 * D)),
                    v_dst(bl.v_md, rt.engine, kp + k_bytes);
                memory pad(pad_md, rt.engine, pad_ptr);
                bl.pack_k.execute(stream, {{DNNL_ARG_FROM, k_src}, {DNNL_ARG_TO, k_dst}, {DNNL_ARG_SCRATCHPAD, pad}});
                bl.pack_v.execute(stream, {{DNNL_ARG_FROM, v_src}, {DNNL_ARG_TO, v_dst}, {DNNL_ARG_SCRATCHPAD, pad}});
                stream.wait();
            } catch (...) {
                fail();
            }
        }
#pragma omp for schedule(dynamic)
        for (std::int64_t item = 0; item < items; ++item) {
            if (!pad_ptr || failed) continue;
            try {
                const std::int64_t bh = item / blocks, b = bh / H, h = bh % H;
                const std::int64_t r0 = item % blocks * R, rows = std::min(R, T - r0);
                const bool full = rows == R;
                for (std::int64_t r = 0; r < rows; ++r)  // the block's queries, dense
                    std::memcpy(q_buf.data() + r * d, qkv + (b * T + r0 + r) * 3 * D + h * d,
                                static_cast<std::size_t>(d) * 4);
                float* s = probs ? probs + (bh * T + r0) * T : s_buf.data();
                unsigned char* kp = packed + bh * (k_bytes + v_bytes);
                memory qm({{rows, d}, dt::f32, tag::ab}, rt.engine, q_buf.data());
                memory km(bl.k_md, rt.engine, kp), vm(bl.v_md, rt.engine, kp + k_bytes);
                memory sm({{rows, T}, dt::f32, tag::ab}, rt.engine, s);
                memory out({{rows, d}, dt::f32, tag::ab}, rt.engine, out_buf.data());
                memory pad(pad_md, rt.engine, pad_ptr);
                (full ? bl.qk : bl.qk_tail)
                    .execute(
                        stream,
                        {{DNNL_ARG_SRC, qm}, {DNNL_ARG_WEIGHTS, km}, {DNNL_ARG_DST, sm}, {DNNL_ARG_SCRATCHPAD, pad}});
                stream.wait();
                exp_rows(s, rows, T, T, inv_sum.data(), simd);
                if (probs)  // the sink wants the probabilities themselves
                    for (std::int64_t r = 0; r < rows; ++r)
                        for (std::int64_t j = 0; j < T; ++j) s[r * T + j] *= inv_sum[static_cast<std::size_t>(r)];
                (full ? bl.pv : bl.pv_tail)
                    .execute(
                        stream,
                        {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, vm}, {DNNL_ARG_DST, out}, {DNNL_ARG_SCRATCHPAD, pad}});
                stream.wait();
                // ctx [B, T, H, d] = out / row sums (a strided destination would send the matmul back to gemm:jit)
                for (std::int64_t r = 0; r < rows; ++r) {
                    const float f = probs ? 1.f : inv_sum[static_cast<std::size_t>(r)];
                    const float* o = out_buf.data() + r * d;
                    float* c = ctx + (b * T + r0 + r) * D + h * d;
                    for (std::int64_t i = 0; i < d; ++i) c[i] = o[i] * f;
                }
            } catch (...) {
                fail();
            }
        }
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace vit
