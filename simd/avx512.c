// simd/avx512.c - the AVX-512 path (F, BW, VL, DQ; F16C conversions).
//
// Order of operations (what makes results independent of sizes and threads):
// F32 weights (and F16/BF16 rows of K % 32 != 0): every matmul output is one chain of fused
// multiply-adds over k = 0..K-1 starting from +0, then + bias. The two
// matmul kernels both keep to it:
// - GEMM (M > GEMV_MAX_M): a panel of 48 weight rows is converted to f32 and
//   transposed into a small per-thread buffer ([k][48], in cache), and a
//   register tile of up to 8 rows of A x 48 columns runs over k, A read in
//   place (broadcasts).
// - GEMV (M <= GEMV_MAX_M, the decode case): 16 weight rows x 16 k are loaded,
//   converted and transposed in registers, then chained with broadcast A.
// Every quantized type, and F16 and BF16 rows of K % 32 == 0 (DOT_TYPES,
// dot_order), keep the "dot form" instead: 16 chains, lane l over k = l, l+16, ..., summed by one
// fixed tree (see the section at the end); GEMV (M <= DOT_GEMV_M(t)) and GEMM alike.
// Attention uses the same two kernels for the scores (keys as f32 weights),
// a 16-lane softmax with a fixed reduction tree, and a chain over keys for
// probs @ V, so a row's result does not depend on how many rows come with it.
// The drivers shared with the other fast paths (GEMV loop, panels, matmul,
// attention) are in simd/drivers.h, included before the dot-form section.
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
#define GEMV_ROWS 48 // weight rows per GEMV step
#define MR 8  // GEMM tile rows
// Types in the dot form (decoders of 16 consecutive weights below): every quantized type.
#define DOT_TYPES(X) X(ATTN_Q8_0) X(ATTN_Q4_0) X(ATTN_Q4_1) X(ATTN_Q5_0) X(ATTN_Q5_1) X(ATTN_IQ4_NL) \
    X(ATTN_IQ4_XS) X(ATTN_Q2_K) X(ATTN_Q3_K) X(ATTN_Q4_K) X(ATTN_Q5_K) X(ATTN_Q6_K) X(ATTN_F16) X(ATTN_BF16) // F16, BF16: rows of K % 32 == 0 (dot_order)
#define DOT_LANES 16 // the dot form's chains per output (simd/drivers.h)
// The dot form's GEMV (in groups of GEMV_MAX_M rows of A) up to 16 rows,
// the GEMM's packed panels beyond: a short prompt's prefill decoded each
// weight once into a panel, then ran tiles of its few rows, and was slower
// (TinyLlama shape, `attn bench -T 6/13/16 -n 1`, old and new interleaved,
// prefill ms: Q8_0 117-130 -> 48-49, 145-147 -> 97-98, 164-169 -> 113;
// Q4_K_M 77-78 -> 54, 108-110 -> 103-105, 128 -> 122-123; F16 88-89 -> 59 at
// T = 6, the same at 13 and 16). AVX2 gained nothing this way (kept at 4).
// F16, BF16 and Q8_0, whose decoding is cheap, up to 32 rows: prefill of 17,
// 24 and 32 tokens F16 175 -> 136, 205 -> 173, 257 -> 228 ms; Q8_0 213 ->
// 133, 218 -> 175, 265 -> 228 (12-04 17:50, with the weight rows through
// every group at a time: simd/drivers.h's DOT_CHUNK); Q4_K_M's was slower
// that way (158 -> 159, 194 -> 214, 247 -> 280), and 64 rows no faster.
// Q4_0 and IQ4_NL (a lookup per 16 weights) too: 176-184 -> 130, 251-257 ->
// 172-213, 246-248 -> 230-232 and 186-201 -> 132-135, 235-256 -> 197-213,
// 245-274 -> 226-241; not Q4_1 (175-179 -> 158-172, 199-201 -> 202-229,
// 240-244 -> 269-270) nor Q5_0 (227-245 -> 197-215, 236-265 -> 245-260,
// 310-315 -> 332-353).
INLINE int dot_gemv_m(uint32_t t) {
    return t == ATTN_F16 || t == ATTN_BF16 || t == ATTN_Q8_0 || t == ATTN_Q4_0 || t == ATTN_IQ4_NL ? 32 : 16;
}
#define DOT_GEMV_M(t) dot_gemv_m(t)
#define NR 48 // GEMM tile columns (three vectors)
// Exact mode (simd/drivers.h): 8 doubles a vector, tiles of 8 rows x 24 columns.
typedef __m512d XD;
#define XL 8
#define XR 8
#define XV 3
INLINE XD xd_zero(void) { return _mm512_setzero_pd(); }
INLINE XD xd_set1(double a) { return _mm512_set1_pd(a); }
INLINE XD xd_fma(XD a, XD b, XD c) { return _mm512_fmadd_pd(a, b, c); }
INLINE XD xd_from(const float *p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
INLINE void xd_store(double *p, XD v) { _mm512_storeu_pd(p, v); }

// ---------------------------------------------------------------- weights

// Weights k..k+15 of a row of a quantized type (k % 16 == 0): the bytes of
// the run (simd/quant.h) worked on 16 at a time, then converted and scaled;
// the same operations, so the same bits, as attn_dq_block.
INLINE __m512 dq16_run(attn_dq_run r) {
    __m128i v = _mm_srl_epi16(_mm_loadu_si128((const __m128i *)r.lo), _mm_cvtsi32_si128(r.lo_sh));
    v = _mm_and_si128(v, _mm_set1_epi8((char)r.lo_mask));
    if (r.hi) {
        __m128i h = _mm_srl_epi16(_mm_loadu_si128((const __m128i *)r.hi), _mm_cvtsi32_si128(r.hi_sh));
        h = _mm_and_si128(h, _mm_set1_epi8((char)r.hi_mask));
        v = _mm_or_si128(v, _mm_sll_epi16(h, _mm_cvtsi32_si128(r.hi_pos)));
    }
    v = _mm_or_si128(v, _mm_maskz_set1_epi8((__mmask16)r.hbits, 0x10));
    v = _mm_sub_epi8(v, _mm_set1_epi8((char)r.bias));
    if (r.lut) v = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)attn_iq4_kvalues), v);
    __m512 w = _mm512_mul_ps(_mm512_set1_ps(r.d), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)));
    if (r.mode == ATTN_DQ_ADD) w = _mm512_add_ps(w, _mm512_set1_ps(r.m));
    else if (r.mode == ATTN_DQ_SUB) w = _mm512_sub_ps(w, _mm512_set1_ps(r.m));
    return w;
}

// One copy per type of the run's decoding (the type a constant in each), out
// of line: inlined into every unrolled row it made the code too large.
static __attribute__((noinline)) __m512 dq16(const uint8_t *row, uint32_t t, int k) {
    switch (t) {
#define DQ_CASE(T) \
    case T: return dq16_run(attn_dq_at(row + (size_t)(k / attn_qblk(T)) * (size_t)attn_qbytes(T), T, k % attn_qblk(T)));
        ATTN_QTYPES(DQ_CASE)
#undef DQ_CASE
    default: return _mm512_setzero_ps();
    }
}

