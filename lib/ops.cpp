// oneDNN primitives behind the op wrappers declared in ops.hpp.
#include "ops.hpp"

#include "op_profile.hpp"
#include "quantize.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace vit {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

std::string to_string(Precision p) {
    switch (p) {
        case Precision::F32: return "fp32";
        case Precision::BF16: return "bf16";
        case Precision::INT8: return "int8";
    }
    return "?";
}

Precision parse_precision(const std::string& s) {
    if (s == "fp32" || s == "f32") return Precision::F32;
    if (s == "bf16") return Precision::BF16;
    if (s == "int8") return Precision::INT8;
    throw std::invalid_argument("precision \"" + s + "\" is not one of fp32, bf16, int8");
}

// oneDNN announces each JIT kernel to VTune by default, and the first announcement dlopen()s libJitPI.so: that
// waits for the dynamic loader's lock, which the background load of the image codecs holds for ~85 ms. Off unless
// the user asked for it with ONEDNN_JIT_PROFILE (or DNNL_JIT_PROFILE).
Runtime::Runtime() {
    if (!std::getenv("ONEDNN_JIT_PROFILE") && !std::getenv("DNNL_JIT_PROFILE")) dnnl::set_jit_profiling_flags(0);
    engine = dnnl::engine(dnnl::engine::kind::cpu, 0);
    stream = dnnl::stream(engine);
}

Runtime& Runtime::get() {
    static Runtime rt;
    return rt;
}

void set_num_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

int start_threads() {
    int started = 0;  // an empty parallel region would be optimised away
#pragma omp parallel reduction(+ : started)
    started += 1;
    return started;
}

std::string cpu_isa_name() {
    switch (dnnl::get_effective_cpu_isa()) {
        case dnnl::cpu_isa::sse41: return "SSE4.1";
        case dnnl::cpu_isa::avx: return "AVX";
        case dnnl::cpu_isa::avx2: return "AVX2";
        case dnnl::cpu_isa::avx2_vnni: return "AVX2 VNNI";
        case dnnl::cpu_isa::avx512_core: return "AVX-512";
        case dnnl::cpu_isa::avx512_core_vnni: return "AVX-512 VNNI";
        case dnnl::cpu_isa::avx512_core_bf16: return "AVX-512 BF16";
        case dnnl::cpu_isa::avx512_core_amx: return "AVX-512 AMX";
        default: return "generic x86-64";
    }
}

// Below AVX-512 VNNI oneDNN 2.6's s8 matmul kernels saturate their 16-bit pair sums (measured at AVX2 and AVX512_CORE;
// AVX2-VNNI is unverified here, so it is counted with them).
bool int8_weights_7bit() {
    switch (dnnl::get_effective_cpu_isa()) {
        case dnnl::cpu_isa::avx512_core_vnni:
        case dnnl::cpu_isa::avx512_core_bf16:
        case dnnl::cpu_isa::avx512_core_amx: return false;
        default: return true;
    }
}

// ---------------------------------------------------------------------------------------------------- Linear

namespace {

// The oneDNN eltwise algorithm (and alpha) of an activation epilogue; None for the others.
bool activation_of(Linear::Epilogue ep, dnnl::algorithm& alg, float& alpha) {
    alpha = 0.f;
    switch (ep) {
        case Linear::Epilogue::Gelu: alg = dnnl::algorithm::eltwise_gelu_erf; return true;
        case Linear::Epilogue::GeluTanh: alg = dnnl::algorithm::eltwise_gelu_tanh; return true;
        case Linear::Epilogue::QuickGelu: alg = dnnl::algorithm::eltwise_swish, alpha = 1.702f; return true;
        default: return false;
    }
}

// F32 linears run our AVX2 GEMM where oneDNN's ISA stops at AVX2 (its `gemm:jit` there packs the weights on
// every call and applies GELU in a second pass); AVX-512 CPUs keep oneDNN's brgemm, older ones its SSE code.
bool use_gemm_avx2() {
    static const bool use = [] {
        const auto isa = dnnl::get_effective_cpu_isa();
        return (isa == dnnl::cpu_isa::avx2 || isa == dnnl::cpu_isa::avx2_vnni) && gemm_avx2::supported();
    }();
    return use;
}

gemm_avx2::Epilogue gemm_epilogue(Linear::Epilogue ep) {
    switch (ep) {
        case Linear::Epilogue::Gelu: return gemm_avx2::Epilogue::Gelu;
        case Linear::Epilogue::GeluTanh: return gemm_avx2::Epilogue::GeluTanh;
        case Linear::Epilogue::QuickGelu: return gemm_avx2::Epilogue::QuickGelu;
        case Linear::Epilogue::Residual: return gemm_avx2::Epilogue::Residual;
        default: return gemm_avx2::Epilogue::None;
    }
}

int8::Act int8_activation(Linear::Epilogue ep) {
    switch (ep) {
        case Linear::Epilogue::Gelu: return int8::Act::Gelu;
        case Linear::Epilogue::GeluTanh: return int8::Act::GeluTanh;
        case Linear::Epilogue::QuickGelu: return int8::Act::QuickGelu;
        default: return int8::Act::None;
    }
}

// Scratch of the INT8 path, one set per calling thread (the OpenMP workers only get pointers into it).
struct Int8Scratch {
    std::vector<std::int8_t> xq;
    std::vector<float> xscale;
    std::vector<std::int32_t> acc;
};
Int8Scratch& int8_scratch() {
    thread_local Int8Scratch s;
    return s;
}

}  // namespace

