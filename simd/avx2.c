// simd/avx2.c - the AVX2 path (AVX2, FMA, F16C): 8-lane vectors, 16 registers.
//
// Order of operations (what makes results independent of sizes and threads),
// as on simd/avx512.c: F32 weights (and F16/BF16 rows of K % 8 != 0): every
// matmul output is one chain of fused multiply-adds over k = 0..K-1 from +0,
// then + bias.
// - GEMM (M > GEMV_MAX_M): 16 weight rows are converted and transposed into a
//   per-thread panel [k][16] in cache; a register tile of 6 rows x 16 columns
//   runs over k with A broadcast in place.
// - GEMV (M <= GEMV_MAX_M): 8 weight rows x 8 k are loaded, converted and
//   transposed in registers, then chained with broadcast A.
// Every other type keeps the "dot form" (simd/drivers.h; the section at the
// end): 8 chains, lane l over k = l, l+8, ..., summed by one fixed tree.
// The drivers shared with the other fast paths (GEMV loop, panels, matmul,
// attention) are in simd/drivers.h, included at the end.
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "attn.h"
#include "simd/kernels.h"

#define INLINE static inline __attribute__((always_inline))
// Loops over registers must be unrolled for the accumulators to stay in registers.
#define UNROLL _Pragma("GCC unroll 32")
#define GEMV_MAX_M 4
#define GEMV_ROWS 8 // weight rows per GEMV step
#define MR 6  // GEMM tile rows
#define NR 16 // GEMM tile columns (two vectors)
// Exact mode (simd/drivers.h): 4 doubles a vector, tiles of 6 rows x 8 columns.
typedef __m256d XD;
#define XL 4
#define XR 6
#define XV 2
INLINE XD xd_zero(void) { return _mm256_setzero_pd(); }
INLINE XD xd_set1(double a) { return _mm256_set1_pd(a); }
INLINE XD xd_fma(XD a, XD b, XD c) { return _mm256_fmadd_pd(a, b, c); }
INLINE XD xd_from(const float *p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
INLINE void xd_store(double *p, XD v) { _mm256_storeu_pd(p, v); }

// ---------------------------------------------------------------- weights

// 16 int8 weights (all whole numbers below 128) times d.
INLINE void q16_f32(__m128i q, __m256 d, __m256 w[2]) {
    w[0] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
    w[1] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))));
}

// The same, + m, where each d * q is exact (d of at most 18 significant bits,
// |q| < 64): one rounding then, as attn_dq_at's multiply and add give.
INLINE void q16_f32_add(__m128i q, __m256 d, __m256 m, __m256 w[2]) {
    w[0] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), m);
    w[1] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))), m);
}

// 16 int8 scales times d, as floats at out[0..16).
INLINE void scales16(__m128i sc, float d, float *out) {
    __m256 w[2];
    q16_f32(sc, _mm256_set1_ps(d), w);
    _mm256_storeu_ps(out, w[0]);
    _mm256_storeu_ps(out + 8, w[1]);
}

// Bit i of b -> 0x10 in byte i (bytes 0..15 the low half, 16..31 the high):
// each half's bytes pick b's bytes 0, 1 (low) or 2, 3 (high) out of a
// broadcast of b, then test their bit.
INLINE __m256i bits32(uint32_t b) {
    __m256i x = _mm256_shuffle_epi8(_mm256_set1_epi32((int)b),
                                    _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                     2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(x, bit), bit), _mm256_set1_epi8(0x10));
}

// Q4_K/Q5_K: d * sc of the block's 8 sub-blocks, then dmin * mn, into ks
// (attn_k_scale_min on four bytes at once; the f32 operations of attn_dq_at).
INLINE void k_scales(const uint8_t *blk, float ks[16]) {
    uint32_t v[4];
    attn_k_scales_mins(blk + 4, v);
    uint16_t h[2];
    memcpy(h, blk, 4);
    __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, (int)v[1], (int)v[0])));
    __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, (int)v[3], (int)v[2])));
    _mm256_storeu_ps(ks, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(h[0])), sc));
    _mm256_storeu_ps(ks + 8, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(h[1])), mn));
}

// Q2_K/Q3_K: d * sc of the block's 16 sub-blocks into ks (Q3_K: sc = s6 -
// 32), then Q2_K's -dmin * mn (the f32 operations of attn_dq_at, negated).
INLINE void q23_scales(const uint8_t *blk, int q3, float ks[32]) {
    uint16_t h[2] = { 0, 0 };
    memcpy(h, blk + (q3 ? 108 : 80), q3 ? 2 : 4); // (Q3_K: d, its block's last 2 bytes)
    __m128i sc;
    if (q3) {
        uint64_t v[2];
        attn_q3k_scales(blk + 96, v);
        sc = _mm_sub_epi8(_mm_set_epi64x((long long)v[1], (long long)v[0]), _mm_set1_epi8(32));
    } else {
        sc = _mm_loadu_si128((const __m128i *)blk);
        __m128i mn = _mm_and_si128(_mm_srli_epi16(sc, 4), _mm_set1_epi8(15));
        sc = _mm_and_si128(sc, _mm_set1_epi8(15));
        scales16(mn, -_cvtsh_ss(h[1]), ks + 16);
    }
    scales16(sc, _cvtsh_ss(h[0]), ks);
}