// 16 consecutive weights k..k+15 of a row as f32 (k % 16 == 0 for Q8_0).
INLINE __m512 load16(const uint8_t *row, uint32_t wtype, int k) {
    switch (wtype) {
    case ATTN_F16: return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 2 * (size_t)k)));
    case ATTN_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(row + 2 * (size_t)k))), 16));
    case ATTN_Q8_0: {
        const uint8_t *blk = row + (size_t)(k / 32) * 34;
        uint16_t d;
        memcpy(&d, blk, 2);
        __m512 q = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2 + k % 32))));
        return _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(d)), q);
    }
    case ATTN_F32: return _mm512_loadu_ps((const float *)row + k);
    default: return dq16(row, wtype, k); // the other quantized types
    }
}

// The first n (< 16) weights from k, zeros after (F32/F16/BF16 only: Q8_0
// rows are whole blocks).
INLINE __m512 load16_part(const uint8_t *row, uint32_t wtype, int k, int n) {
    __mmask16 m = (__mmask16)((1u << n) - 1);
    switch (wtype) {
    case ATTN_F16:
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * (size_t)k));
    case ATTN_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + 2 * (size_t)k)), 16));
    default: return _mm512_maskz_loadu_ps(m, (const float *)row + k);
    }
}

INLINE __m512 load16_any(const uint8_t *row, uint32_t wtype, int k, int n) {
    return n >= 16 ? load16(row, wtype, k) : load16_part(row, wtype, k, n);
}

static void avx512_dequant_row(const void *W, uint32_t wtype, float *out, int n) {
    int k = 0;
    for (; k + 16 <= n; k += 16) _mm512_storeu_ps(out + k, load16(W, wtype, k));
    if (k < n) _mm512_mask_storeu_ps(out + k, (__mmask16)((1u << (n - k)) - 1), load16_part(W, wtype, k, n - k));
}

// In-register transpose: r[i] lane j  ->  r[j] lane i.
INLINE void transpose16(__m512 r[16]) {
    __m512 t[16];
    UNROLL
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    UNROLL
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    // r[4g + c], 128-bit lane L: rows 4g..4g+3 of column c + 4L
    UNROLL
    for (int c = 0; c < 4; c++) {
        t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
        t[c + 4] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
        t[c + 8] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
        t[c + 12] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
    }
    UNROLL
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_f32x4(t[c], t[c + 8], 0x88);
        r[c + 8] = _mm512_shuffle_f32x4(t[c], t[c + 8], 0xdd);
        r[c + 4] = _mm512_shuffle_f32x4(t[c + 4], t[c + 12], 0x88);
        r[c + 12] = _mm512_shuffle_f32x4(t[c + 4], t[c + 12], 0xdd);
    }
}

// Columns k0..k0+kn-1 of nr (<= 16) weight rows, as col[c] = rows' weights at
// k0 + c (lanes beyond nr and columns beyond kn are 0).
INLINE void load_rows(const uint8_t *W, size_t ldw, uint32_t wtype, int k0, __m512 col[16]) {
    UNROLL
    for (int r = 0; r < 16; r++) col[r] = load16(W + (size_t)r * ldw, wtype, k0);
}
INLINE void load_block(const uint8_t *W, size_t ldw, uint32_t wtype, int k0, int kn, int nr, __m512 col[16]) {
    if (nr == 16 && kn == 16) { // the common case, one loop per type
        switch (wtype) {
        case ATTN_F32: load_rows(W, ldw, ATTN_F32, k0, col); break;
        case ATTN_F16: load_rows(W, ldw, ATTN_F16, k0, col); break;
        case ATTN_BF16: load_rows(W, ldw, ATTN_BF16, k0, col); break;
        default: load_rows(W, ldw, wtype, k0, col); break;
        }
    } else {
        for (int r = 0; r < 16; r++)
            col[r] = r < nr ? load16_any(W + (size_t)r * ldw, wtype, k0, kn) : _mm512_setzero_ps();
    }
    transpose16(col);
}

// -16..31 as floats: the q (- bias) of the other lookup tables, 16 from an offset.
static const float DQ_RAMP[48] = { -16, -15, -14, -13, -12, -11, -10, -9, -8, -7, -6, -5, -4, -3, -2, -1,
                                   0,   1,   2,   3,   4,   5,   6,   7,   8,   9,   10,  11,  12,  13,  14,  15,
                                   16,  17,  18,  19,  20,  21,  22,  23,  24,  25,  26,  27,  28,  29,  30,  31 };
// attn_iq4_kvalues as floats.
static const float DQ_KV[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };
// 16 unsigned bytes as f32.
INLINE __m512 i2f_u8(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }

// ---------------------------------------------------------------- GEMV

// C[m][n0..n0+nr) for m < M (<= GEMV_MAX_M): nr <= 16 weight rows n0.. at W
// (stride ldw bytes), each k a broadcast FMA in order.
// While one group of 16 rows is read, the next group (pre, pre_n rows) is
// prefetched at the same place: each row is a separate stream, often a page
// of its own, which the hardware prefetcher would only find late.
INLINE void gemv16(const float *A, int lda, const uint8_t *W, size_t ldw, uint32_t wtype, const float *bias,
                      float *C, int ldc, int M, int K, int nr, const uint8_t *pre, int pre_n) {
    __m512 acc[GEMV_MAX_M];
    UNROLL
    for (int m = 0; m < GEMV_MAX_M; m++) acc[m] = _mm512_setzero_ps();
    __m512 col[16];
    size_t row_bytes = wtype == ATTN_F32 ? (size_t)K * 4 : attn_type_row_bytes(wtype, (uint64_t)K);
    for (int k0 = 0; k0 < K; k0 += 16) {
        int kn = K - k0 < 16 ? K - k0 : 16;
        size_t off = row_bytes * (size_t)k0 / (size_t)K;
        for (int r = 0; r < pre_n; r++) _mm_prefetch((const char *)pre + (size_t)r * ldw + off, _MM_HINT_T1);
        load_block(W, ldw, wtype, k0, kn, nr, col);
        if (kn == 16) {
            UNROLL
            for (int c = 0; c < 16; c++)
                UNROLL
                for (int m = 0; m < GEMV_MAX_M; m++)
                    if (m < M) acc[m] = _mm512_fmadd_ps(_mm512_set1_ps(A[(size_t)m * lda + k0 + c]), col[c], acc[m]);
        } else {
            for (int c = 0; c < kn; c++)
                UNROLL
                for (int m = 0; m < GEMV_MAX_M; m++)
                    if (m < M) acc[m] = _mm512_fmadd_ps(_mm512_set1_ps(A[(size_t)m * lda + k0 + c]), col[c], acc[m]);
        }
    }
    __mmask16 mask = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias) : _mm512_setzero_ps();
    UNROLL
    for (int m = 0; m < M; m++) _mm512_mask_storeu_ps(C + (size_t)m * ldc, mask, _mm512_add_ps(acc[m], b));
}

// C[m][0..nr) for m < M (<= GEMV_MAX_M), nr <= GEMV_ROWS weight rows at W
// (not the dot form's types); the pre_n rows at pre are prefetched meanwhile.
INLINE void gemv_rows(const float *A, int lda, const uint8_t *W, size_t ldw, uint32_t wtype, const float *bias,
                      float *C, int ldc, int M, int K, int nr, const uint8_t *pre, int pre_n) {
    for (int g = 0; g < nr; g += 16, pre_n -= 16) {
        int pn = pre_n < 0 ? 0 : pre_n > 16 ? 16 : pre_n;
        gemv16(A, lda, W + (size_t)g * ldw, ldw, wtype, bias ? bias + g : NULL, C + g, ldc, M, K,
               nr - g < 16 ? nr - g : 16, pre + (size_t)g * ldw, pn);
    }
}