Linear::Linear(const float* w_nk, const float* bias, int K, int N, Epilogue ep, Precision p)
    : K_(K), N_(N), ep_(ep), precision_(p), u8_src_(p == Precision::INT8 && int8_weights_7bit()) {
    auto& rt = Runtime::get();
    bias_ = memory({{1, N}, dt::f32, tag::ab}, rt.engine);
    auto* bp = static_cast<float*>(bias_.get_data_handle());
    for (int n = 0; n < N; ++n) bp[n] = bias ? bias[n] : 0.f;
    if (precision_ == Precision::F32 && use_gemm_avx2()) {
        gemm_ = gemm_avx2::PackedWeights(w_nk, K, N);
        return;
    }
    std::vector<std::int8_t> q;  // INT8: the quantised weights, [N, K]
    if (precision_ == Precision::INT8) {
        q = quantize_weights(w_nk);
        // our u8 x s8 GEMM where oneDNN's ISA is AVX2: its gemm:jit packs the weights on every call, which in a
        // pass (weights from memory) made ViT-B/16's int8 pass 95 ms against 89 with ours (alone, hot in cache,
        // the two are within 5%: bench_gemm)
        if (u8_src_ && use_gemm_avx2() && K % 4 == 0) {
            gemm_s8_ = gemm_avx2::PackedWeightsS8(q.data(), K, N);
            return;
        }
    }
    // The weights layout is chosen once with a representative M; every later primitive is built for it.
    // Without AVX-512, oneDNN 2.6 runs f32 matmul as `gemm:jit`, whose speed depends on the weights' layout:
    // K x N row-major ("ab", what format_tag::any resolves to) reaches 50-92 GFLOP/s on ViT-B's shapes, the
    // transposed "ba" (PyTorch's [N, K]) 178-208. The blocked layouts of the AVX-512 brgemm kernels stay "any".
    const bool avx512 = dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core;
    const memory::desc src_md({64, K}, src_type(), tag::ab);
    const memory::desc w_md({K, N}, weights_type(), avx512 || precision_ == Precision::BF16 ? tag::any : tag::ba);
    const memory::desc dst_md({64, N}, precision_ == Precision::INT8 ? dt::s32 : dt::f32, tag::ab);
    dnnl::matmul::primitive_desc pd;
    try {
        pd = precision_ == Precision::INT8
                 ? dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, w_md, dst_md), rt.engine)
                 : dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, w_md, bias_.get_desc(), dst_md), rt.engine);
    } catch (const dnnl::error&) {
        throw std::runtime_error("precision " + to_string(p) + " is not supported by oneDNN on this CPU (" +
                                 cpu_isa_name() + (p == Precision::BF16 ? "; bf16 needs AVX-512)" : ")"));
    }
    weights_ = memory(pd.weights_desc(), rt.engine);
    if (precision_ == Precision::INT8) {
        memory user_w({{K, N}, dt::s8, tag::ba}, rt.engine, q.data());
        dnnl::reorder(user_w, weights_).execute(rt.stream, user_w, weights_);
    } else {
        // PyTorch's W[N, K] is the matmul's weights [K, N] in "ba" order: reorder straight from the caller's buffer.
        memory user_w({{K, N}, dt::f32, tag::ba}, rt.engine, const_cast<float*>(w_nk));
        dnnl::reorder(user_w, weights_).execute(rt.stream, user_w, weights_);
    }
    rt.stream.wait();
}

