// Multi-head attention on oneDNN matmuls (see Attention in ops.hpp): all heads at once for short sequences, and
// per-core blocks of query rows for long ones.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

#include "exp_rows.hpp"
#include "ops.hpp"

namespace vit {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

Attention::Attention(int num_heads, int head_dim, float scale, std::int64_t block_rows, std::int64_t whole_tokens)
    : H_(num_heads), d_(head_dim), scale_(scale), block_rows_(block_rows > 0 ? block_rows : kAttentionBlockRows),
      whole_tokens_(whole_tokens >= 0 ? whole_tokens : kAttentionWholeTokens) {}

namespace {

// qkv [B, T, 3, H, d] -> q, k, v [B, H, T, d] each, contiguous: oneDNN's brgemm matmul (AVX-512) takes only dense
// operands, and on the strided views of qkv it falls back to `gemm:jit`, which is ~2x slower on these shapes and
// generates its kernels on the first call (~30 ms of a one-image `vit classify`).
void split_heads(const float* qkv, std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t d, float* q, float* k,
                 float* v) {
    const std::int64_t D = H * d;
    float* dst[3] = {q, k, v};
#pragma omp parallel for collapse(2)
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t h = 0; h < H; ++h)
            for (std::int64_t t = 0; t < T; ++t) {
                const float* src = qkv + (b * T + t) * 3 * D + h * d;
                for (int j = 0; j < 3; ++j)
                    std::memcpy(dst[j] + ((b * H + h) * T + t) * d, src + j * D, static_cast<std::size_t>(d) * 4);
            }
}

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
    Prims p{dnnl::matmul(qk_pd), dnnl::matmul(pv_pd), dnnl::softmax_forward({sm, rt.engine}), 0};
    return prims_.emplace(key, std::move(p)).first->second;
}

// The blocked path's primitives run on one thread each, two or more at a time: oneDNN's default scratchpad is one
// buffer shared by all primitives (not safe to use concurrently), so each thread passes its own.
const Attention::Prims& Attention::block_prims(std::int64_t T, std::int64_t R) const {
    auto key = std::make_pair(T, R);
    auto it = block_prims_.find(key);
    if (it != block_prims_.end()) return it->second;
    auto& rt = Runtime::get();
    const std::int64_t d = d_;
    const memory::desc q_md({R, d}, dt::f32, tag::ab);   // R query rows of one head
    const memory::desc kt_md({d, T}, dt::f32, tag::ba);  // that head's keys [T, d], read transposed
    const memory::desc v_md({T, d}, dt::f32, tag::ab);
    const memory::desc s_md({R, T}, dt::f32, tag::ab);
    const memory::desc out_md({R, d}, dt::f32, tag::ab);
    dnnl::primitive_attr attr, qk_attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    qk_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    qk_attr.set_output_scales(0, {scale_});
    dnnl::matmul::primitive_desc qk_pd(dnnl::matmul::desc(q_md, kt_md, s_md), qk_attr, rt.engine);
    dnnl::matmul::primitive_desc pv_pd(dnnl::matmul::desc(s_md, v_md, out_md), attr, rt.engine);
    const std::size_t pad = std::max(qk_pd.scratchpad_desc().get_size(), pv_pd.scratchpad_desc().get_size());
    Prims p{dnnl::matmul(qk_pd), dnnl::matmul(pv_pd), dnnl::softmax_forward(), pad};
    return block_prims_.emplace(key, std::move(p)).first->second;
}

void Attention::prepare(std::int64_t B, std::int64_t T) const {
    if (T > whole_tokens_) {
        for (std::int64_t r0 = 0; r0 < T; r0 += block_rows_) block_prims(T, std::min(block_rows_, T - r0));
    } else {
        prims(B, T);
    }
}