// ---------------------------------------------------------------- GEMM

// P[k][c] = weight (n0 + c, k) for c < nc (<= 48), 0 for c >= nc.
static void pack_panel(float *P, const uint8_t *W, size_t ldw, uint32_t wtype, int K, int nc) {
    __m512 col[16];
    for (int h = 0; h < NR / 16; h++) {
        int nr = nc - 16 * h;
        nr = nr < 0 ? 0 : nr > 16 ? 16 : nr;
        const uint8_t *w = W + (size_t)(16 * h) * ldw;
        for (int k0 = 0; k0 < K; k0 += 16) {
            int kn = K - k0 < 16 ? K - k0 : 16;
            if (nr) load_block(w, ldw, wtype, k0, kn, nr, col);
            else for (int c = 0; c < 16; c++) col[c] = _mm512_setzero_ps();
            for (int c = 0; c < kn; c++) _mm512_store_ps(P + (size_t)(k0 + c) * NR + 16 * h, col[c]);
        }
    }
}

// C tile (R rows x nc columns) = A rows x panel, chained over k, + bias;
// NV <= NR / 16 vectors of columns (nc <= 16 NV), each column's operations
// the same whatever NV.
INLINE void gemm_tile_v(int R, int NV, const float *A, int lda, const float *P, int K, const float *bias, float *C,
                        int ldc, int nc) {
    __m512 acc[MR][NR / 16];
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    // rows as two bases and scaled offsets, so the addresses need few registers
    ptrdiff_t L = lda, L3 = 3 * L, L5 = 5 * L;
    const float *a0 = A, *a7 = A + 7 * L;
    for (int k = 0; k < K; k++, a0++, a7++) {
        __m512 w[NR / 16];
        UNROLL
        for (int v = 0; v < NV; v++) w[v] = _mm512_load_ps(P + (size_t)k * NR + 16 * v);
        UNROLL
        for (int r = 0; r < R; r++) {
            const float *b = r < 7 ? a0 : a7;
            int i = r % 7;
            __m512 a = _mm512_set1_ps(b[i == 0 ? 0 : i == 1 ? L : i == 2 ? 2 * L : i == 3 ? L3 : i == 4 ? 4 * L : i == 5 ? L5 : 2 * L3]);
            UNROLL
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(a, w[v], acc[r][v]);
        }
    }
    UNROLL
    for (int v = 0; v < NV; v++) {
        int left = nc - 16 * v;
        __mmask16 m = (__mmask16)(left >= 16 ? 0xffff : left <= 0 ? 0 : (1u << left) - 1);
        __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + 16 * v) : _mm512_setzero_ps();
        UNROLL
        for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(C + (size_t)r * ldc + 16 * v, m, _mm512_add_ps(acc[r][v], b));
    }
}

// A part-filled panel (the last of a column range) runs on the vectors it has.
INLINE void gemm_tile(int R, const float *A, int lda, const float *P, int K, const float *bias, float *C, int ldc,
                      int nc) {
    if (nc > 32) gemm_tile_v(R, 3, A, lda, P, K, bias, C, ldc, nc);
    else if (nc > 16) gemm_tile_v(R, 2, A, lda, P, K, bias, C, ldc, nc);
    else gemm_tile_v(R, 1, A, lda, P, K, bias, C, ldc, nc);
}

// ---------------------------------------------------------------- math

// Sum of the 16 lanes in a fixed tree (halves, then quarters, ...).
INLINE float hsum(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

// e^x, within 2 ulp on [-87, 88]; below -87.3 gives 0.
INLINE __m512 vexp(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    x = _mm512_min_ps(x, _mm512_set1_ps(88.7f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x); // ln2 split in two parts
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    // e^r on |r| <= ln2/2: Taylor-like minimax polynomial (Cephes expf)
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

// 1/d within about 1 ulp: the 14-bit estimate and one Newton step, several
// times cheaper than a division.
INLINE __m512 vrcp(__m512 d) {
    __m512 x = _mm512_rcp14_ps(d);
    return _mm512_mul_ps(x, _mm512_fnmadd_ps(d, x, _mm512_set1_ps(2.0f)));
}

#define MASK(n) ((__mmask16)((1u << (n)) - 1))

// x[i] = x[i] * scale, then softmax over n, in place.
static void softmax_scaled(float *x, int n, float scale) {
    __m512 vs = _mm512_set1_ps(scale), vmax = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), vs);
        _mm512_storeu_ps(x + i, v);
        vmax = _mm512_max_ps(vmax, v);
    }
    if (i < n) {
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(MASK(n - i), x + i), vs);
        _mm512_mask_storeu_ps(x + i, MASK(n - i), v);
        vmax = _mm512_mask_max_ps(vmax, MASK(n - i), vmax, v);
    }
    __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax)), sum = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 e = vexp(_mm512_sub_ps(_mm512_loadu_ps(x + i), mx));
        _mm512_storeu_ps(x + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (i < n) {
        __m512 e = vexp(_mm512_sub_ps(_mm512_maskz_loadu_ps(MASK(n - i), x + i), mx));
        _mm512_mask_storeu_ps(x + i, MASK(n - i), e);
        sum = _mm512_mask_add_ps(sum, MASK(n - i), sum, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / hsum(sum));
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
    if (i < n) _mm512_mask_storeu_ps(x + i, MASK(n - i), _mm512_mul_ps(_mm512_maskz_loadu_ps(MASK(n - i), x + i), inv));
}

// ---------------------------------------------------------------- attention

// out rows (R of them, hd wide) = probs rows @ V, chained over keys j < nj.
// Keys past a row's own last one have probability exactly 0 and leave its
// sums unchanged, so a row gets the same bits in any tile.
#define PV_R 6
INLINE void pv_tile(int R, const float *p, int ps, const float *v, int vs, int nj, int hd, float *out, int os) {
    for (int d0 = 0; d0 < hd; d0 += 64) {
        int nd = hd - d0 < 64 ? hd - d0 : 64;
        __mmask16 mk[4];
        UNROLL
        for (int q = 0; q < 4; q++) {
            int left = nd - 16 * q;
            mk[q] = left >= 16 ? 0xffff : left <= 0 ? 0 : MASK(left);
        }
        __m512 acc[PV_R][4];
        UNROLL
        for (int r = 0; r < R; r++)
            UNROLL
            for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_ps();
        for (int j = 0; j < nj; j++) {
            __m512 vv[4];
            UNROLL
            for (int q = 0; q < 4; q++) vv[q] = _mm512_maskz_loadu_ps(mk[q], v + (size_t)j * vs + d0 + 16 * q);
            UNROLL
            for (int r = 0; r < R; r++) {
                __m512 pr = _mm512_set1_ps(p[(size_t)r * ps + j]);
                UNROLL
                for (int q = 0; q < 4; q++) acc[r][q] = _mm512_fmadd_ps(pr, vv[q], acc[r][q]);
            }
        }
        UNROLL
        for (int r = 0; r < R; r++)
            UNROLL
            for (int q = 0; q < 4; q++) _mm512_mask_storeu_ps(out + (size_t)r * os + d0 + 16 * q, mk[q], acc[r][q]);
    }
}

// ---------------------------------------------------------------- row ops

static void avx512_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    __m512 r = _mm512_set1_ps(1.0f / sqrtf((float)(attn_sumsq(x, n) / n) + eps));
    int i;
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), r), _mm512_loadu_ps(w + i)));
    if (i < n) {
        __mmask16 m = MASK(n - i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), r), _mm512_maskz_loadu_ps(m, w + i)));
    }
}