// Weights k..k+31 of a row of a quantized type (k % 32 == 0) into w[0..3],
// the block's (or sub-block's) scales and bytes taken once for the 32; the
// operations of attn_dq_block, so its bits. ks (NULL: none) keeps a row's
// K-quant scales from its block's first 32 weights to the rest, for
// callers that go through a row in order from a block's start.
INLINE void load32(const uint8_t *row, uint32_t wtype, int k, __m256 w[4], float ks[32]) {
    switch (wtype) {
    case ATTN_Q8_0: {
        const uint8_t *blk = row + (size_t)(k / 32) * 34;
        uint16_t d;
        memcpy(&d, blk, 2);
        __m256 vd = _mm256_cvtph_ps(_mm_set1_epi16((short)d)); // (d broadcast as f16, then widened)
        UNROLL // (8 bytes at a time widened as they are loaded)
        for (int i = 0; i < 4; i++)
            w[i] = _mm256_mul_ps(vd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 2 + 8 * i)))));
        return;
    }
    case ATTN_Q4_0: case ATTN_Q4_1: case ATTN_IQ4_NL: case ATTN_Q5_0: case ATTN_Q5_1: case ATTN_IQ4_XS: {
        // 16 bytes: low nibbles weights 0..15, high 16..31 (IQ4_XS: of sub-block s)
        int m = wtype == ATTN_Q4_1 || wtype == ATTN_Q5_1, q5 = wtype == ATTN_Q5_0 || wtype == ATTN_Q5_1;
        int xs = wtype == ATTN_IQ4_XS, s = (k % 256) / 32;
        const uint8_t *blk = row + (size_t)(k / (xs ? 256 : 32)) * (size_t)attn_qbytes(wtype);
        uint16_t h[2];
        uint32_t qh = 0;
        memcpy(h, blk, 4);
        if (q5) memcpy(&qh, blk + 2 + 2 * m, 4);
        __m128i qs = _mm_loadu_si128((const __m128i *)(xs ? blk + 8 + 16 * s : blk + 2 + 2 * m + 4 * q5));
        __m128i lo = _mm_and_si128(qs, _mm_set1_epi8(15)), hi = _mm_and_si128(_mm_srli_epi16(qs, 4), _mm_set1_epi8(15));
        if (q5) {
            __m256i hb = bits32(qh);
            lo = _mm_or_si128(lo, _mm256_castsi256_si128(hb)), hi = _mm_or_si128(hi, _mm256_extracti128_si256(hb, 1));
        }
        if (wtype == ATTN_Q4_0 || wtype == ATTN_Q5_0) {
            __m128i b = _mm_set1_epi8(wtype == ATTN_Q4_0 ? 8 : 16);
            lo = _mm_sub_epi8(lo, b), hi = _mm_sub_epi8(hi, b);
        }
        if (wtype == ATTN_IQ4_NL || xs) {
            __m128i kv = _mm_loadu_si128((const __m128i *)attn_iq4_kvalues);
            lo = _mm_shuffle_epi8(kv, lo), hi = _mm_shuffle_epi8(kv, hi);
        }
        float d = _cvtsh_ss(h[0]);
        if (xs) d *= (float)attn_iq4xs_scale(blk, s);
        __m256 vd = _mm256_set1_ps(d);
        if (m) { // (Q4_1, Q5_1: d * q exact)
            __m256 vm = _mm256_set1_ps(_cvtsh_ss(h[1]));
            q16_f32_add(lo, vd, vm, w);
            q16_f32_add(hi, vd, vm, w + 2);
            return;
        }
        q16_f32(lo, vd, w);
        q16_f32(hi, vd, w + 2);
        return;
    }
    case ATTN_Q4_K: case ATTN_Q5_K: { // d * sc * q - dmin * mn of sub-block s
        int q5 = wtype == ATTN_Q5_K;
        const uint8_t *blk = row + (size_t)(k / 256) * (q5 ? 176 : 144);
        int j = k % 256, s = j / 32;
        float own[16], *sm = ks ? ks : own;
        if (!ks || j == 0) k_scales(blk, sm);
        const uint8_t *qs = blk + (q5 ? 48 : 16) + (j / 64) * 32;
        __m256 vd = _mm256_set1_ps(sm[s]), vm = _mm256_set1_ps(-sm[8 + s]); // (d * q exact: fused with - m)
        if (!q5) { // 8 bytes at a time widened as they are loaded, then their nibble
            UNROLL
            for (int i = 0; i < 4; i++) {
                __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(qs + 8 * i)));
                q = s & 1 ? _mm256_srli_epi32(q, 4) : _mm256_and_si256(q, _mm256_set1_epi32(15));
                w[i] = _mm256_fmadd_ps(vd, _mm256_cvtepi32_ps(q), vm);
            }
            return;
        }
        __m256i q = _mm256_loadu_si256((const __m256i *)qs);
        q = _mm256_and_si256(s & 1 ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(15));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 16)); // | bit s of qh << 4
        qh = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(s)), _mm256_set1_epi8(1));
        q = _mm256_or_si256(q, _mm256_slli_epi16(qh, 4));
        q16_f32_add(_mm256_castsi256_si128(q), vd, vm, w);
        q16_f32_add(_mm256_extracti128_si256(q, 1), vd, vm, w + 2);
        return;
    }
    case ATTN_Q6_K: { // d * sc * ((ql nibble | 2 bits of qh << 4) - 32), j = 128 h + 32 c + l
        const uint8_t *blk = row + (size_t)(k / 256) * 210;
        int j = k % 256, h = j / 128, c = (j / 32) % 4;
        float own[16], *sd = ks ? ks : own;
        if (!ks || j == 0) { // d * sc of the 16 sub-blocks, once a block
            uint16_t d;
            memcpy(&d, blk + 208, 2);
            scales16(_mm_loadu_si128((const __m128i *)(blk + 192)), _cvtsh_ss(d), sd);
        }
        __m256i lo = _mm256_loadu_si256((const __m256i *)(blk + h * 64 + (c & 1) * 32));
        __m256i hi = _mm256_loadu_si256((const __m256i *)(blk + 128 + h * 32));
        lo = _mm256_and_si256(_mm256_srl_epi16(lo, _mm_cvtsi32_si128(4 * (c >> 1))), _mm256_set1_epi8(15));
        hi = _mm256_and_si256(_mm256_srl_epi16(hi, _mm_cvtsi32_si128(2 * c)), _mm256_set1_epi8(3));
        __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), _mm256_set1_epi8(32));
        q16_f32(_mm256_castsi256_si128(q), _mm256_set1_ps(sd[j / 16]), w);
        q16_f32(_mm256_extracti128_si256(q, 1), _mm256_set1_ps(sd[j / 16 + 1]), w + 2);
        return;
    }
    case ATTN_Q2_K: case ATTN_Q3_K: { // q2 = qs[32 h + l] >> 2 s (Q3_K: | hmask bit 4 h + s << 2, - 4), j = 128 h + 32 s + l
        int q3 = wtype == ATTN_Q3_K;
        const uint8_t *blk = row + (size_t)(k / 256) * (size_t)attn_qbytes(wtype);
        int j = k % 256, h = j / 128, s = (j / 32) % 4;
        __m256i q = _mm256_loadu_si256((const __m256i *)(blk + (q3 ? 32 : 16) + 32 * h));
        q = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * s)), _mm256_set1_epi8(3));
        if (q3) {
            __m256i hb = _mm256_srl_epi16(_mm256_loadu_si256((const __m256i *)blk), _mm_cvtsi32_si128(4 * h + s));
            q = _mm256_or_si256(q, _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(1)), 2));
            q = _mm256_sub_epi8(q, _mm256_set1_epi8(4));
        }
        float own[32], *sd = ks ? ks : own;
        if (!ks || j == 0) q23_scales(blk, q3, sd);
        const float *d = sd + j / 16, *m = sd + 16 + j / 16;
        if (q3) {
            q16_f32(_mm256_castsi256_si128(q), _mm256_set1_ps(d[0]), w);
            q16_f32(_mm256_extracti128_si256(q, 1), _mm256_set1_ps(d[1]), w + 2);
            return;
        }
        q16_f32_add(_mm256_castsi256_si128(q), _mm256_set1_ps(d[0]), _mm256_set1_ps(m[0]), w); // (d * q exact)
        q16_f32_add(_mm256_extracti128_si256(q, 1), _mm256_set1_ps(d[1]), _mm256_set1_ps(m[1]), w + 2);
        return;
    }
    default: // (not a quantized type: never asked)
        for (int i = 0; i < 4; i++) w[i] = _mm256_setzero_ps();
        return;
    }
}

