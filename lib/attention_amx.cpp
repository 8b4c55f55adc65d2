// The AMX attention of attention_amx.hpp: the packing of K and V into tiles, the exponentials, and the work items of
// two blocks of 16 query rows (the tile products are in attention_amx_tiles.cpp).
#include "attention_amx.hpp"

#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <dnnl.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "attention_amx_tiles.hpp"
#include "exp_simd.hpp"

// GCC 12 reports the _mm512_undefined_*() operand inside its own AVX-512 intrinsics as uninitialised (GCC bug
// 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace vit {

using namespace amx_tiles;

namespace {

std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }

// One head's geometry: keys rounded up to 32 (Tk: the depth of P·V and the columns of a block's scores), the head
// dim rounded up to 32 (dk: the depth of Q·Kᵀ) and to 16 (dn: the columns of P·V). The padding is zero.
struct Shape {
    std::int64_t T, d, Tk, dk, dn;
    std::int64_t k_elems() const { return Tk * dk; }
    std::int64_t v_elems() const { return Tk * dn; }
};

Shape shape_of(std::int64_t T, std::int64_t d) {
    return {T, d, round_up(T, kDepth), round_up(d, kDepth), round_up(d, kRows)};
}

// Kᵀ as B tiles: tile (key block jb of 16, depth chunk kc of 32), at jb * dk/32 + kc, holds at [k2][j][e] the value
// K[16 jb + j][32 kc + 2 k2 + e]: with pairs of bf16 as one 32-bit word, the transpose of a 16 x 16 block of words.
// `k`: the head's keys, row stride ld.
void pack_k_scalar(const std::uint16_t* k, std::int64_t ld, const Shape& s, std::uint16_t* out) {
    const std::int64_t nkc = s.dk / kDepth;
    std::memset(out, 0, static_cast<std::size_t>(s.k_elems()) * 2);
    for (std::int64_t t = 0; t < s.T; ++t)
        for (std::int64_t c = 0; c < s.d; ++c)
            out[t / kRows * nkc * kTileElems + c / kDepth * kTileElems + c % kDepth / 2 * kDepth + t % kRows * 2 +
                c % 2] = k[t * ld + c];
}

// The same for an even head dim: 16 x 16 words per tile through registers (rows past T and words past d/2 load as
// zeros, so every tile is written whole).
__attribute__((target("avx512f,avx512bw,avx512vl"))) void pack_k(const std::uint16_t* k, std::int64_t ld,
                                                                 const Shape& s, std::uint16_t* out) {
    if (s.d % 2) return pack_k_scalar(k, ld, s, out);
    const std::int64_t nkc = s.dk / kDepth, words = s.d / 2;
    for (std::int64_t jb = 0; jb < s.Tk / kRows; ++jb) {
        const std::int64_t keys = std::clamp<std::int64_t>(s.T - jb * kRows, 0, kRows);
        for (std::int64_t kc = 0; kc < nkc; ++kc) {
            const std::int64_t w = std::min<std::int64_t>(kRows, words - kc * kRows);  // words of this chunk
            const __mmask16 m = static_cast<__mmask16>((1u << w) - 1u);
            __m512i r[16], t[16];
            for (int j = 0; j < 16; ++j)
                r[j] = j < keys ? _mm512_maskz_loadu_epi32(m, k + (jb * kRows + j) * ld + kc * kDepth)
                                : _mm512_setzero_si512();
            for (int j = 0; j < 16; j += 2) {
                t[j] = _mm512_unpacklo_epi32(r[j], r[j + 1]);
                t[j + 1] = _mm512_unpackhi_epi32(r[j], r[j + 1]);
            }
            for (int j = 0; j < 16; j += 4) {
                r[j] = _mm512_unpacklo_epi64(t[j], t[j + 2]);
                r[j + 1] = _mm512_unpackhi_epi64(t[j], t[j + 2]);
                r[j + 2] = _mm512_unpacklo_epi64(t[j + 1], t[j + 3]);
                r[j + 3] = _mm512_unpackhi_epi64(t[j + 1], t[j + 3]);
            }
            for (int h = 0; h < 16; h += 8)
                for (int j = 0; j < 4; ++j) {
                    t[h + j] = _mm512_shuffle_i32x4(r[h + j], r[h + j + 4], 0x88);
                    t[h + j + 4] = _mm512_shuffle_i32x4(r[h + j], r[h + j + 4], 0xdd);
                }
            std::uint16_t* o = out + (jb * nkc + kc) * kTileElems;
            for (int j = 0; j < 8; ++j) {
                _mm512_store_si512(o + j * kDepth, _mm512_shuffle_i32x4(t[j], t[j + 8], 0x88));
                _mm512_store_si512(o + (j + 8) * kDepth, _mm512_shuffle_i32x4(t[j], t[j + 8], 0xdd));
            }
        }
    }
}