static void avx512_layernorm(float *out, const float *x, const float *w, const float *b, int n, float eps) {
    __m512 s = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) s = _mm512_add_ps(s, _mm512_loadu_ps(x + i));
    if (i < n) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(MASK(n - i), x + i));
    float mean = hsum(s) / (float)n;
    __m512 vm = _mm512_set1_ps(mean), var = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) { __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm); var = _mm512_fmadd_ps(d, d, var); }
    if (i < n) { __m512 d = _mm512_maskz_sub_ps(MASK(n - i), _mm512_maskz_loadu_ps(MASK(n - i), x + i), vm); var = _mm512_fmadd_ps(d, d, var); }
    __m512 r = _mm512_set1_ps(1.0f / sqrtf(hsum(var) / (float)n + eps));
    for (i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : MASK(n - i);
        __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), r), _mm512_maskz_loadu_ps(m, w + i));
        if (b) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, b + i));
        _mm512_mask_storeu_ps(out + i, m, y);
    }
}

// x * sigmoid(2u): 0.5 x (1 + tanh u) written without tanh.
static void avx512_gelu_tanh(float *x, int n) {
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : MASK(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 u = _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f),
                                 _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), v), _mm512_mul_ps(v, v), v));
        __m512 e = vexp(_mm512_mul_ps(_mm512_set1_ps(-2.0f), u));
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(v, vrcp(_mm512_add_ps(_mm512_set1_ps(1.0f), e))));
    }
}

// 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2), erfc as in kernels.h.
static void avx512_gelu_erf(float *x, int n) {
    static const float P[] = ATTN_ERFC_P;
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : MASK(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 z = _mm512_mul_ps(_mm512_abs_ps(v), _mm512_set1_ps(0.7071067811865476f));
        __m512 t = vrcp(_mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
        __m512 p = _mm512_set1_ps(P[0]);
        for (int j = 1; j <= ATTN_ERFC_DEG; j++) p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(P[j]));
        // z^2 = zh^2 (exact: zh has 6 fraction bits) + (z - zh)(z + zh)
        __m512 zh = _mm512_roundscale_ps(z, (6 << 4) | _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512 d = _mm512_mul_ps(_mm512_sub_ps(z, zh), _mm512_add_ps(z, zh));
        __m512 e = _mm512_mul_ps(_mm512_mul_ps(t, vexp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(zh, zh)))),
                                 vexp(_mm512_sub_ps(p, d)));
        __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GE_OQ);
        e = _mm512_mask_sub_ps(e, pos, _mm512_set1_ps(2.0f), e); // 1 + erf(x / sqrt 2)
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), e));
    }
}

static void avx512_swiglu(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : MASK(n - i);
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
        __m512 e = vexp(_mm512_sub_ps(_mm512_setzero_ps(), g));
        __m512 s = _mm512_mul_ps(g, vrcp(_mm512_add_ps(_mm512_set1_ps(1.0f), e)));
        _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, up + i)));
    }
}

static void avx512_add(float *y, const float *x, int n) {
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : MASK(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_maskz_loadu_ps(m, x + i)));
    }
}

#include "simd/drivers.h"

// ---------------------------------------------------------------- quantized weights: dot form
//
// DOT_TYPES (dot_order: F16 and BF16 where K % 32 == 0) keep another order on this path (the
// "dot form"): C[m][n] = hsum(v) + bias[n], where lane l of the 16-lane v is
// a chain of fused multiply-adds from +0 of A[m][k] * w[n][k] over
// k = l, l+16, l+32, ... in order, w the weights exactly as attn_dq_block
// decodes them. Decoding 16 consecutive weights of a row into a vector needs
// no transposes, and a decoded vector serves every row of A. GEMV (M <=
// GEMV_MAX_M) runs dot_dr weight rows at once; GEMM (simd/drivers.h's dot_gemm) runs the float
// GEMM's register tiles on a panel and rows of A whose k are reordered so
// that each lane's chain is one tile chain, then adds the 16 in hsum's tree;
// both give the same bits.
// Weight rows per GEMV step: 6 for the K-quants' decode (M = 1; their
// decoding leaves room for more independent chains: Q4_K 16.2-16.6 -> 16.9-
// 17.2 GB/s, Q6_K 16.5-18.4 -> 18.7-19.8 per CPU second in bench_gemv -t 1;
// Q5_K 13.3-13.5 with 4, 13.4-14.4 with 6; Q2_K 6.7-6.8 with 4, 7.0-7.3 with 6,
// Q3_K 5.6-5.7 and 6.2-6.4 before dq_prep's scales stopped going through memory),
// 3 for F16 and BF16 (M = 1: their GEMV is bound by the memory, which
// streams fewer rows at once faster: bench_gemv -t 2 -mb 512, F16 from
// memory 55.9-57.8 -> 66.5-68.2 GB/s at K = 2048, 49.8-52.0 -> 64.5-67.1 at
// K = 5632, while 2 rows gave 73.9-74.6 and 54.9-55.2, 4 with no prefetching
// of the next rows 47.6-48.0 and 43.7-44.4), 4 otherwise (Q8_0 was slower
// with 6, and M > 1 would spill).
#define DR_MAX 6
INLINE int is_half(uint32_t t) { return t == ATTN_F16 || t == ATTN_BF16; }
INLINE int is_k45(uint32_t t) { return t == ATTN_Q4_K || t == ATTN_Q5_K; } // one header: d, dmin, 6-bit sc and mn
INLINE int is_kquant(uint32_t t) { return t >= ATTN_Q2_K && t <= ATTN_Q6_K; }
INLINE int dot_dr(uint32_t t, int M) {
    if (M > 1) return 4;
    return is_kquant(t) ? DR_MAX : is_half(t) ? 3 : 4;
}

// What a row's block header gives the units that follow (dq_prep).
typedef struct {
    float s[16];   // Q4_K, Q5_K: d * sc of sub-blocks 0..7, then dmin * mn; Q2_K, Q3_K, Q6_K: d * sc of its 16 sub-blocks
    float m[16];   // Q2_K: dmin * m of its 16 sub-blocks
    int8_t q[128]; // Q6_K: q - 32 of the half block (weights 128 h + i); Q2_K, Q3_K, Q5_K: q of the half block (dq_prep)
    __m512i nib[2]; // Q4_K, Q5_K: the 32 bytes of sub-blocks 2p (low nibbles) and 2p + 1 (high), widened once for both
} dq_state;

// Bytes of a block of attn_qblk(t) weights: F16 and BF16 rows are taken in
// runs of 32 (64 bytes) as if they were blocks.
INLINE int dot_bytes(uint32_t t) { return is_half(t) ? 64 : attn_qbytes(t); }