// 8 consecutive weights k..k+7 of a row as f32 (k % 8 == 0 for the quantized
// types, which are a quarter of load32's 32).
INLINE __m256 load8(const uint8_t *row, uint32_t wtype, int k) {
    switch (wtype) {
    case ATTN_F32: return _mm256_loadu_ps((const float *)row + k);
    case ATTN_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * (size_t)k)));
    case ATTN_BF16:
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(row + 2 * (size_t)k))), 16));
    default: {
        __m256 w[4];
        load32(row, wtype, k & ~31, w, NULL);
        return w[(k >> 3) & 3];
    }
    }
}

// The first n (< 8) weights from k, zeros after (F32/F16/BF16: Q8_0 rows are whole blocks).
INLINE __m256 load8_part(const uint8_t *row, uint32_t wtype, int k, int n) {
    uint8_t buf[32] = { 0 };
    memcpy(buf, row + (wtype == ATTN_F32 ? 4 : 2) * (size_t)k, (size_t)n * (wtype == ATTN_F32 ? 4 : 2));
    return wtype == ATTN_F32 ? load8(buf, ATTN_F32, 0) : wtype == ATTN_BF16 ? load8(buf, ATTN_BF16, 0) : load8(buf, ATTN_F16, 0);
}

INLINE __m256 load8_any(const uint8_t *row, uint32_t wtype, int k, int n) {
    return n >= 8 ? load8(row, wtype, k) : load8_part(row, wtype, k, n);
}

static void avx2_dequant_row(const void *W, uint32_t wtype, float *out, int n) {
    int k = 0;
    float ks[32];
    if (attn_is_quant(wtype)) // (whole blocks of 32 or 256)
        for (; k + 32 <= n; k += 32) {
            __m256 w[4];
            load32(W, wtype, k, w, ks);
            for (int i = 0; i < 4; i++) _mm256_storeu_ps(out + k + 8 * i, w[i]);
        }
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(out + k, load8(W, wtype, k));
    if (k < n) {
        float tmp[8];
        _mm256_storeu_ps(tmp, load8_part(W, wtype, k, n - k));
        memcpy(out + k, tmp, sizeof(float) * (n - k));
    }
}