std::vector<std::int8_t> Linear::quantize_weights(const float* w_nk) {
    const int K = K_, N = N_;
    // Symmetric per-output-channel weight quantisation: W[n, :] = wscale[n] * Wq[n, :], Wq in [-127, 127], or
    // [-63, 63] without VNNI: there oneDNN's s8 kernels add pairs of u8 x s8 products in saturating 16 bits (the
    // pattern of vpmaddubsw; the source as u8, shifted by 128): 2 x 255 x 127 overflows, 2 x 255 x 63 does not.
    // Seen with ONEDNN_MAX_CPU_ISA=AVX2 and AVX512_CORE: errors of 18% of the output range instead of 1%
    // (test_quantize; its full-scale case fails there with 8-bit weights). Our own AVX2 GEMM has the same limit.
    const int qmax = int8_weights_7bit() ? 63 : 127;
    wscale_.resize(N);
    std::vector<std::int8_t> q(static_cast<std::size_t>(N) * K);
    for (int n = 0; n < N; ++n) {
        float mx = 0;
        for (int k = 0; k < K; ++k) mx = std::max(mx, std::fabs(w_nk[static_cast<std::size_t>(n) * K + k]));
        const float sc = mx > 0 ? mx / static_cast<float>(qmax) : 1.f;
        wscale_[n] = sc;
        for (int k = 0; k < K; ++k)
            q[static_cast<std::size_t>(n) * K + k] = static_cast<std::int8_t>(
                std::lrint(w_nk[static_cast<std::size_t>(n) * K + k] / sc));
    }
    if (u8_src_) {
        acc_offset_.assign(static_cast<std::size_t>(N), 0);
        for (int n = 0; n < N; ++n)
            for (int k = 0; k < K; ++k) acc_offset_[n] -= 128 * q[static_cast<std::size_t>(n) * K + k];
    }
    return q;
}

std::size_t Linear::weight_bytes() const {
    if (!gemm_.empty()) return gemm_.bytes();
    if (!gemm_s8_.empty()) return gemm_s8_.bytes();
    return weights_ ? weights_.get_desc().get_size() : 0;
}

const Linear::Prim& Linear::prim(std::int64_t M) const {
    auto it = prims_.find(M);
    if (it != prims_.end()) return it->second;
    auto& rt = Runtime::get();
    const memory::desc src_md({M, K_}, src_type(), tag::ab);
    dnnl::matmul::primitive_desc pd;
    memory::desc dst_md;
    if (precision_ == Precision::INT8) {
        // s8 x s8 -> s32; scales, bias and the epilogue are applied per row and column afterwards (see forward).
        dst_md = memory::desc({M, N_}, dt::s32, tag::ab);
        pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, weights_.get_desc(), dst_md), rt.engine);
    } else {
        dst_md = memory::desc({M, N_}, dt::f32, tag::ab);
        dnnl::post_ops po;
        dnnl::algorithm alg;
        float alpha;
        if (activation_of(ep_, alg, alpha)) po.append_eltwise(1.f, alg, alpha, 0.f);
        if (ep_ == Epilogue::Residual) po.append_sum(1.f);
        dnnl::primitive_attr attr;
        attr.set_post_ops(po);
        pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, weights_.get_desc(), bias_.get_desc(), dst_md),
                                          attr, rt.engine);
    }
    Prim p{dnnl::matmul(pd), src_md, dst_md, {}};
    if (precision_ == Precision::BF16) {
        // built once here: a reorder primitive made per call cost a descriptor and a cache lookup every time
        const memory::desc f32_md({M, K_}, dt::f32, tag::ab);
        p.to_bf16 = dnnl::reorder(dnnl::reorder::primitive_desc(rt.engine, f32_md, rt.engine, src_md));
    }
    return prims_.emplace(M, std::move(p)).first->second;
}

std::string Linear::describe(std::int64_t M, const char* io) const {
    static const char* const kEpilogue[] = {"", " gelu", " gelu_tanh", " quick_gelu", " +residual"};
    return "linear " + std::to_string(K_) + "->" + std::to_string(N_) + kEpilogue[static_cast<int>(ep_)] + " " +
           to_string(precision_) + io + " [" + std::to_string(M) + " rows]";
}