// Weights per dq_prep call of type t (a block or half of one).
INLINE int dq_span(uint32_t t) { return t == ATTN_Q4_K ? 256 : is_kquant(t) ? 128 : 32; }

// attn_k_scales_mins in one register: the 12 bytes at sc as words u0, u1,
// u2 (16 bytes read: the 4 after them are the block's next); bytes 0..7 of
// the result sc[0..7], 8..15 mn[0..7]. Q4_K 19.2 -> 19.8-20.3 GB/s and Q5_K
// 15.1-15.2 -> 15.6-16.5 in the cache (bench_gemv -t 1 -mb 1), the TinyLlama
// shape's Q4_K_M decode 44.0-45.5 -> 46.1-47.5 tok/s; the AVX2 path's Q5_K
// was 10% slower with it (kept the scalar words there).
INLINE __m128i k_scales_mins(const uint8_t *sc) {
    __m128i u = _mm_loadu_si128((const __m128i *)sc);
    __m128i a = _mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0)), c = _mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0));
    __m128i lo = _mm_and_si128(_mm_srlv_epi32(a, _mm_set_epi32(4, 0, 0, 0)), // u0 & 3f, u2 & 0f, u1 & 3f, u2 >> 4 & 0f
                               _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    __m128i hi = _mm_and_si128(_mm_srli_epi32(c, 2), _mm_set_epi32(0x30303030, 0, 0x30303030, 0)); // 0, u0 >> 2 & 30, 0, u1 >> 2 & 30
    return _mm_or_si128(lo, hi);
}

// At weight j of block b (j % dq_span(t) == 0): the scales (and Q6_K's
// bytes) with the f32 operations of attn_dq_at.
INLINE void dq_prep(uint32_t t, const uint8_t *b, int j, dq_state *st) {
    if (t == ATTN_Q2_K || t == ATTN_Q3_K) { // q2 (Q3_K: | hbit << 2) of weight 128 h + 32 s + l at 32 s + l
        int h = j / 128, q3 = t == ATTN_Q3_K;
        __m512i qs = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + (q3 ? 32 : 16) + 32 * h)));
        __m512i sh = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1); // s = 0 | 1: >> 0 | >> 2
        __m512i three = _mm512_set1_epi8(3);
        __m512i qa = _mm512_and_si512(_mm512_srlv_epi16(qs, sh), three);
        __m512i qb = _mm512_and_si512(_mm512_srlv_epi16(qs, _mm512_add_epi16(sh, _mm512_set1_epi16(4))), three); // s = 2 | 3
        if (q3) { // bit 4 h + s of hmask[l]
            __m512i hm = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b)), b4 = _mm512_set1_epi8(4);
            __m512i ba = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << 4 * h)), _mm256_set1_epi8((char)(2 << 4 * h)), 1);
            qa = _mm512_mask_add_epi8(qa, _mm512_test_epi8_mask(hm, ba), qa, b4);
            qb = _mm512_mask_add_epi8(qb, _mm512_test_epi8_mask(hm, _mm512_slli_epi16(ba, 2)), qb, b4);
        }
        _mm512_storeu_si512(st->q, qa);
        _mm512_storeu_si512(st->q + 64, qb);
        if (j) return; // (the scales once a block)
        if (q3) { // the 6-bit scales: lo | hi << 4 - 32, times d (attn_dq_at)
            uint64_t v[2];
            attn_q3k_scales(b + 96, v);
            uint16_t d;
            memcpy(&d, b + 108, 2);
            __m128i v16 = _mm_set_epi64x((long long)v[1], (long long)v[0]); // (not through memory: no store-forward stall)
            __m512i sc = _mm512_sub_epi32(_mm512_cvtepu8_epi32(v16), _mm512_set1_epi32(32));
            _mm512_storeu_ps(st->s, _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(d)), _mm512_cvtepi32_ps(sc)));
        } else { // d * (sc & 15), dmin * (sc >> 4)
            uint16_t dm[2];
            memcpy(dm, b + 80, 4);
            __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b));
            _mm512_storeu_ps(st->s, _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(dm[0])),
                                                  _mm512_cvtepi32_ps(_mm512_and_si512(sc, _mm512_set1_epi32(15)))));
            _mm512_storeu_ps(st->m, _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(dm[1])), _mm512_cvtepi32_ps(_mm512_srli_epi32(sc, 4))));
        }
        return;
    }
    if (t == ATTN_Q5_K) { // q = nibble | bit 4 from qh, the bytes of sub-blocks 4h + c at 32 (c >> 1) + 64 (c & 1)
        int h = j / 128;
        __m512i qs = _mm512_loadu_si512(b + 48 + 64 * h); // nibbles of sub-blocks 4h, 4h + 1 | 4h + 2, 4h + 3
        __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 16)));
        __m512i ba = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << 4 * h)), _mm256_set1_epi8((char)(4 << 4 * h)), 1);
        __m512i lo = _mm512_set1_epi8(15), b4 = _mm512_set1_epi8(16);
        __m512i qa = _mm512_and_si512(qs, lo), qb = _mm512_and_si512(_mm512_srli_epi16(qs, 4), lo);
        _mm512_storeu_si512(st->q, _mm512_mask_add_epi8(qa, _mm512_test_epi8_mask(qh, ba), qa, b4)); // c = 0, 2
        _mm512_storeu_si512(st->q + 64, _mm512_mask_add_epi8(qb, _mm512_test_epi8_mask(qh, _mm512_add_epi8(ba, ba)), qb, b4));
        if (j) return; // (the scales below once a block)
    }
    if (is_k45(t)) { // sc[0..7], mn[0..7]
        uint16_t h[2];
        memcpy(h, b, 4);
        __m512 dm = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(_cvtsh_ss(h[0])), _mm512_set1_ps(_cvtsh_ss(h[1])));
        _mm512_storeu_ps(st->s, _mm512_mul_ps(dm, i2f_u8(k_scales_mins(b + 4))));
    } else if (t == ATTN_Q6_K) {
        uint16_t d;
        memcpy(&d, b + 208, 2);
        int h = j / 128;
        if (h == 0) // int8 scales
            _mm512_storeu_ps(st->s, _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(d)),
                                                  _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 192))))));
        // q = ql nibble | 2 bits of qh << 4; bytes c = 0, 1 (low nibbles) and 2, 3 (high), 32 each
        __m512i ql = _mm512_loadu_si512(b + 64 * h);
        __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h)));
        __m512i s24 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1); // c = 0, 1: qh << 4, << 2
        __m512i s02 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1); // c = 2, 3: qh, >> 2
        __m512i lo = _mm512_set1_epi8(15), hb = _mm512_set1_epi8(0x30), b32 = _mm512_set1_epi8(32);
        __m512i qa = _mm512_or_si512(_mm512_and_si512(ql, lo), _mm512_and_si512(_mm512_sllv_epi16(qh, s24), hb));
        __m512i qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), lo),
                                     _mm512_and_si512(_mm512_srlv_epi16(qh, s02), hb));
        _mm512_storeu_si512(st->q, _mm512_sub_epi8(qa, b32));
        _mm512_storeu_si512(st->q + 64, _mm512_sub_epi8(qb, b32));
    }
}