// In-register transpose: r[i] lane j  ->  r[j] lane i.
INLINE void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    UNROLL
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    UNROLL
    for (int i = 0; i < 2; i++) {
        u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
    // u[4g + c], 128-bit half h: rows 4g..4g+3 of column c + 4h
    UNROLL
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[c + 4] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

INLINE void load_rows(const uint8_t *W, size_t ldw, uint32_t wtype, int k0, __m256 col[8]) {
    UNROLL
    for (int r = 0; r < 8; r++) col[r] = load8(W + (size_t)r * ldw, wtype, k0);
}

// Columns k0..k0+kn-1 of nr (<= 8) weight rows as col[c] = the rows' weights
// at k0 + c (lanes beyond nr and columns beyond kn are 0).
INLINE void load_block(const uint8_t *W, size_t ldw, uint32_t wtype, int k0, int kn, int nr, __m256 col[8]) {
    if (nr == 8 && kn == 8) {
        switch (wtype) { // (the type a constant in each copy)
        case ATTN_F32: load_rows(W, ldw, ATTN_F32, k0, col); break;
        case ATTN_F16: load_rows(W, ldw, ATTN_F16, k0, col); break;
        case ATTN_BF16: load_rows(W, ldw, ATTN_BF16, k0, col); break;
        default: load_rows(W, ldw, wtype, k0, col); break;
        }
    } else {
        for (int r = 0; r < 8; r++)
            col[r] = r < nr ? load8_any(W + (size_t)r * ldw, wtype, k0, kn) : _mm256_setzero_ps();
    }
    transpose8(col);
}

// Store the first n (<= 8) lanes.
INLINE void store8(float *p, __m256 v, int n) {
    if (n >= 8) { _mm256_storeu_ps(p, v); return; }
    float tmp[8];
    _mm256_storeu_ps(tmp, v);
    memcpy(p, tmp, sizeof(float) * n);
}
INLINE __m256 loadf8(const float *p, int n) {
    if (n >= 8) return _mm256_loadu_ps(p);
    float tmp[8] = { 0 };
    memcpy(tmp, p, sizeof(float) * (n > 0 ? n : 0));
    return _mm256_loadu_ps(tmp);
}

// ---------------------------------------------------------------- GEMV

// While one group of 8 rows is read, the next group (pre, pre_n rows) is
// prefetched at the same place: each row is a separate stream, often a page
// of its own, which the hardware prefetcher would only find late.
INLINE void gemv_rows(const float *A, int lda, const uint8_t *W, size_t ldw, uint32_t wtype, const float *bias,
                      float *C, int ldc, int M, int K, int nr, const uint8_t *pre, int pre_n) {
    __m256 acc[GEMV_MAX_M];
    UNROLL
    for (int m = 0; m < GEMV_MAX_M; m++) acc[m] = _mm256_setzero_ps();
    __m256 col[8];
    size_t row_bytes = wtype == ATTN_F32 ? (size_t)K * 4 : attn_type_row_bytes(wtype, (uint64_t)K);
    for (int k0 = 0; k0 < K; k0 += 8) {
        int kn = K - k0 < 8 ? K - k0 : 8;
        size_t off = row_bytes * (size_t)k0 / (size_t)K;
        for (int r = 0; r < pre_n; r++) _mm_prefetch((const char *)pre + (size_t)r * ldw + off, _MM_HINT_T1);
        load_block(W, ldw, wtype, k0, kn, nr, col);
        if (kn == 8) {
            UNROLL
            for (int c = 0; c < 8; c++)
                UNROLL
                for (int m = 0; m < GEMV_MAX_M; m++)
                    if (m < M) acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(A[(size_t)m * lda + k0 + c]), col[c], acc[m]);
        } else {
            for (int c = 0; c < kn; c++)
                UNROLL
                for (int m = 0; m < GEMV_MAX_M; m++)
                    if (m < M) acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(A[(size_t)m * lda + k0 + c]), col[c], acc[m]);
        }
    }
    __m256 b = bias ? loadf8(bias, nr) : _mm256_setzero_ps();
    UNROLL
    for (int m = 0; m < M; m++) store8(C + (size_t)m * ldc, _mm256_add_ps(acc[m], b), nr);
}

// ---------------------------------------------------------------- GEMM

// The weights (n0 + c, k) for c < nc (<= 16), 0 for c >= nc: at P[k][c]
// where lane is 0 (pack_panel), else lane l = k % 8's (the dot form, K % 8
// == 0) at P[l * lane + k / 8 * NR + c]. 8 rows x 8 k transposed at a time;
// quantized rows decoded 32 weights at a time (load32) into rows[][] first.
INLINE void pack_rows(float *P, const uint8_t *W, size_t ldw, uint32_t wtype, int K, int nc, size_t lane) {
    static _Thread_local float rows[8][32] __attribute__((aligned(32)));
    float ks[8][32]; // (load32's scales of each row's block)
    const int quant = attn_is_quant(wtype); // (rows of whole blocks: K % 32 == 0)
    __m256 col[8];
    for (int h = 0; h < 2; h++) {
        int nr = nc - 8 * h;
        nr = nr < 0 ? 0 : nr > 8 ? 8 : nr;
        const uint8_t *w = W + (size_t)(8 * h) * ldw;
        for (int k0 = 0; k0 < K; k0 += 8) {
            int kn = K - k0 < 8 ? K - k0 : 8;
            if (quant && k0 % 32 == 0)
                for (int r = 0; r < nr; r++) {
                    __m256 q[4];
                    load32(w + (size_t)r * ldw, wtype, k0, q, ks[r]);
                    UNROLL
                    for (int i = 0; i < 4; i++) _mm256_store_ps(rows[r] + 8 * i, q[i]);
                }
            if (quant) {
                UNROLL
                for (int r = 0; r < 8; r++) col[r] = r < nr ? _mm256_load_ps(rows[r] + k0 % 32) : _mm256_setzero_ps();
                transpose8(col);
            } else if (nr) load_block(w, ldw, wtype, k0, kn, nr, col);
            else for (int c = 0; c < 8; c++) col[c] = _mm256_setzero_ps();
#define AT(c) (lane ? P + (size_t)(c) * lane + (size_t)k0 / 8 * NR + 8 * h : P + (size_t)(k0 + (c)) * NR + 8 * h)
            if (kn == 8) {
                UNROLL
                for (int c = 0; c < 8; c++) _mm256_store_ps(AT(c), col[c]);
            } else
                for (int c = 0; c < kn; c++) _mm256_store_ps(AT(c), col[c]);
#undef AT
        }
    }
}