// V as B tiles: tile (column block nb of 16, key chunk kc of 32), at nb * Tk/32 + kc, holds at [k2][n][e] the value
// V[32 kc + 2 k2 + e][16 nb + n]: a tile row interleaves two rows of V.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void pack_v(const std::uint16_t* v, std::int64_t ld,
                                                                 const Shape& s, std::uint16_t* out) {
    const std::int64_t nkv = s.Tk / kDepth, last = s.T / kDepth;
    // zeros where no pair of keys is written: each column block's key chunks from the one T falls in (the columns
    // past d come out zero from the masked loads below)
    for (std::int64_t nb = 0; nb < s.dn / kRows; ++nb)
        std::memset(out + (nb * nkv + last) * kTileElems, 0, static_cast<std::size_t>((nkv - last) * kTileElems) * 2);
    for (std::int64_t t = 0; t < s.T; t += 2) {
        const std::uint16_t* even = v + t * ld;
        const std::uint16_t* odd = t + 1 < s.T ? even + ld : nullptr;
        std::uint16_t* o = out + t / kDepth * kTileElems + t % kDepth / 2 * kDepth;
        for (std::int64_t c = 0; c < s.d; c += kRows) {
            const __mmask16 m = s.d - c >= kRows ? static_cast<__mmask16>(0xffff)
                                                 : static_cast<__mmask16>((1u << (s.d - c)) - 1u);
            const __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, even + c));
            const __m512i hi = odd ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, odd + c))
                                   : _mm512_setzero_si512();
            _mm512_storeu_si512(o + c / kRows * nkv * kTileElems, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}

// R consecutive rows of scores s [R, Tk] (T valid columns) -> p [R, Tk] = exp(scale * (s - max s)) per row in
// bf16 with zeros past T, and the same in f32 back into s when `keep` (the probabilities are wanted); inv[r] = 1 /
// the sum of row r's f32 exponentials. Four rows at a time hide the latency of each row's reductions.
template <int R>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))) void exp_rows_bf16(
    float* s, std::int64_t T, std::int64_t Tk, float scale, std::uint16_t* p, bool keep, float* inv) {
    const std::int64_t vec = T / 16 * 16;
    const __mmask16 tail = static_cast<__mmask16>((1u << (T - vec)) - 1u);
    __m512 m[R], mc[R], sum[R];
    for (int r = 0; r < R; ++r) m[r] = _mm512_set1_ps(s[r * Tk]);
    for (std::int64_t j = 0; j < vec; j += 16)
        for (int r = 0; r < R; ++r) m[r] = _mm512_max_ps(m[r], _mm512_loadu_ps(s + r * Tk + j));
    // exp(scale (x - max)) = 2^(x c - max c) with c = scale log2(e): one FMA per vector before exp2 (4% faster than
    // (x - max) c; the rounding of max c adds |max c| 6e-8 to the relative error, far below the bf16 rounding of p)
    const __m512 c = _mm512_set1_ps(scale * simd::kLog2e);
    for (int r = 0; r < R; ++r) {
        m[r] = _mm512_mask_max_ps(m[r], tail, m[r], _mm512_maskz_loadu_ps(tail, s + r * Tk + vec));
        mc[r] = _mm512_mul_ps(_mm512_set1_ps(_mm512_reduce_max_ps(m[r])), c);
        sum[r] = _mm512_setzero_ps();
    }
    for (std::int64_t j = 0; j < vec; j += 16)
        for (int r = 0; r < R; ++r) {
            const __m512 e = simd::exp2_avx512(_mm512_fmsub_ps(_mm512_loadu_ps(s + r * Tk + j), c, mc[r]));
            if (keep) _mm512_storeu_ps(s + r * Tk + j, e);
            sum[r] = _mm512_add_ps(sum[r], e);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + r * Tk + j),
                                reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(e)));
        }
    for (std::int64_t j = vec; j < Tk; j += 16)  // the tail's valid lanes, then zeros up to Tk
        for (int r = 0; r < R; ++r) {
            __m512 e = _mm512_setzero_ps();
            if (j == vec && tail) {
                e = _mm512_maskz_mov_ps(
                    tail, simd::exp2_avx512(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(tail, s + r * Tk + j), c, mc[r])));
                if (keep) _mm512_mask_storeu_ps(s + r * Tk + j, tail, e);
                sum[r] = _mm512_add_ps(sum[r], e);
            }
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + r * Tk + j),
                                reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(e)));
        }
    for (int r = 0; r < R; ++r) inv[r] = 1.f / _mm512_reduce_add_ps(sum[r]);
}