// Weights j..j+31 of block b (j % 32 == 0) into w[0], w[1]; dq_prep has run
// at the last multiple of dq_span(t).
INLINE void dq_unit(uint32_t t, const uint8_t *b, int j, dq_state *st, __m512 w[2]) {
    if (t == ATTN_Q8_0) {
        uint16_t d;
        memcpy(&d, b, 2);
        __m512 vd = _mm512_cvtph_ps(_mm256_set1_epi16((short)d)); // (d broadcast as f16, then widened)
        w[0] = _mm512_mul_ps(vd, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 2)))));
        w[1] = _mm512_mul_ps(vd, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 18)))));
    } else if (t == ATTN_Q2_K || t == ATTN_Q3_K) { // sub-blocks of 16: d * q - m (Q3_K: d * (q - 4)) looked up by q
        int s = j / 16;
        const uint8_t *q = (const uint8_t *)st->q + j % 128;
        const float *ramp = t == ATTN_Q3_K ? DQ_RAMP + 12 : DQ_RAMP + 16;
        __m512 t0, t1, r = _mm512_loadu_ps(ramp);
        if (t == ATTN_Q2_K) // (d * q exact: fused with - m, the bits of mul then sub)
            t0 = _mm512_fmsub_ps(_mm512_set1_ps(st->s[s]), r, _mm512_set1_ps(st->m[s])),
            t1 = _mm512_fmsub_ps(_mm512_set1_ps(st->s[s + 1]), r, _mm512_set1_ps(st->m[s + 1]));
        else
            t0 = _mm512_mul_ps(_mm512_set1_ps(st->s[s]), r), t1 = _mm512_mul_ps(_mm512_set1_ps(st->s[s + 1]), r);
        w[0] = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)q)), t0);
        w[1] = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + 16))), t1);
    } else if (is_k45(t)) { // the 16 (Q5_K: 32) values d * q - m of the sub-block, looked up by q
        int s = j / 32;
        __m512 d = _mm512_set1_ps(st->s[s]), m = _mm512_set1_ps(st->s[8 + s]);
        __m512 lo = _mm512_fmsub_ps(d, _mm512_loadu_ps(DQ_RAMP + 16), m); // q 0..15 (d * q exact: as mul, sub)
        if (t == ATTN_Q5_K) { // q (5 bits) as dq_prep made it
            const uint8_t *q = (const uint8_t *)st->q + 32 * ((s & 3) >> 1) + 64 * (s & 1);
            __m512 hi = _mm512_fmsub_ps(d, _mm512_loadu_ps(DQ_RAMP + 32), m); // q 16..31
            w[0] = _mm512_permutex2var_ps(lo, _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)q)), hi);
            w[1] = _mm512_permutex2var_ps(lo, _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + 16))), hi);
            return;
        }
        const uint8_t *qs = b + 16 + (s >> 1) * 32;
        if (!(s & 1))
            st->nib[0] = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qs)),
            st->nib[1] = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 16)));
        __m512i q0 = st->nib[0], q1 = st->nib[1];
        if (s & 1) q0 = _mm512_srli_epi32(q0, 4), q1 = _mm512_srli_epi32(q1, 4);
        w[0] = _mm512_permutexvar_ps(q0, lo); // (the index is bits 0..3 of each lane)
        w[1] = _mm512_permutexvar_ps(q1, lo);
    } else if (t == ATTN_Q4_0 || t == ATTN_Q4_1 || t == ATTN_IQ4_NL || t == ATTN_IQ4_XS) {
        // 16 bytes: low nibbles weights j..j+15, high j+16..; the 16 values d * q (+ m) looked up
        int s = j / 32; // (IQ4_XS: the sub-block)
        const uint8_t *qs = t == ATTN_IQ4_XS ? b + 8 + 16 * s : b + (t == ATTN_Q4_1 ? 4 : 2);
        uint16_t h[2];
        memcpy(h, b, 4);
        float d = _cvtsh_ss(h[0]);
        if (t == ATTN_IQ4_XS) d *= (float)attn_iq4xs_scale(b, s); // d * (s6 - 32)
        __m512 vd = _mm512_set1_ps(d);
        const float *q = t == ATTN_Q4_0 ? DQ_RAMP + 8 : t == ATTN_Q4_1 ? DQ_RAMP + 16 : DQ_KV;
        __m512 tab = t == ATTN_Q4_1 ? _mm512_fmadd_ps(vd, _mm512_loadu_ps(q), _mm512_set1_ps(_cvtsh_ss(h[1]))) // (d * q exact)
                                    : _mm512_mul_ps(vd, _mm512_loadu_ps(q));
        __m512i nib = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qs));
        w[0] = _mm512_permutexvar_ps(nib, tab); // (the index is bits 0..3 of each lane)
        w[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(nib, 4), tab);
    } else if (t == ATTN_Q5_0 || t == ATTN_Q5_1) { // 32 values d * q (+ m); bit i of qh is bit 4 of q
        int o = t == ATTN_Q5_1 ? 2 : 0;
        uint16_t h[2];
        uint32_t qh;
        memcpy(h, b, 4);
        memcpy(&qh, b + 2 + o, 4);
        __m512 vd = _mm512_set1_ps(_cvtsh_ss(h[0]));
        __m512 lo = _mm512_loadu_ps(DQ_RAMP + 8 * o), hi = _mm512_loadu_ps(DQ_RAMP + 16 + 8 * o); // q 0..15 (Q5_0: q - 16), 16..31
        if (o) { // (d * q exact: + m fused)
            __m512 m = _mm512_set1_ps(_cvtsh_ss(h[1]));
            lo = _mm512_fmadd_ps(vd, lo, m), hi = _mm512_fmadd_ps(vd, hi, m);
        } else {
            lo = _mm512_mul_ps(vd, lo), hi = _mm512_mul_ps(vd, hi);
        }
        __m512i nib = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + 6 + o))), b4 = _mm512_set1_epi32(16);
        __m512i q0 = _mm512_and_si512(nib, _mm512_set1_epi32(15)), q1 = _mm512_srli_epi32(nib, 4);
        q0 = _mm512_mask_or_epi32(q0, (__mmask16)qh, q0, b4);
        q1 = _mm512_mask_or_epi32(q1, (__mmask16)(qh >> 16), q1, b4);
        w[0] = _mm512_permutex2var_ps(lo, q0, hi);
        w[1] = _mm512_permutex2var_ps(lo, q1, hi);
    } else if (is_half(t)) { // (runs of 32 as blocks: dot_bytes)
        w[0] = load16(b, t, j);
        w[1] = load16(b, t, j + 16);
    } else if (t == ATTN_Q6_K) {
        int i = j % 128, s = j / 16;
        w[0] = _mm512_mul_ps(_mm512_set1_ps(st->s[s]),
                             _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(st->q + i)))));
        w[1] = _mm512_mul_ps(_mm512_set1_ps(st->s[s + 1]),
                             _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(st->q + i + 16)))));
    }
}