static void pack_panel(float *P, const uint8_t *W, size_t ldw, uint32_t wtype, int K, int nc) {
    pack_rows(P, W, ldw, wtype, K, nc, 0);
}

INLINE void gemm_tile(int R, const float *A, int lda, const float *P, int K, const float *bias, float *C, int ldc,
                      int nc) {
    __m256 acc[MR][2];
    UNROLL
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m256 w0 = _mm256_load_ps(P + (size_t)k * NR), w1 = _mm256_load_ps(P + (size_t)k * NR + 8);
        UNROLL
        for (int r = 0; r < R; r++) {
            __m256 a = _mm256_broadcast_ss(A + (size_t)r * lda + k);
            acc[r][0] = _mm256_fmadd_ps(a, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, w1, acc[r][1]);
        }
    }
    __m256 b0 = bias ? loadf8(bias, nc) : _mm256_setzero_ps();
    __m256 b1 = bias ? loadf8(bias + 8, nc - 8) : _mm256_setzero_ps();
    UNROLL
    for (int r = 0; r < R; r++) {
        store8(C + (size_t)r * ldc, _mm256_add_ps(acc[r][0], b0), nc);
        if (nc > 8) store8(C + (size_t)r * ldc + 8, _mm256_add_ps(acc[r][1], b1), nc - 8);
    }
}

// ---------------------------------------------------------------- math

// Sum of the 8 lanes in a fixed tree.
INLINE float hsum(__m256 v) {
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}
INLINE float hmax(__m256 v) {
    __m128 b = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_max_ps(b, _mm_movehl_ps(b, b));
    b = _mm_max_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

// e^x within 2 ulp on [-87.3, 88.3]; 0 below.
INLINE __m256 vexp(__m256 x) {
    __m256 zero = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33f), _CMP_LT_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.33f));
    x = _mm256_min_ps(x, _mm256_set1_ps(88.37f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(zero, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// 1/d within about 1 ulp: the 12-bit estimate and one Newton step (finite
// d; the estimate is 0 past 2^126, where the results here are 0 anyway).
INLINE __m256 vrcp(__m256 d) {
    __m256 x = _mm256_rcp_ps(d);
    return _mm256_mul_ps(x, _mm256_fnmadd_ps(d, x, _mm256_set1_ps(2.0f)));
}

// x[i] = x[i] * scale, then softmax over n, in place.
static void softmax_scaled(float *x, int n, float scale) {
    __m256 vs = _mm256_set1_ps(scale), vmax = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        _mm256_storeu_ps(x + i, v);
        vmax = _mm256_max_ps(vmax, v);
    }
    float mx = hmax(vmax);
    for (int j = i; j < n; j++) { x[j] *= scale; mx = x[j] > mx ? x[j] : mx; }
    __m256 vm = _mm256_set1_ps(mx), sum = _mm256_setzero_ps();
    for (i = 0; i < n; i += 8) {
        int left = n - i;
        __m256 e = vexp(_mm256_sub_ps(loadf8(x + i, left), vm));
        if (left < 8) e = _mm256_and_ps(e, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))));
        store8(x + i, e, left);
        sum = _mm256_add_ps(sum, e);
    }
    __m256 inv = _mm256_set1_ps(1.0f / hsum(sum));
    for (i = 0; i < n; i += 8) store8(x + i, _mm256_mul_ps(loadf8(x + i, n - i), inv), n - i);
}

// ---------------------------------------------------------------- attention

// out rows (R of them) = probs rows @ V, chained over keys j < nj, 16
// columns of V at a time. Keys past a row's own last one have probability
// exactly 0 and leave its sums unchanged.
#define PV_R 6
INLINE void pv_tile(int R, const float *p, int ps, const float *v, int vs, int nj, int hd, float *out, int os) {
    for (int d0 = 0; d0 < hd; d0 += 16) {
        int nd = hd - d0 < 16 ? hd - d0 : 16;
        __m256 acc[PV_R][2];
        UNROLL
        for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (int j = 0; j < nj; j++) {
            const float *vj = v + (size_t)j * vs + d0;
            __m256 v0 = loadf8(vj, nd), v1 = nd > 8 ? loadf8(vj + 8, nd - 8) : _mm256_setzero_ps();
            UNROLL
            for (int r = 0; r < R; r++) {
                __m256 pr = _mm256_broadcast_ss(p + (size_t)r * ps + j);
                acc[r][0] = _mm256_fmadd_ps(pr, v0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(pr, v1, acc[r][1]);
            }
        }
        UNROLL
        for (int r = 0; r < R; r++) {
            store8(out + (size_t)r * os + d0, acc[r][0], nd);
            if (nd > 8) store8(out + (size_t)r * os + d0 + 8, acc[r][1], nd - 8);
        }
    }
}

// ---------------------------------------------------------------- row ops

static void avx2_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    __m256 r = _mm256_set1_ps(1.0f / sqrtf((float)(attn_sumsq(x, n) / n) + eps));
    for (int i = 0; i < n; i += 8)
        store8(out + i, _mm256_mul_ps(_mm256_mul_ps(loadf8(x + i, n - i), r), loadf8(w + i, n - i)), n - i);
}