void Attention::forward(const float* qkv, std::int64_t B, std::int64_t T, float* probs, float* ctx) const {
    auto& rt = Runtime::get();
    const std::int64_t H = H_, d = d_, D = H * d;
    thread_local std::vector<float> heads;
    heads.resize(static_cast<std::size_t>(3 * B * T * D));
    float* q = heads.data();
    float* k = q + B * T * D;
    float* v = k + B * T * D;
    split_heads(qkv, B, T, H, d, q, k, v);
    if (T > whole_tokens_) {
        forward_blocked(q, k, v, B, T, probs, ctx);
        return;
    }
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

// Work items of (image, head, block of R query rows) shared out among the OpenMP threads; each runs its items'
// three primitives on its own (oneDNN runs a primitive called inside a parallel region on the calling thread
// only). One parallel region per call instead of three thread hand-offs per block, and a block's scores stay in
// the core's L2 between the three steps (R = 128: 0.7 MB at 1370 tokens).
void Attention::forward_blocked(const float* q, const float* k, const float* v, std::int64_t B, std::int64_t T,
                                float* probs, float* ctx) const {
    auto& rt = Runtime::get();
    const std::int64_t H = H_, d = d_, D = H * d, R = block_rows_;
    const std::int64_t blocks = (T + R - 1) / R, items = B * H * blocks;
    // built here: the primitive caches are not safe to fill from several threads
    const Prims& full = block_prims(T, R);
    const Prims& tail = block_prims(T, T - (blocks - 1) * R);
    const std::size_t pad_bytes = std::max({full.scratch_bytes, tail.scratch_bytes, std::size_t{1}});
    const SimdLevel simd = simd_level();
    const memory::desc pad_md({static_cast<memory::dim>(pad_bytes)}, dt::u8, tag::a);
    std::exception_ptr error;
    auto fail = [&error] {
#pragma omp critical(vit_attention_error)
        if (!error) error = std::current_exception();
    };
#pragma omp parallel
    {
        thread_local std::vector<float> s_buf, out_buf, inv_sum;
        thread_local std::vector<unsigned char> pad_buf;
        thread_local dnnl::stream stream(rt.engine);  // a stream per thread: oneDNN's are not shared between threads
        void* pad_ptr = nullptr;
        try {
            if (!probs) s_buf.resize(static_cast<std::size_t>(R * T));
            out_buf.resize(static_cast<std::size_t>(R * d));
            inv_sum.resize(static_cast<std::size_t>(R));
            pad_ptr = aligned_scratch(pad_buf, pad_bytes);
        } catch (...) {
            fail();
        }
        // an exception must not leave the loop: the other threads wait for this one at its end
#pragma omp for schedule(dynamic)
        for (std::int64_t item = 0; item < items; ++item) {
            if (!pad_ptr) continue;
            try {
                const std::int64_t bh = item / blocks, r0 = (item % blocks) * R, rows = std::min(R, T - r0);
                const Prims& p = rows == R ? full : tail;
                float* s = probs ? probs + (bh * T + r0) * T : s_buf.data();
                memory qm({{rows, d}, dt::f32, tag::ab}, rt.engine, const_cast<float*>(q + (bh * T + r0) * d));
                memory kt({{d, T}, dt::f32, tag::ba}, rt.engine, const_cast<float*>(k + bh * T * d));
                memory vm({{T, d}, dt::f32, tag::ab}, rt.engine, const_cast<float*>(v + bh * T * d));
                memory sm({{rows, T}, dt::f32, tag::ab}, rt.engine, s);
                memory out({{rows, d}, dt::f32, tag::ab}, rt.engine, out_buf.data());
                memory pad(pad_md, rt.engine, pad_ptr);
                p.qk.execute(
                    stream,
                    {{DNNL_ARG_SRC, qm}, {DNNL_ARG_WEIGHTS, kt}, {DNNL_ARG_DST, sm}, {DNNL_ARG_SCRATCHPAD, pad}});
                exp_rows(s, rows, T, T, inv_sum.data(), simd);
                if (probs)  // the sink wants the probabilities themselves
                    for (std::int64_t r = 0; r < rows; ++r)
                        for (std::int64_t j = 0; j < T; ++j) s[r * T + j] *= inv_sum[static_cast<std::size_t>(r)];
                p.pv.execute(
                    stream,
                    {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, vm}, {DNNL_ARG_DST, out}, {DNNL_ARG_SCRATCHPAD, pad}});
                stream.wait();
                // ctx [B, T, H, d] = out / row sums (a strided destination would send the matmul back to gemm:jit)
                const std::int64_t b = bh / H, h = bh % H;
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