// C[m][0..nr) for m < M (<= GEMV_MAX_M), nr <= dot_dr(t, M) rows of type t at W; the
// pre_n rows at pre are prefetched at the same place meanwhile.
INLINE void dot_rows(const float *A, int lda, const uint8_t *W, size_t ldw, uint32_t t, const float *bias, float *C,
                     int ldc, int M, int K, int nr, const uint8_t *pre, int pre_n) {
    const int dr = dot_dr(t, M); // (a constant where t and M are)
    __m512 acc[GEMV_MAX_M][DR_MAX];
    dq_state st[DR_MAX];
    const uint8_t *row[DR_MAX];
    UNROLL
    for (int r = 0; r < dr; r++) {
        row[r] = W + (size_t)(r < nr ? r : nr - 1) * ldw; // rows past nr: computed, not stored
        UNROLL
        for (int m = 0; m < GEMV_MAX_M; m++) acc[m][r] = _mm512_setzero_ps();
    }
    const int blk = attn_qblk(t), bytes = dot_bytes(t);
    size_t next = 0; // the next rows' bytes before this are prefetched
    for (int k0 = 0; k0 < K; k0 += blk) {
        size_t off = (size_t)(k0 / blk) * (size_t)bytes;
        for (; next < off + (size_t)bytes; next += 64)
            for (int i = 0; i < pre_n; i++) _mm_prefetch((const char *)pre + (size_t)i * ldw + next, _MM_HINT_T0);
        UNROLL // (over a block: the place in it a constant)
        for (int j = 0; j < blk; j += 32) {
            if (j % dq_span(t) == 0) {
                UNROLL
                for (int r = 0; r < dr; r++) dq_prep(t, row[r] + off, j, &st[r]);
                // The units then read the scales back from memory, as broadcasts
                // in their loads, rather than out of the register they were
                // made in, a shuffle each beside the lookups' shuffles.
                if (is_kquant(t)) __asm__ volatile("" ::: "memory");
            }
            __m512 w[DR_MAX][2];
            UNROLL
            for (int r = 0; r < dr; r++) dq_unit(t, row[r] + off, j, &st[r], w[r]);
            const float *a = A + k0 + j;
            UNROLL
            for (int m = 0; m < GEMV_MAX_M; m++)
                if (m < M) {
                    __m512 a0 = _mm512_loadu_ps(a + (size_t)m * lda), a1 = _mm512_loadu_ps(a + (size_t)m * lda + 16);
                    UNROLL
                    for (int r = 0; r < dr; r++) acc[m][r] = _mm512_fmadd_ps(a0, w[r][0], acc[m][r]);
                    UNROLL
                    for (int r = 0; r < dr; r++) acc[m][r] = _mm512_fmadd_ps(a1, w[r][1], acc[m][r]);
                }
        }
    }
    UNROLL // (constant indices: the accumulators stay in registers)
    for (int m = 0; m < GEMV_MAX_M; m++)
        UNROLL
        for (int r = 0; r < dr; r++)
            if (m < M && r < nr) C[(size_t)m * ldc + r] = hsum(acc[m][r]) + (bias ? bias[r] : 0.0f);
}

// The dot form's GEMM on the float GEMM's tiles. With k = l + 16 j stored
// at l * K / 16 + j in both the panel (dot_pack) and A's rows (here,
// DOT_MB rows at a time), the tile's chain over the K / 16 weights of block l
// is lane l's chain; the 16 blocks' sums, tile by tile in part[l], are then
// added in hsum's tree (a_i = s_i + s_i+8, b_i = a_i + a_i+4, c_i = b_i +
// b_i+2, c_0 + c_1) and + bias, as GEMV does.
INLINE __m512 tree16(const __m512 s[16]) {
    __m512 a[8], b[4];
    UNROLL
    for (int i = 0; i < 8; i++) a[i] = _mm512_add_ps(s[i], s[i + 8]);
    UNROLL
    for (int i = 0; i < 4; i++) b[i] = _mm512_add_ps(a[i], a[i + 4]);
    return _mm512_add_ps(_mm512_add_ps(b[0], b[2]), _mm512_add_ps(b[1], b[3]));
}

static void dot_combine(int R, const float *part, const float *bias, float *C, int ldc, int nc) {
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NR / 16; v++) {
            int left = nc - 16 * v;
            if (left <= 0) break;
            __mmask16 mk = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
            __m512 s[16];
            UNROLL
            for (int l = 0; l < 16; l++) s[l] = _mm512_load_ps(part + (size_t)l * MR * NR + r * NR + 16 * v);
            __m512 b = bias ? _mm512_maskz_loadu_ps(mk, bias + 16 * v) : _mm512_setzero_ps();
            _mm512_mask_storeu_ps(C + (size_t)r * ldc + 16 * v, mk, _mm512_add_ps(tree16(s), b));
        }
}

// A[m][k] for m < M at Ap[m * K + l * K / 16 + j], k = l + 16 j: 16 j at a
// time by a transpose in registers.
static void dot_reorder(const float *A, int lda, float *Ap, int M, int K) {
    int Kb = K / 16;
    for (int m = 0; m < M; m++) {
        const float *a = A + (size_t)m * lda;
        float *o = Ap + (size_t)m * K;
        int j = 0;
        for (; j + 16 <= Kb; j += 16) {
            __m512 r[16];
            UNROLL
            for (int t = 0; t < 16; t++) r[t] = _mm512_loadu_ps(a + 16 * (j + t));
            transpose16(r);
            UNROLL
            for (int l = 0; l < 16; l++) _mm512_storeu_ps(o + (size_t)l * Kb + j, r[l]);
        }
        for (; j < Kb; j++)
            for (int l = 0; l < 16; l++) o[(size_t)l * Kb + j] = a[16 * j + l];
    }
}

// The dot form's panel: P[k][c] as pack_panel's, with row k = l + 16 j
// stored at l * K / 16 + j, so that each l's weights k = l, l + 16, ...
// follow each other. Each row's block is decoded by the GEMV's units into
// rows[16][blk] (bits as attn_dq_block), then 16 k at a time transposed.
INLINE void dot_pack(float *P, const uint8_t *W, size_t ldw, uint32_t t, int K, int nc) {
    static _Thread_local float rows[16][256] __attribute__((aligned(64)));
    const int blk = attn_qblk(t), bytes = dot_bytes(t);
    for (int h = 0; h < NR / 16; h++) {
        int nr = nc - 16 * h;
        nr = nr < 0 ? 0 : nr > 16 ? 16 : nr;
        for (int k0 = 0; k0 < K; k0 += blk) {
            const uint8_t *b0 = W + (size_t)(16 * h) * ldw + (size_t)(k0 / blk) * (size_t)bytes;
            if (!is_half(t)) // (F16 and BF16 are converted straight from the rows below)
                for (int r = 0; r < nr; r++) {
                    dq_state st;
                    UNROLL
                    for (int j = 0; j < blk; j += 32) {
                        __m512 w[2];
                        if (j % dq_span(t) == 0) dq_prep(t, b0 + (size_t)r * ldw, j, &st);
                        dq_unit(t, b0 + (size_t)r * ldw, j, &st, w);
                        _mm512_store_ps(rows[r] + j, w[0]);
                        _mm512_store_ps(rows[r] + j + 16, w[1]);
                    }
                }
            for (int j = 0; j < blk; j += 16) {
                __m512 col[16];
                UNROLL
                for (int r = 0; r < 16; r++)
                    col[r] = r >= nr ? _mm512_setzero_ps()
                           : is_half(t) ? load16(b0 + (size_t)r * ldw, t, j)
                           : _mm512_load_ps(rows[r] + j);
                transpose16(col);
                UNROLL
                for (int l = 0; l < 16; l++)
                    _mm512_store_ps(P + (size_t)l * dot_lane(K) + (size_t)(k0 + j) / 16 * NR + 16 * h, col[l]);
            }
        }
    }
}
// Whether weights of type t, K per row, are in the dot form: DOT_TYPES, F16
// and BF16 only where K % 32 == 0 (their GEMV works on runs of 32).
static int dot_order(uint32_t t, int K) {
    switch (t) {
#define CASE(T) case T:
    DOT_TYPES(CASE)
#undef CASE
        return !is_half(t) || K % 32 == 0;
    default: return 0;
    }
}