static void avx2_layernorm(float *out, const float *x, const float *w, const float *b, int n, float eps) {
    __m256 s = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) s = _mm256_add_ps(s, loadf8(x + i, n - i));
    float mean = hsum(s) / (float)n;
    __m256 vm = _mm256_set1_ps(mean), var = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        __m256 d = _mm256_sub_ps(loadf8(x + i, n - i), vm);
        if (n - i < 8) d = _mm256_and_ps(d, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - i), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))));
        var = _mm256_fmadd_ps(d, d, var);
    }
    __m256 r = _mm256_set1_ps(1.0f / sqrtf(hsum(var) / (float)n + eps));
    for (int i = 0; i < n; i += 8) {
        __m256 y = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(loadf8(x + i, n - i), vm), r), loadf8(w + i, n - i));
        if (b) y = _mm256_add_ps(y, loadf8(b + i, n - i));
        store8(out + i, y, n - i);
    }
}

static void avx2_gelu_tanh(float *x, int n) {
    for (int i = 0; i < n; i += 8) {
        __m256 v = loadf8(x + i, n - i);
        __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f),
                                 _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), v), _mm256_mul_ps(v, v), v));
        __m256 e = vexp(_mm256_mul_ps(_mm256_set1_ps(-2.0f), u));
        store8(x + i, _mm256_mul_ps(v, vrcp(_mm256_add_ps(_mm256_set1_ps(1.0f), e))), n - i);
    }
}

// 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2), erfc as in kernels.h.
static void avx2_gelu_erf(float *x, int n) {
    static const float P[] = ATTN_ERFC_P;
    for (int i = 0; i < n; i += 8) {
        __m256 v = loadf8(x + i, n - i);
        __m256 z = _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v), _mm256_set1_ps(0.7071067811865476f));
        __m256 t = vrcp(_mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
        __m256 p = _mm256_set1_ps(P[0]);
        for (int j = 1; j <= ATTN_ERFC_DEG; j++) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(P[j]));
        // z^2 = zh^2 (exact: zh has 6 fraction bits) + (z - zh)(z + zh)
        __m256 zh = _mm256_mul_ps(_mm256_round_ps(_mm256_mul_ps(z, _mm256_set1_ps(64.0f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                                  _mm256_set1_ps(1.0f / 64));
        __m256 d = _mm256_mul_ps(_mm256_sub_ps(z, zh), _mm256_add_ps(z, zh));
        __m256 e = _mm256_mul_ps(_mm256_mul_ps(t, vexp(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(zh, zh)))),
                                 vexp(_mm256_sub_ps(p, d)));
        __m256 pos = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ);
        e = _mm256_blendv_ps(e, _mm256_sub_ps(_mm256_set1_ps(2.0f), e), pos); // 1 + erf(x / sqrt 2)
        store8(x + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), e), n - i);
    }
}

static void avx2_swiglu(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i += 8) {
        __m256 g = loadf8(gate + i, n - i);
        __m256 e = vexp(_mm256_sub_ps(_mm256_setzero_ps(), g));
        __m256 s = _mm256_mul_ps(g, vrcp(_mm256_add_ps(_mm256_set1_ps(1.0f), e)));
        store8(gate + i, _mm256_mul_ps(s, loadf8(up + i, n - i)), n - i);
    }
}

static void avx2_add(float *y, const float *x, int n) {
    for (int i = 0; i < n; i += 8) store8(y + i, _mm256_add_ps(loadf8(y + i, n - i), loadf8(x + i, n - i)), n - i);
}

// ---------------------------------------------------------------- dot form
//
// Every type but F32 (F16 and BF16 where K % 8 == 0: dot_order) keeps the
// dot form of simd/drivers.h on this path: 8 chains, lane l over k = l, l+8,
// ..., then hsum's tree (a_i = s_i + s_i+4, b_i = a_i + a_i+2, b_0 + b_1),
// then + bias. A row's consecutive weights decode straight into vectors
// (load8, load32), so the GEMV chains dot_dr rows at once with no transpose; in the
// one chain per output a GEMV step was one vector chain over 8 rows, at the
// latency of its fused multiply-adds.
#define DOT_LANES 8
#define DOT_TYPES(X) X(ATTN_F16) X(ATTN_BF16) X(ATTN_Q8_0) ATTN_QTYPES(X)

#include "simd/drivers.h"

static int dot_order(uint32_t t, int K) { return t != ATTN_F32 && K % 8 == 0; }

// Weight rows per GEMV step (independent chains for each row of A): 6 for
// M = 1 (bench_gemv -t 1 -mb 4 per CPU second against 4 rows: F16 28.9-29.4
// -> 35.4-36.5 GB/s, Q8_0 17.7-17.8 -> 18.1-18.2, the others within 5%; 8
// rows: F16 31.6-32.2); fewer where more rows of A would spill the 16 registers.
#define DR_MAX 6
INLINE int dot_dr(uint32_t t, int M) {
    (void)t;
    return M == 1 ? 6 : M == 2 ? 4 : 2;
}