// ctx row [d] bf16 = o [d] * f.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))) void scaled_row_bf16(const float* o,
                                                                                              std::int64_t d, float f,
                                                                                              std::uint16_t* out) {
    const __m512 fv = _mm512_set1_ps(f);
    for (std::int64_t c = 0; c < d; c += 16) {
        const __mmask16 m = d - c >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (d - c)) - 1u);
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, o + c), fv);
        _mm256_mask_storeu_epi16(out + c, m, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
    }
}

void* align64(void* p) { return reinterpret_cast<void*>((reinterpret_cast<std::uintptr_t>(p) + 63) / 64 * 64); }

}  // namespace

bool amx_attention_available() {
    static const bool ok = [] {
        if (dnnl::get_effective_cpu_isa() != dnnl::cpu_isa::avx512_core_amx) return false;
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24))) return false;
        if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5))) return false;  // AVX512_BF16
        // Linux hands out the 8 KB tile data state only on request (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
        return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    }();
    return ok;
}

void attention_amx(const std::uint16_t* qkv, std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t d,
                   float scale, float* probs, std::uint16_t* ctx, std::int64_t queries) {
    if (!amx_attention_available()) throw std::logic_error("attention_amx called on a CPU without usable AMX-BF16");
    if (d < 1 || d > kAmxMaxHeadDim || !(scale > 0))
        throw std::invalid_argument("attention_amx: head dim " + std::to_string(d) + " (1.." +
                                    std::to_string(kAmxMaxHeadDim) + " expected) or scale " + std::to_string(scale) +
                                    " (> 0 expected)");
    if (B < 1 || T < 1 || H < 1) return;
    if (queries < 0) queries = T;
    if (queries < 1 || queries > T || (probs && queries < T))
        throw std::invalid_argument("attention_amx: " + std::to_string(queries) + " query tokens of " +
                                    std::to_string(T) + (probs ? " with probabilities (all T expected)" : ""));
    const Shape s = shape_of(T, d);
    const std::int64_t D = H * d, heads = B * H, blocks = (queries + kRows - 1) / kRows, nkc = s.dk / kDepth;
    // An item is two blocks of 16 queries where the queries of both fit the tiles (each K and V tile then serves 32
    // queries: a head's packed K and V, 56 KB at ViT-B's 197 x 64, stream from L2), else one; a head's last item
    // may have one block.
    const std::int64_t per = nkc <= 2 ? 2 : 1, items_per_head = (blocks + per - 1) / per, rows_max = per * kRows;
    const std::int64_t items = heads * items_per_head;
    // a thread's buffers: its current head's packed K and V (multiples of 512 bf16: the tiles stay 1 KB aligned),
    // queries [rows_max, dk] bf16, scores [rows_max, Tk] f32, exponentials [rows_max, Tk] bf16, context
    // [rows_max, dn] f32
    const std::int64_t kv_bytes = (s.k_elems() + s.v_elems()) * 2, q_bytes = rows_max * s.dk * 2;
    const std::int64_t s_bytes = rows_max * s.Tk * 4, p_bytes = rows_max * s.Tk * 2;
    const std::int64_t thread_bytes = round_up(kv_bytes + q_bytes + s_bytes + p_bytes + rows_max * s.dn * 4, 64);
    const int threads = omp_get_max_threads();
    thread_local std::vector<unsigned char> buf;
    buf.resize(static_cast<std::size_t>(threads * thread_bytes + 64));
    auto* scratch = static_cast<unsigned char*>(align64(buf.data()));
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        unsigned char* mine = scratch + t * thread_bytes;
        auto* kp = reinterpret_cast<std::uint16_t*>(mine);
        auto* q = reinterpret_cast<std::uint16_t*>(mine + kv_bytes);
        auto* S = reinterpret_cast<float*>(mine + kv_bytes + q_bytes);
        auto* P = reinterpret_cast<std::uint16_t*>(mine + kv_bytes + q_bytes + s_bytes);
        auto* O = reinterpret_cast<float*>(mine + kv_bytes + q_bytes + s_bytes + p_bytes);
        tiles_configure();
        // Each thread a consecutive range of items, packing K and V of each head it meets into its own buffer: they
        // stay in its L2 while its items use them (all heads packed up front were 21 MB for ViT-B at batch 32, read
        // back from memory); a head split between two threads is packed by both.
        std::int64_t packed = -1;
        for (std::int64_t item = items * t / nt; item < items * (t + 1) / nt; ++item) {
            const std::int64_t bh = item / items_per_head, b = bh / H, h = bh % H;
            const std::int64_t r0 = item % items_per_head * rows_max, rows = std::min(rows_max, queries - r0);
            const std::int64_t nb = (rows + kRows - 1) / kRows;
            if (bh != packed) {
                const std::uint16_t* head = qkv + b * T * 3 * D + h * d;  // q of (b, h) at token 0
                pack_k(head + D, 3 * D, s, kp);
                pack_v(head + 2 * D, 3 * D, s, kp + s.k_elems());
                packed = bh;
            }
            const std::uint16_t* qb[2] = {};
            std::int64_t ld[2] = {};
            for (std::int64_t i = 0; i < nb; ++i) {
                const std::uint16_t* src = qkv + (b * T + r0 + i * kRows) * 3 * D + h * d;
                const std::int64_t n = std::min(kRows, rows - i * kRows);
                if (n == kRows && s.dk == d) {  // the tile loads read the queries where they are in qkv
                    qb[i] = src;
                    ld[i] = 3 * D;
                } else {  // a copy padded with zeros
                    std::uint16_t* dst = q + i * kRows * s.dk;
                    std::memset(dst, 0, static_cast<std::size_t>(kRows * s.dk) * 2);
                    for (std::int64_t r = 0; r < n; ++r)
                        std::memcpy(dst + r * s.dk, src + r * 3 * D, static_cast<std::size_t>(d) * 2);
                    qb[i] = dst;
                    ld[i] = s.dk;
                }
            }
            if (nb == 2) scores_pair(nkc, qb[0], ld[0], qb[1], ld[1], kp, s.Tk, S);
            else scores(nkc, qb[0], ld[0], kp, s.Tk, S);
            float inv[2 * kRows];
            std::int64_t er = 0;
            for (; er + 4 <= rows; er += 4)
                exp_rows_bf16<4>(S + er * s.Tk, T, s.Tk, scale, P + er * s.Tk, probs != nullptr, inv + er);
            for (; er < rows; ++er)
                exp_rows_bf16<1>(S + er * s.Tk, T, s.Tk, scale, P + er * s.Tk, probs != nullptr, inv + er);
            if (rows <
                nb * kRows)  // the rows past T: zeros, not stale values, into the product (their results are dropped)
                std::memset(P + rows * s.Tk, 0, static_cast<std::size_t>((nb * kRows - rows) * s.Tk) * 2);
            if (nb == 2) context_pair(P, s.Tk, kp + s.k_elems(), s.dn, O);
            else context(P, s.Tk, kp + s.k_elems(), s.dn, O);
            for (std::int64_t r = 0; r < rows; ++r) {
                scaled_row_bf16(O + r * s.dn, d, inv[r], ctx + (b * T + r0 + r) * D + h * d);
                if (probs) {
                    float* pr = probs + (bh * T + r0 + r) * T;
                    const float* e = S + r * s.Tk;
                    for (std::int64_t j = 0; j < T; ++j) pr[j] = e[j] * inv[r];
                }
            }
        }
        tiles_release();
    }
}

}  // namespace vit