// ---------------------------------------------------------------- normals

// splitmix64's numbers k (8 lanes) of the stream (attn_kernels.normals).
INLINE __m512i splitmix8(__m512i seed, __m512i k) {
    __m512i z = _mm512_add_epi64(seed, _mm512_mullo_epi64(_mm512_add_epi64(k, _mm512_set1_epi64(1)),
                                                          _mm512_set1_epi64((long long)ATTN_SPLITMIX_GAMMA)));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64((long long)0xbf58476d1ce4e5b9ull));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64((long long)0x94d049bb133111ebull));
    return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

INLINE __m512d series8(const double *c, int n, __m512d z) {
    __m512d p = _mm512_set1_pd(c[0]);
    for (int i = 1; i < n; i++) p = _mm512_add_pd(_mm512_mul_pd(p, z), _mm512_set1_pd(c[i]));
    return _mm512_add_pd(_mm512_mul_pd(p, z), _mm512_set1_pd(1));
}

// Pairs p..p+7: std * (r cos), std * (r sin) interleaved as floats, with
// scalar.c's normal_pair's operations.
INLINE __m512 normal_pairs8(__m512i seed, uint64_t p, double std) {
    __m512i j = _mm512_slli_epi64(_mm512_add_epi64(_mm512_set1_epi64((long long)p), _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0)), 1);
    __m512i x = _mm512_srli_epi64(splitmix8(seed, j), 11), y = _mm512_srli_epi64(splitmix8(seed, _mm512_add_epi64(j, _mm512_set1_epi64(1))), 11);
    __m512d u1 = _mm512_mul_pd(_mm512_cvtepi64_pd(_mm512_add_epi64(x, _mm512_set1_epi64(1))), _mm512_set1_pd(0x1p-53));
    __m512d u2 = _mm512_mul_pd(_mm512_cvtepi64_pd(y), _mm512_set1_pd(0x1p-53));
    __m512i b = _mm512_castpd_si512(u1);
    __m512d e = _mm512_sub_pd(_mm512_cvtepi64_pd(_mm512_srli_epi64(b, 52)), _mm512_set1_pd(1023));
    __m512d m = _mm512_castsi512_pd(_mm512_or_si512(_mm512_and_si512(b, _mm512_set1_epi64(0x000fffffffffffffll)),
                                                    _mm512_set1_epi64(0x3ff0000000000000ll)));
    __mmask8 big = _mm512_cmp_pd_mask(m, _mm512_set1_pd(ATTN_SQRT2), _CMP_GT_OQ);
    m = _mm512_mask_mul_pd(m, big, m, _mm512_set1_pd(0.5));
    e = _mm512_mask_add_pd(e, big, e, _mm512_set1_pd(1));
    __m512d one = _mm512_set1_pd(1), s = _mm512_div_pd(_mm512_sub_pd(m, one), _mm512_add_pd(m, one));
    __m512d p6 = series8(attn_ln_series, 6, _mm512_mul_pd(s, s));
    __m512d ln = _mm512_add_pd(_mm512_mul_pd(e, _mm512_set1_pd(ATTN_LN2)), _mm512_mul_pd(_mm512_mul_pd(_mm512_set1_pd(2), s), p6));
    __m512d r = _mm512_sqrt_pd(_mm512_mul_pd(_mm512_set1_pd(-2), ln));
    __m512d t = _mm512_mul_pd(_mm512_set1_pd(4), u2);
    __m512i k = _mm512_cvttpd_epi64(_mm512_add_pd(t, _mm512_set1_pd(0.5)));
    __m512d a = _mm512_mul_pd(_mm512_sub_pd(t, _mm512_cvtepi64_pd(k)), _mm512_set1_pd(ATTN_PI_2)), aa = _mm512_mul_pd(a, a);
    __m512d sn = _mm512_mul_pd(series8(attn_sin_series, 5, aa), a), cs = series8(attn_cos_series, 6, aa);
    __mmask8 odd = _mm512_test_epi64_mask(k, _mm512_set1_epi64(1));
    __mmask8 neg_c = _mm512_test_epi64_mask(_mm512_add_epi64(k, _mm512_set1_epi64(1)), _mm512_set1_epi64(2)); // k & 3 = 1, 2
    __mmask8 neg_s = _mm512_test_epi64_mask(k, _mm512_set1_epi64(2)); // k & 3 = 2, 3
    __m512i sign = _mm512_set1_epi64((long long)0x8000000000000000ull);
    __m512i c = _mm512_castpd_si512(_mm512_mask_blend_pd(odd, cs, sn)), si = _mm512_castpd_si512(_mm512_mask_blend_pd(odd, sn, cs));
    c = _mm512_mask_xor_epi64(c, neg_c, c, sign);
    si = _mm512_mask_xor_epi64(si, neg_s, si, sign);
    __m512d sd = _mm512_set1_pd(std);
    __m256 fc = _mm512_cvtpd_ps(_mm512_mul_pd(sd, _mm512_mul_pd(r, _mm512_castsi512_pd(c))));
    __m256 fs = _mm512_cvtpd_ps(_mm512_mul_pd(sd, _mm512_mul_pd(r, _mm512_castsi512_pd(si))));
    __m512i lanes = _mm512_set_epi32(15, 7, 14, 6, 13, 5, 12, 4, 11, 3, 10, 2, 9, 1, 8, 0);
    return _mm512_permutexvar_ps(lanes, _mm512_insertf32x8(_mm512_castps256_ps512(fc), fs, 1));
}

static void normal_run16(uint64_t seed, uint64_t p, double std, float *w) {
    _mm512_storeu_ps(w, normal_pairs8(_mm512_set1_epi64((long long)seed), p, std));
}

static void avx512_normals(uint64_t seed, uint64_t first, size_t n, double std, float *w) {
    attn_normals_runs(seed, first, n, std, w, 16, normal_run16);
}

const attn_kernels attn_kernels_avx512 = {
    .name = "avx512",
    .matmul = simd_matmul_dot,
    .matmul_exact = simd_matmul_exact,
    .attention = simd_attention,
    .attention_exact = simd_attention_exact,
    .rmsnorm = avx512_rmsnorm,
    .layernorm = avx512_layernorm,
    .gelu_tanh = avx512_gelu_tanh,
    .gelu_erf = avx512_gelu_erf,
    .swiglu = avx512_swiglu,
    .add = avx512_add,
    .softmax = simd_softmax,
    .rope = attn_scalar_rope,
    .dequant_row = avx512_dequant_row,
    .normals = avx512_normals,
};