INLINE void dot_rows(const float *A, int lda, const uint8_t *W, size_t ldw, uint32_t t, const float *bias, float *C,
                     int ldc, int M, int K, int nr, const uint8_t *pre, int pre_n) {
    const int dr = dot_dr(t, M); // (a constant where t and M are)
    __m256 acc[GEMV_MAX_M][DR_MAX];
    float ks[DR_MAX][32]; // (load32's scales of each row's block)
    const uint8_t *row[DR_MAX];
    UNROLL
    for (int r = 0; r < dr; r++) {
        row[r] = W + (size_t)(r < nr ? r : nr - 1) * ldw; // rows past nr: computed, not stored
        UNROLL
        for (int m = 0; m < GEMV_MAX_M; m++) acc[m][r] = _mm256_setzero_ps();
    }
    size_t row_bytes = attn_type_row_bytes(t, (uint64_t)K), next = 0; // the next rows' bytes before next are prefetched
    const int step = t == ATTN_F16 || t == ATTN_BF16 ? 8 : 32; // (weights decoded at once: load8, load32)
    for (int k = 0; k < K; k += step) {
        for (size_t off = row_bytes * (size_t)k / (size_t)K; next <= off; next += 64)
            for (int i = 0; i < pre_n; i++) _mm_prefetch((const char *)pre + (size_t)i * ldw + next, _MM_HINT_T1);
        if (step == 8) {
            __m256 w[DR_MAX];
            UNROLL
            for (int r = 0; r < dr; r++) w[r] = load8(row[r], t, k);
            UNROLL
            for (int m = 0; m < GEMV_MAX_M; m++)
                if (m < M) {
                    __m256 a = _mm256_loadu_ps(A + (size_t)m * lda + k);
                    UNROLL
                    for (int r = 0; r < dr; r++) acc[m][r] = _mm256_fmadd_ps(a, w[r], acc[m][r]);
                }
            continue;
        }
        UNROLL
        for (int r = 0; r < dr; r++) {
            __m256 w[4];
            load32(row[r], t, k, w, ks[r]);
            UNROLL
            for (int m = 0; m < GEMV_MAX_M; m++)
                UNROLL
                for (int i = 0; i < 4; i++)
                    if (m < M) acc[m][r] = _mm256_fmadd_ps(_mm256_loadu_ps(A + (size_t)m * lda + k + 8 * i), w[i], acc[m][r]);
        }
    }
    UNROLL // (constant indices: the accumulators stay in registers)
    for (int m = 0; m < GEMV_MAX_M; m++)
        UNROLL
        for (int r = 0; r < dr; r++)
            if (m < M && r < nr) C[(size_t)m * ldc + r] = hsum(acc[m][r]) + (bias ? bias[r] : 0.0f);
}

INLINE void dot_pack(float *P, const uint8_t *W, size_t ldw, uint32_t t, int K, int nc) {
    pack_rows(P, W, ldw, t, K, nc, dot_lane(K));
}

// A[m][k] for m < M at Ap[m * K + l * K / 8 + j], k = l + 8 j: 8 j at a time
// by a transpose in registers.
static void dot_reorder(const float *A, int lda, float *Ap, int M, int K) {
    int Kb = K / 8;
    for (int m = 0; m < M; m++) {
        const float *a = A + (size_t)m * lda;
        float *o = Ap + (size_t)m * K;
        int j = 0;
        for (; j + 8 <= Kb; j += 8) {
            __m256 r[8];
            UNROLL
            for (int t = 0; t < 8; t++) r[t] = _mm256_loadu_ps(a + 8 * (j + t));
            transpose8(r);
            UNROLL
            for (int l = 0; l < 8; l++) _mm256_storeu_ps(o + (size_t)l * Kb + j, r[l]);
        }
        for (; j < Kb; j++)
            for (int l = 0; l < 8; l++) o[(size_t)l * Kb + j] = a[8 * j + l];
    }
}

// The 8 lanes' tiles added in hsum's tree, + bias.
static void dot_combine(int R, const float *part, const float *bias, float *C, int ldc, int nc) {
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NR / 8; v++) {
            int left = nc - 8 * v;
            if (left <= 0) break;
            __m256 s[8];
            UNROLL
            for (int l = 0; l < 8; l++) s[l] = _mm256_load_ps(part + (size_t)l * MR * NR + r * NR + 8 * v);
            UNROLL
            for (int i = 0; i < 4; i++) s[i] = _mm256_add_ps(s[i], s[i + 4]);
            s[0] = _mm256_add_ps(s[0], s[2]), s[1] = _mm256_add_ps(s[1], s[3]);
            __m256 b = bias ? loadf8(bias + 8 * v, left) : _mm256_setzero_ps();
            store8(C + (size_t)r * ldc + 8 * v, _mm256_add_ps(_mm256_add_ps(s[0], s[1]), b), left);
        }
}

// ---------------------------------------------------------------- normals

// a * b mod 2^64 in 4 lanes (no 64-bit multiply in AVX2).
INLINE __m256i mul64(__m256i a, __m256i b) {
    __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), b), _mm256_mul_epu32(a, _mm256_srli_epi64(b, 32)));
    return _mm256_add_epi64(_mm256_mul_epu32(a, b), _mm256_slli_epi64(cross, 32));
}

// splitmix64's numbers k (4 lanes) of the stream (attn_kernels.normals).
INLINE __m256i splitmix4(__m256i seed, __m256i k) {
    __m256i z = _mm256_add_epi64(seed, mul64(_mm256_add_epi64(k, _mm256_set1_epi64x(1)),
                                             _mm256_set1_epi64x((long long)ATTN_SPLITMIX_GAMMA)));
    z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), _mm256_set1_epi64x((long long)0xbf58476d1ce4e5b9ull));
    z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), _mm256_set1_epi64x((long long)0x94d049bb133111ebull));
    return _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
}

// v < 2^52 as a double: its bits under 2^52's exponent, less 2^52 (exact).
INLINE __m256d u52_pd(__m256i v) {
    return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(v, _mm256_castpd_si256(_mm256_set1_pd(0x1p52)))),
                         _mm256_set1_pd(0x1p52));
}

// v < 2^53 as a double: high and low 32 bits apart (each exact, and the sum).
INLINE __m256d u53_pd(__m256i v) {
    __m256d hi = u52_pd(_mm256_srli_epi64(v, 32)), lo = u52_pd(_mm256_and_si256(v, _mm256_set1_epi64x(0xffffffffll)));
    return _mm256_add_pd(_mm256_mul_pd(hi, _mm256_set1_pd(0x1p32)), lo);
}