void Linear::forward(const float* x, std::int64_t M, float* y) const {
    const op_profile::Scope timing(op_profile::Kind::Linear, [&] { return describe(M, ""); });
    const float* bias = static_cast<const float*>(bias_.get_data_handle());
    if (!gemm_.empty()) {
        gemm_avx2::gemm(x, M, gemm_, bias, gemm_epilogue(ep_), y);
        return;
    }
    if (precision_ == Precision::INT8) {
        const float* xscale = nullptr;
        const std::int32_t* acc = quantized_matmul(x, M, &xscale);
        int8::dequantize_rows(acc, M, N_, xscale, wscale_.data(), bias, int8_activation(ep_), ep_ == Epilogue::Residual,
                              y, simd_level(), offset());
        return;
    }
    auto& rt = Runtime::get();
    const Prim& p = prim(M);
    memory dst(p.dst_md, rt.engine, y);
    if (precision_ == Precision::BF16) {
        // Activations arrive as f32: convert once per call into a bf16 scratch buffer.
        thread_local std::vector<std::uint16_t> buf;
        buf.resize(static_cast<std::size_t>(M) * K_);
        memory xs({{M, K_}, dt::f32, tag::ab}, rt.engine, const_cast<float*>(x));
        memory xb(p.src_md, rt.engine, buf.data());
        p.to_bf16.execute(rt.stream, xs, xb);
        p.mm.execute(rt.stream,
                     {{DNNL_ARG_SRC, xb}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_BIAS, bias_}, {DNNL_ARG_DST, dst}});
    } else {
        memory src(p.src_md, rt.engine, const_cast<float*>(x));
        p.mm.execute(rt.stream,
                     {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_BIAS, bias_}, {DNNL_ARG_DST, dst}});
    }
    rt.stream.wait();
}

void Linear::check_int8(const char* what) const {
    if (precision_ != Precision::INT8)
        throw std::logic_error(std::string("Linear::forward with ") + what + " needs an int8 layer, this one is " +
                               to_string(precision_));
}

void Linear::int8_matmul(const std::int8_t* xq, std::int64_t M, std::int32_t* acc) const {
    if (!gemm_s8_.empty()) {
        gemm_avx2::gemm_u8s8(reinterpret_cast<const std::uint8_t*>(xq), M, gemm_s8_, acc);
        return;
    }
    auto& rt = Runtime::get();
    const Prim& p = prim(M);
    memory src(p.src_md, rt.engine, const_cast<std::int8_t*>(xq)), dst(p.dst_md, rt.engine, acc);
    p.mm.execute(rt.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst}});
    rt.stream.wait();
}

// Dynamic per-row (per-token) symmetric activation quantisation, x[m, :] = xscale[m] * xq[m, :], then the s8
// matmul: the s32 products and the row scales, in this thread's scratch (valid until its next int8 call).
const std::int32_t* Linear::quantized_matmul(const float* x, std::int64_t M, const float** xscale) const {
    Int8Scratch& s = int8_scratch();
    s.xq.resize(static_cast<std::size_t>(M) * K_);
    s.xscale.resize(static_cast<std::size_t>(M));
    s.acc.resize(static_cast<std::size_t>(M) * N_);
    int8::quantize_rows(x, M, K_, s.xq.data(), s.xscale.data(), simd_level(), u8_src_);
    int8_matmul(s.xq.data(), M, s.acc.data());
    *xscale = s.xscale.data();
    return s.acc.data();
}

void Linear::forward(const float* x, std::int64_t M, QuantizedRows& y) const {
    const op_profile::Scope timing(op_profile::Kind::Linear, [&] { return describe(M, ", int8 out"); });
    check_int8("quantized output");
    if (ep_ == Epilogue::Residual)
        throw std::logic_error("Linear::forward with quantized output cannot accumulate into its output (residual)");
    const float* xscale = nullptr;
    const std::int32_t* acc = quantized_matmul(x, M, &xscale);
    y.M = M;
    y.K = N_;
    y.q.resize(static_cast<std::size_t>(M) * N_);
    y.scale.resize(static_cast<std::size_t>(M));
    // the next layer's source: u8 where this one's is (u8_src_ is the same for every layer: the CPU's)
    int8::dequantize_requantize_rows(acc, M, N_, xscale, wscale_.data(),
                                     static_cast<const float*>(bias_.get_data_handle()), int8_activation(ep_),
                                     y.q.data(), y.scale.data(), simd_level(), offset(), u8_src_);
}

void Linear::forward(const QuantizedRows& x, float* y) const {
    const op_profile::Scope timing(op_profile::Kind::Linear, [&] { return describe(x.M, ", int8 in"); });
    check_int8("quantized input");
    if (x.K != K_)
        throw std::invalid_argument("Linear::forward: quantized input has " + std::to_string(x.K) +
                                    " features, the layer expects " + std::to_string(K_));
    Int8Scratch& s = int8_scratch();
    s.acc.resize(static_cast<std::size_t>(x.M) * N_);
    int8_matmul(x.q.data(), x.M, s.acc.data());
    int8::dequantize_rows(s.acc.data(), x.M, N_, x.scale.data(), wscale_.data(),
                          static_cast<const float*>(bias_.get_data_handle()), int8_activation(ep_),
                          ep_ == Epilogue::Residual, y, simd_level(), offset());
}

// ------------------------------------------------------------------------------------------------- LayerNorm

LayerNorm::LayerNorm(const float* weight, const float* bias, int D, float eps) : D_(D), eps_(eps) {
    auto& rt = Runtime::get();
    const memory::desc md({D}, dt::f32, tag::a);
    scale_ = memory(md, rt.engine);
    shift_ = memory(md, rt.engine);
    auto* s = static_cast<float*>(scale_.get_data_handle());
    auto* b = static_cast<float*>(shift_.get_data_handle());
    for (int i = 0; i < D; ++i) s[i] = weight[i], b[i] = bias[i];
}

const dnnl::layer_normalization_forward& LayerNorm::prim(std::int64_t M) const {
    auto it = prims_.find(M);
    if (it == prims_.end()) {
        using nf = dnnl::normalization_flags;
        const memory::desc md({M, D_}, dt::f32, tag::ab);
        dnnl::layer_normalization_forward::desc d(dnnl::prop_kind::forward_inference, md, eps_,
                                                  nf::use_scale | nf::use_shift);
        it = prims_.emplace(M, dnnl::layer_normalization_forward({d, Runtime::get().engine})).first;
    }
    return it->second;
}

void LayerNorm::forward(const float* x, std::int64_t M, float* y) const {
    const op_profile::Scope timing(op_profile::Kind::Norm, [&] {
        return "layer norm " + std::to_string(D_) + " [" + std::to_string(M) + " rows]";
    });
    auto& rt = Runtime::get();
    const memory::desc md({M, D_}, dt::f32, tag::ab);
    const auto& p = prim(M);
    memory src(md, rt.engine, const_cast<float*>(x)), dst(md, rt.engine, y);
    p.execute(rt.stream,
              {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCALE, scale_}, {DNNL_ARG_SHIFT, shift_}});
    rt.stream.wait();
}

// --------------------------------------------------------------------------------------- softmax, GELU helpers

void Activation1d::forward(float* x, std::int64_t n) const {
    auto& rt = Runtime::get();
    const memory::desc md({n}, dt::f32, tag::a);
    auto it = prims_.find(n);
    if (it == prims_.end()) {
        dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, alg_, md, alpha_, 0.f);
        it = prims_.emplace(n, dnnl::eltwise_forward({d, rt.engine})).first;
    }
    memory m(md, rt.engine, x);
    it->second.execute(rt.stream, {{DNNL_ARG_SRC, m}, {DNNL_ARG_DST, m}});
    rt.stream.wait();
}

void softmax_rows(float* x, std::int64_t rows, std::int64_t cols) {
    auto& rt = Runtime::get();
    const memory::desc md({rows, cols}, dt::f32, tag::ab);
    dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, md, 1);
    memory m(md, rt.engine, x);
    dnnl::softmax_forward({d, rt.engine}).execute(rt.stream, {{DNNL_ARG_SRC, m}, {DNNL_ARG_DST, m}});
    rt.stream.wait();
}

void gelu(float* x, std::int64_t n) { Activation1d().forward(x, n); }

void swiglu(const float* x, std::int64_t M, std::int64_t F, float* out) {
#pragma omp parallel for
    for (std::int64_t m = 0; m < M; ++m) {
        const float* a = x + m * 2 * F;
        const float* b = a + F;
        float* o = out + m * F;
        for (std::int64_t f = 0; f < F; ++f) o[f] = a[f] / (1.f + std::exp(-a[f])) * b[f];
    }
}

}  // namespace vit