INLINE __m256d series4(const double *c, int n, __m256d z) {
    __m256d p = _mm256_set1_pd(c[0]);
    for (int i = 1; i < n; i++) p = _mm256_add_pd(_mm256_mul_pd(p, z), _mm256_set1_pd(c[i]));
    return _mm256_add_pd(_mm256_mul_pd(p, z), _mm256_set1_pd(1));
}

// Lanes where (v & bit) != 0, as all-ones 64-bit masks.
INLINE __m256d has_bit(__m256i v, long long bit) {
    __m256i b = _mm256_set1_epi64x(bit);
    return _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(v, b), b));
}

// Pairs p..p+3: std * (r cos), std * (r sin) interleaved as floats, with
// scalar.c's normal_pair's operations.
static void normal_pairs4(uint64_t seed_, uint64_t p, double std, float *w) {
    __m256i seed = _mm256_set1_epi64x((long long)seed_);
    __m256i j = _mm256_slli_epi64(_mm256_add_epi64(_mm256_set1_epi64x((long long)p), _mm256_set_epi64x(3, 2, 1, 0)), 1);
    __m256i x = _mm256_srli_epi64(splitmix4(seed, j), 11), y = _mm256_srli_epi64(splitmix4(seed, _mm256_add_epi64(j, _mm256_set1_epi64x(1))), 11);
    __m256d u1 = _mm256_mul_pd(u53_pd(_mm256_add_epi64(x, _mm256_set1_epi64x(1))), _mm256_set1_pd(0x1p-53));
    __m256d u2 = _mm256_mul_pd(u53_pd(y), _mm256_set1_pd(0x1p-53));
    __m256i b = _mm256_castpd_si256(u1);
    __m256d e = _mm256_sub_pd(u52_pd(_mm256_srli_epi64(b, 52)), _mm256_set1_pd(1023));
    __m256d m = _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(b, _mm256_set1_epi64x(0x000fffffffffffffll)),
                                                    _mm256_set1_epi64x(0x3ff0000000000000ll)));
    __m256d big = _mm256_cmp_pd(m, _mm256_set1_pd(ATTN_SQRT2), _CMP_GT_OQ);
    m = _mm256_blendv_pd(m, _mm256_mul_pd(m, _mm256_set1_pd(0.5)), big);
    e = _mm256_blendv_pd(e, _mm256_add_pd(e, _mm256_set1_pd(1)), big);
    __m256d one = _mm256_set1_pd(1), s = _mm256_div_pd(_mm256_sub_pd(m, one), _mm256_add_pd(m, one));
    __m256d p6 = series4(attn_ln_series, 6, _mm256_mul_pd(s, s));
    __m256d ln = _mm256_add_pd(_mm256_mul_pd(e, _mm256_set1_pd(ATTN_LN2)), _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(2), s), p6));
    __m256d r = _mm256_sqrt_pd(_mm256_mul_pd(_mm256_set1_pd(-2), ln));
    __m256d t = _mm256_mul_pd(_mm256_set1_pd(4), u2);
    __m128i k32 = _mm256_cvttpd_epi32(_mm256_add_pd(t, _mm256_set1_pd(0.5)));
    __m256i k = _mm256_cvtepi32_epi64(k32);
    __m256d a = _mm256_mul_pd(_mm256_sub_pd(t, _mm256_cvtepi32_pd(k32)), _mm256_set1_pd(ATTN_PI_2)), aa = _mm256_mul_pd(a, a);
    __m256d sn = _mm256_mul_pd(series4(attn_sin_series, 5, aa), a), cs = series4(attn_cos_series, 6, aa);
    __m256d odd = has_bit(k, 1), neg_c = has_bit(_mm256_add_epi64(k, _mm256_set1_epi64x(1)), 2), neg_s = has_bit(k, 2);
    __m256d sign = _mm256_set1_pd(-0.0);
    __m256d c = _mm256_xor_pd(_mm256_blendv_pd(cs, sn, odd), _mm256_and_pd(neg_c, sign));
    __m256d si = _mm256_xor_pd(_mm256_blendv_pd(sn, cs, odd), _mm256_and_pd(neg_s, sign));
    __m256d sd = _mm256_set1_pd(std);
    __m128 fc = _mm256_cvtpd_ps(_mm256_mul_pd(sd, _mm256_mul_pd(r, c)));
    __m128 fs = _mm256_cvtpd_ps(_mm256_mul_pd(sd, _mm256_mul_pd(r, si)));
    _mm_storeu_ps(w, _mm_unpacklo_ps(fc, fs));
    _mm_storeu_ps(w + 4, _mm_unpackhi_ps(fc, fs));
}

static void avx2_normals(uint64_t seed, uint64_t first, size_t n, double std, float *w) {
    attn_normals_runs(seed, first, n, std, w, 8, normal_pairs4);
}

const attn_kernels attn_kernels_avx2 = {
    .name = "avx2",
    .matmul = simd_matmul_dot,
    .matmul_exact = simd_matmul_exact,
    .attention = simd_attention,
    .attention_exact = simd_attention_exact,
    .rmsnorm = avx2_rmsnorm,
    .layernorm = avx2_layernorm,
    .gelu_tanh = avx2_gelu_tanh,
    .gelu_erf = avx2_gelu_erf,
    .swiglu = avx2_swiglu,
    .add = avx2_add,
    .softmax = simd_softmax,
    .rope = attn_scalar_rope,
    .dequant_row = avx2_dequant_row,
    .normals = avx2_normals,
};
