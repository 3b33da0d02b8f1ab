// simd/neon.c - the AArch64 NEON path: 4-lane vectors, 32 registers, fp16
// conversion (baseline AArch64).
//
// Order of operations (what makes results independent of sizes and threads),
// as on the x86 paths: F32 weights (and F16/BF16 rows of K % 4 != 0): every
// matmul output is one chain of fused multiply-adds over k = 0..K-1 from +0,
// then + bias.
// - GEMM (M > GEMV_MAX_M): 12 weight rows are converted and transposed into a
//   per-thread panel [k][12] in cache; a register tile of 8 rows x 12 columns
//   runs over k with A broadcast in place.
// - GEMV (M <= GEMV_MAX_M): 8 weight rows x 4 k are loaded, converted and
//   transposed in registers, then chained with broadcast A.
// Every other type keeps the "dot form" (simd/drivers.h; the section at the
// end): 4 chains, lane l over k = l, l+4, ..., summed by one fixed tree.
// The drivers shared with the other fast paths (GEMV loop, panels, matmul,
// attention) are in simd/drivers.h, included at the end.
#include <arm_neon.h>
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
#define MR 8  // GEMM tile rows
#define NR 12 // GEMM tile columns (three vectors)
// Exact mode (simd/drivers.h): 2 doubles a vector, tiles of 8 rows x 6 columns.
typedef float64x2_t XD;
#define XL 2
#define XR 8
#define XV 3
INLINE XD xd_zero(void) { return vdupq_n_f64(0.0); }
INLINE XD xd_set1(double a) { return vdupq_n_f64(a); }
INLINE XD xd_fma(XD a, XD b, XD c) { return vfmaq_f64(c, a, b); }
INLINE XD xd_from(const float *p) { return vcvt_f64_f32(vld1_f32(p)); }
INLINE void xd_store(double *p, XD v) { vst1q_f64(p, v); }

// ---------------------------------------------------------------- weights

// A run of 16 weights of a quantized type (attn_dq_at(..., j), j % 16 == 0)
// into w.val[0..3]: the bytes worked on 16 at a time, then converted and
// scaled; the same operations, so the same bits, as attn_dq_block.
INLINE float32x4x4_t dq16_run(attn_dq_run r) {
    uint8x16_t v = vandq_u8(vshlq_u8(vld1q_u8(r.lo), vdupq_n_s8((int8_t)-r.lo_sh)), vdupq_n_u8(r.lo_mask));
    if (r.hi) {
        uint8x16_t h = vandq_u8(vshlq_u8(vld1q_u8(r.hi), vdupq_n_s8((int8_t)-r.hi_sh)), vdupq_n_u8(r.hi_mask));
        v = vorrq_u8(v, vshlq_u8(h, vdupq_n_s8((int8_t)r.hi_pos)));
    }
    if (r.hbits & 0xffff) { // bit i -> 0x10 in byte i
        const uint8x16_t bit = { 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128 };
        uint8x16_t x = vcombine_u8(vdup_n_u8((uint8_t)(r.hbits & 255)), vdup_n_u8((uint8_t)(r.hbits >> 8 & 255)));
        v = vorrq_u8(v, vandq_u8(vceqq_u8(vandq_u8(x, bit), bit), vdupq_n_u8(0x10)));
    }
    v = vsubq_u8(v, vdupq_n_u8(r.bias));
    if (r.lut) v = vqtbl1q_u8(vreinterpretq_u8_s8(vld1q_s8(attn_iq4_kvalues)), v);
    int16x8_t lo = vmovl_s8(vget_low_s8(vreinterpretq_s8_u8(v))), hi = vmovl_high_s8(vreinterpretq_s8_u8(v));
    int32x4_t q[4] = { vmovl_s16(vget_low_s16(lo)), vmovl_high_s16(lo), vmovl_s16(vget_low_s16(hi)), vmovl_high_s16(hi) };
    float32x4x4_t w;
    // + m or - m: d * q is exact there (d of at most 17 significant bits, q of
    // 5), so one fused multiply-add rounds as the multiply and the add do
    float32x4_t m = vdupq_n_f32(r.mode == ATTN_DQ_SUB ? -r.m : r.m);
    UNROLL
    for (int i = 0; i < 4; i++)
        w.val[i] = r.mode == ATTN_DQ_MUL ? vmulq_f32(vdupq_n_f32(r.d), vcvtq_f32_s32(q[i]))
                                         : vfmaq_f32(m, vdupq_n_f32(r.d), vcvtq_f32_s32(q[i]));
    return w;
}

// Weights k..k+15 of a row of a quantized type (k % 16 == 0): one copy per
// type of the run's decoding (the type a constant in each), out of line for
// the panels and the cold paths (the dot form's GEMV inlines dq16_run).
static __attribute__((noinline)) float32x4x4_t dq16(const uint8_t *row, uint32_t t, int k) {
    switch (t) {
#define DQ_CASE(T) \
    case T: return dq16_run(attn_dq_at(row + (size_t)(k / attn_qblk(T)) * (size_t)attn_qbytes(T), T, k % attn_qblk(T)));
        ATTN_QTYPES(DQ_CASE) DQ_CASE(ATTN_Q8_0)
#undef DQ_CASE
    default: return (float32x4x4_t){ { vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0) } };
    }
}

// 4 consecutive weights k..k+3 of a row as f32 (k % 4 == 0 for Q8_0).
INLINE float32x4_t load4(const uint8_t *row, uint32_t wtype, int k) {
    switch (wtype) {
    case ATTN_F16: {
        uint16x4_t h = vld1_u16((const uint16_t *)(row + 2 * (size_t)k));
        return vcvt_f32_f16(vreinterpret_f16_u16(h));
    }
    case ATTN_BF16:
        return vreinterpretq_f32_u32(vshlq_n_u32(vmovl_u16(vld1_u16((const uint16_t *)(row + 2 * (size_t)k))), 16));
    case ATTN_Q8_0: {
        const uint8_t *blk = row + (size_t)(k / 32) * 34;
        uint16_t d;
        uint32_t q4;
        memcpy(&d, blk, 2);
        memcpy(&q4, blk + 2 + k % 32, 4);
        int16x8_t q16 = vmovl_s8(vreinterpret_s8_u32(vdup_n_u32(q4)));
        float32x4_t q = vcvtq_f32_s32(vmovl_s16(vget_low_s16(q16)));
        return vmulq_n_f32(q, attn_f16_to_f32(d));
    }
    case ATTN_F32: return vld1q_f32((const float *)row + k);
    default: return dq16(row, wtype, k & ~15).val[k % 16 / 4]; // the other quantized types: a quarter of a run
    }
}

// The first n (< 4) weights from k, zeros after (F32/F16/BF16: Q8_0 rows are whole blocks).
INLINE float32x4_t load4_part(const uint8_t *row, uint32_t wtype, int k, int n) {
    uint8_t buf[16] = { 0 };
    size_t es = wtype == ATTN_F32 ? 4 : 2;
    memcpy(buf, row + es * (size_t)k, (size_t)n * es);
    return wtype == ATTN_F32 ? load4(buf, ATTN_F32, 0) : wtype == ATTN_BF16 ? load4(buf, ATTN_BF16, 0) : load4(buf, ATTN_F16, 0);
}

INLINE float32x4_t load4_any(const uint8_t *row, uint32_t wtype, int k, int n) {
    return n >= 4 ? load4(row, wtype, k) : load4_part(row, wtype, k, n);
}

INLINE float32x4_t loadf4(const float *p, int n) {
    if (n >= 4) return vld1q_f32(p);
    float tmp[4] = { 0 };
    memcpy(tmp, p, sizeof(float) * (n > 0 ? n : 0));
    return vld1q_f32(tmp);
}
INLINE void store4(float *p, float32x4_t v, int n) {
    if (n >= 4) { vst1q_f32(p, v); return; }
    float tmp[4];
    vst1q_f32(tmp, v);
    memcpy(p, tmp, sizeof(float) * (n > 0 ? n : 0));
}

static void neon_dequant_row(const void *W, uint32_t wtype, float *out, int n) {
    if (attn_is_quant(wtype)) { // (rows of whole blocks: n % 32 == 0)
        for (int k = 0; k < n; k += 16) vst1q_f32_x4(out + k, dq16(W, wtype, k));
        return;
    }
    for (int k = 0; k < n; k += 4) store4(out + k, load4_any(W, wtype, k, n - k), n - k);
}

// r[i] lane j -> r[j] lane i
INLINE void transpose4(float32x4_t r[4]) {
    float32x4_t t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]);
    float32x4_t t2 = vtrn1q_f32(r[2], r[3]), t3 = vtrn2q_f32(r[2], r[3]);
    r[0] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[1] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
    r[2] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[3] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}

// Columns k0..k0+kn-1 of nr (<= 4) weight rows as col[c] (zeros beyond).
INLINE void load_block(const uint8_t *W, size_t ldw, uint32_t wtype, int k0, int kn, int nr, float32x4_t col[4]) {
    if (nr == 4 && kn == 4) {
        UNROLL
        for (int r = 0; r < 4; r++) col[r] = load4(W + (size_t)r * ldw, wtype, k0);
    } else {
        for (int r = 0; r < 4; r++) col[r] = r < nr ? load4_any(W + (size_t)r * ldw, wtype, k0, kn) : vdupq_n_f32(0);
    }
    transpose4(col);
}

// ---------------------------------------------------------------- GEMV

// C[m][n0..n0+nr) for nr <= 8: two groups of 4 rows.
INLINE void gemv_rows(const float *A, int lda, const uint8_t *W, size_t ldw, uint32_t wtype, const float *bias,
                      float *C, int ldc, int M, int K, int nr, const uint8_t *pre, int pre_n) {
    float32x4_t acc[GEMV_MAX_M][2];
    UNROLL
    for (int m = 0; m < GEMV_MAX_M; m++) acc[m][0] = acc[m][1] = vdupq_n_f32(0);
    int nr0 = nr < 4 ? nr : 4, nr1 = nr - 4 < 0 ? 0 : nr - 4;
    size_t row_bytes = wtype == ATTN_F32 ? (size_t)K * 4 : attn_type_row_bytes(wtype, (uint64_t)K);
    for (int k0 = 0; k0 < K; k0 += 4) {
        int kn = K - k0 < 4 ? K - k0 : 4;
        if (k0 % 16 == 0) { // the next group of rows, at the same place (see avx512.c)
            size_t off = row_bytes * (size_t)k0 / (size_t)K;
            for (int r = 0; r < pre_n; r++) __builtin_prefetch(pre + (size_t)r * ldw + off, 0, 2);
        }
        float32x4_t c0[4], c1[4];
        load_block(W, ldw, wtype, k0, kn, nr0, c0);
        if (nr1) load_block(W + 4 * ldw, ldw, wtype, k0, kn, nr1, c1);
        else c1[0] = c1[1] = c1[2] = c1[3] = vdupq_n_f32(0);
        for (int c = 0; c < kn; c++)
            UNROLL
            for (int m = 0; m < GEMV_MAX_M; m++)
                if (m < M) {
                    float a = A[(size_t)m * lda + k0 + c];
                    acc[m][0] = vfmaq_n_f32(acc[m][0], c0[c], a);
                    acc[m][1] = vfmaq_n_f32(acc[m][1], c1[c], a);
                }
    }
    float32x4_t b0 = bias ? loadf4(bias, nr0) : vdupq_n_f32(0), b1 = bias && nr1 ? loadf4(bias + 4, nr1) : vdupq_n_f32(0);
    UNROLL
    for (int m = 0; m < M; m++) {
        store4(C + (size_t)m * ldc, vaddq_f32(acc[m][0], b0), nr0);
        if (nr1) store4(C + (size_t)m * ldc + 4, vaddq_f32(acc[m][1], b1), nr1);
    }
}

// ---------------------------------------------------------------- GEMM

// The weights (n0 + c, k) for c < nc (<= 12), 0 for c >= nc: at P[k][c]
// where lane is 0 (pack_panel), else lane l = k % 4's (the dot form, K % 4
// == 0) at P[l * lane + k / 4 * NR + c].
INLINE void pack_rows(float *P, const uint8_t *W, size_t ldw, uint32_t wtype, int K, int nc, size_t lane) {
    // rows of the quantized types a run of 16 at a time (dq16; K % 32 == 0), the others 4
    const int step = attn_is_quant(wtype) ? 16 : 4;
    for (int g = 0; g < NR / 4; g++) {
        int nr = nc - 4 * g;
        nr = nr < 0 ? 0 : nr > 4 ? 4 : nr;
        const uint8_t *Wg = W + (size_t)(4 * g) * ldw;
        for (int k0 = 0; k0 < K; k0 += step) {
            float32x4x4_t run[4];
            if (step == 16)
                for (int r = 0; r < 4; r++)
                    run[r] = r < nr ? dq16(Wg + (size_t)r * ldw, wtype, k0) : (float32x4x4_t){ { vdupq_n_f32(0) } };
            for (int k = k0; k < k0 + step && k < K; k += 4) {
                int kn = K - k < 4 ? K - k : 4;
                float32x4_t col[4];
                if (step == 16) {
                    for (int r = 0; r < 4; r++) col[r] = r < nr ? run[r].val[(k - k0) / 4] : vdupq_n_f32(0);
                    transpose4(col);
                } else if (nr) load_block(Wg, ldw, wtype, k, kn, nr, col);
                else col[0] = col[1] = col[2] = col[3] = vdupq_n_f32(0);
                for (int c = 0; c < kn; c++)
                    vst1q_f32(lane ? P + (size_t)c * lane + (size_t)k / 4 * NR + 4 * g : P + (size_t)(k + c) * NR + 4 * g,
                              col[c]);
            }
        }
    }
}

static void pack_panel(float *P, const uint8_t *W, size_t ldw, uint32_t wtype, int K, int nc) {
    pack_rows(P, W, ldw, wtype, K, nc, 0);
}

INLINE void gemm_tile(int R, const float *A, int lda, const float *P, int K, const float *bias, float *C, int ldc,
                      int nc) {
    float32x4_t acc[MR][3];
    UNROLL
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = acc[r][2] = vdupq_n_f32(0);
    for (int k = 0; k < K; k++) {
        const float *p = P + (size_t)k * NR;
        float32x4_t w0 = vld1q_f32(p), w1 = vld1q_f32(p + 4), w2 = vld1q_f32(p + 8);
        UNROLL
        for (int r = 0; r < R; r++) {
            float32x4_t a = vld1q_dup_f32(A + (size_t)r * lda + k);
            acc[r][0] = vfmaq_f32(acc[r][0], a, w0);
            acc[r][1] = vfmaq_f32(acc[r][1], a, w1);
            acc[r][2] = vfmaq_f32(acc[r][2], a, w2);
        }
    }
    float32x4_t b[3];
    UNROLL
    for (int q = 0; q < 3; q++) b[q] = bias ? loadf4(bias + 4 * q, nc - 4 * q) : vdupq_n_f32(0);
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int q = 0; q < 3; q++)
            if (nc > 4 * q) store4(C + (size_t)r * ldc + 4 * q, vaddq_f32(acc[r][q], b[q]), nc - 4 * q);
}

// ---------------------------------------------------------------- math

INLINE float hsum(float32x4_t v) { // fixed tree: (v0 + v2) + (v1 + v3)
    float32x2_t h = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(h, 0) + vget_lane_f32(h, 1);
}

// e^x within 2 ulp on [-87.3, 88.3]; 0 below.
INLINE float32x4_t vexp(float32x4_t x) {
    uint32x4_t zero = vcltq_f32(x, vdupq_n_f32(-87.33f));
    x = vmaxq_f32(x, vdupq_n_f32(-87.33f));
    x = vminq_f32(x, vdupq_n_f32(88.37f));
    float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), zero));
}

// Lanes >= n set to zero.
INLINE float32x4_t keep(float32x4_t v, int n) {
    if (n >= 4) return v;
    static const int32_t idx[4] = { 0, 1, 2, 3 };
    uint32x4_t m = vcltq_s32(vld1q_s32(idx), vdupq_n_s32(n));
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), m));
}

static void softmax_scaled(float *x, int n, float scale) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i += 4) {
        float32x4_t v = vmulq_n_f32(loadf4(x + i, n - i), scale);
        store4(x + i, v, n - i);
        for (int l = 0; l < 4 && i + l < n; l++) mx = x[i + l] > mx ? x[i + l] : mx;
    }
    float32x4_t vm = vdupq_n_f32(mx), sum = vdupq_n_f32(0);
    for (int i = 0; i < n; i += 4) {
        float32x4_t e = keep(vexp(vsubq_f32(loadf4(x + i, n - i), vm)), n - i);
        store4(x + i, e, n - i);
        sum = vaddq_f32(sum, e);
    }
    float inv = 1.0f / hsum(sum);
    for (int i = 0; i < n; i += 4) store4(x + i, vmulq_n_f32(loadf4(x + i, n - i), inv), n - i);
}

// ---------------------------------------------------------------- attention

// out rows = probs rows @ V, chained over keys j < nj, 16 columns at a time.
#define PV_R 6
INLINE void pv_tile(int R, const float *p, int ps, const float *v, int vs, int nj, int hd, float *out, int os) {
    for (int d0 = 0; d0 < hd; d0 += 16) {
        int nd = hd - d0 < 16 ? hd - d0 : 16;
        float32x4_t acc[PV_R][4];
        UNROLL
        for (int r = 0; r < R; r++)
            UNROLL
            for (int q = 0; q < 4; q++) acc[r][q] = vdupq_n_f32(0);
        for (int j = 0; j < nj; j++) {
            float32x4_t vv[4];
            UNROLL
            for (int q = 0; q < 4; q++) vv[q] = loadf4(v + (size_t)j * vs + d0 + 4 * q, nd - 4 * q);
            UNROLL
            for (int r = 0; r < R; r++) {
                float pr = p[(size_t)r * ps + j];
                UNROLL
                for (int q = 0; q < 4; q++) acc[r][q] = vfmaq_n_f32(acc[r][q], vv[q], pr);
            }
        }
        UNROLL
        for (int r = 0; r < R; r++)
            UNROLL
            for (int q = 0; q < 4; q++) store4(out + (size_t)r * os + d0 + 4 * q, acc[r][q], nd - 4 * q);
    }
}

// ---------------------------------------------------------------- row ops

static void neon_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    float r = 1.0f / sqrtf((float)(attn_sumsq(x, n) / n) + eps);
    for (int i = 0; i < n; i += 4) store4(out + i, vmulq_f32(vmulq_n_f32(loadf4(x + i, n - i), r), loadf4(w + i, n - i)), n - i);
}

static void neon_layernorm(float *out, const float *x, const float *w, const float *b, int n, float eps) {
    float32x4_t s = vdupq_n_f32(0);
    for (int i = 0; i < n; i += 4) s = vaddq_f32(s, loadf4(x + i, n - i));
    float mean = hsum(s) / (float)n;
    float32x4_t vm = vdupq_n_f32(mean), var = vdupq_n_f32(0);
    for (int i = 0; i < n; i += 4) {
        float32x4_t d = keep(vsubq_f32(loadf4(x + i, n - i), vm), n - i);
        var = vfmaq_f32(var, d, d);
    }
    float r = 1.0f / sqrtf(hsum(var) / (float)n + eps);
    for (int i = 0; i < n; i += 4) {
        float32x4_t y = vmulq_f32(vmulq_n_f32(vsubq_f32(loadf4(x + i, n - i), vm), r), loadf4(w + i, n - i));
        if (b) y = vaddq_f32(y, loadf4(b + i, n - i));
        store4(out + i, y, n - i);
    }
}

static void neon_gelu_tanh(float *x, int n) {
    for (int i = 0; i < n; i += 4) {
        float32x4_t v = loadf4(x + i, n - i);
        float32x4_t u = vmulq_n_f32(vfmaq_f32(v, vmulq_n_f32(v, 0.044715f), vmulq_f32(v, v)), 0.7978845608028654f);
        float32x4_t e = vexp(vmulq_n_f32(u, -2.0f));
        store4(x + i, vdivq_f32(v, vaddq_f32(vdupq_n_f32(1.0f), e)), n - i);
    }
}

// 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2), erfc as in kernels.h.
static void neon_gelu_erf(float *x, int n) {
    static const float P[] = ATTN_ERFC_P;
    for (int i = 0; i < n; i += 4) {
        float32x4_t v = loadf4(x + i, n - i);
        float32x4_t z = vmulq_n_f32(vabsq_f32(v), 0.7071067811865476f);
        float32x4_t t = vdivq_f32(vdupq_n_f32(1.0f), vfmaq_n_f32(vdupq_n_f32(1.0f), z, 0.5f));
        float32x4_t p = vdupq_n_f32(P[0]);
        for (int j = 1; j <= ATTN_ERFC_DEG; j++) p = vfmaq_f32(vdupq_n_f32(P[j]), p, t);
        // z^2 = zh^2 (exact: zh has 6 fraction bits) + (z - zh)(z + zh)
        float32x4_t zh = vmulq_n_f32(vrndnq_f32(vmulq_n_f32(z, 64.0f)), 1.0f / 64);
        float32x4_t d = vmulq_f32(vsubq_f32(z, zh), vaddq_f32(z, zh));
        float32x4_t e = vmulq_f32(vmulq_f32(t, vexp(vnegq_f32(vmulq_f32(zh, zh)))), vexp(vsubq_f32(p, d)));
        uint32x4_t pos = vcgeq_f32(v, vdupq_n_f32(0));
        e = vbslq_f32(pos, vsubq_f32(vdupq_n_f32(2.0f), e), e); // 1 + erf(x / sqrt 2)
        store4(x + i, vmulq_f32(vmulq_n_f32(v, 0.5f), e), n - i);
    }
}

static void neon_swiglu(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i += 4) {
        float32x4_t g = loadf4(gate + i, n - i);
        float32x4_t s = vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), vexp(vnegq_f32(g))));
        store4(gate + i, vmulq_f32(s, loadf4(up + i, n - i)), n - i);
    }
}

static void neon_add(float *y, const float *x, int n) {
    for (int i = 0; i < n; i += 4) store4(y + i, vaddq_f32(loadf4(y + i, n - i), loadf4(x + i, n - i)), n - i);
}

// ---------------------------------------------------------------- dot form
//
// Every type but F32 (F16 and BF16 where K % 4 == 0: dot_order) keeps the
// dot form of simd/drivers.h on this path: 4 chains, lane l over k = l, l+4,
// ..., then hsum's tree ((s_0 + s_2) + (s_1 + s_3)), then + bias. A row's
// consecutive weights decode straight into vectors (load4, dq16_run), so the GEMV
// chains dot_dr rows at once with no transpose, where the one chain per
// output made a GEMV step two vector chains over 8 rows.
#define DOT_LANES 4
#define DOT_TYPES(X) X(ATTN_F16) X(ATTN_BF16) X(ATTN_Q8_0) ATTN_QTYPES(X)

#include "simd/drivers.h"

static int dot_order(uint32_t t, int K) { return t != ATTN_F32 && K % 4 == 0; }

// Weight rows per GEMV step: independent chains for each row of A, within
// the 32 registers.
#define DR_MAX 8
INLINE int dot_dr(uint32_t t, int M) {
    (void)t;
    return M == 1 ? 8 : 4;
}

INLINE void dot_rows(const float *A, int lda, const uint8_t *W, size_t ldw, uint32_t t, const float *bias, float *C,
                     int ldc, int M, int K, int nr, const uint8_t *pre, int pre_n) {
    const int dr = dot_dr(t, M); // (a constant where t and M are)
    float32x4_t acc[GEMV_MAX_M][DR_MAX];
    const uint8_t *row[DR_MAX];
    UNROLL
    for (int r = 0; r < dr; r++) {
        row[r] = W + (size_t)(r < nr ? r : nr - 1) * ldw; // rows past nr: computed, not stored
        UNROLL
        for (int m = 0; m < GEMV_MAX_M; m++) acc[m][r] = vdupq_n_f32(0);
    }
    size_t row_bytes = attn_type_row_bytes(t, (uint64_t)K), next = 0; // the next rows' bytes before next are prefetched
    // weights decoded at once: 4 (load4) for F16 and BF16, else a run of 16 (dq16_run)
    const int step = t == ATTN_F16 || t == ATTN_BF16 ? 4 : 16, blk = attn_qblk(t), bytes = attn_qbytes(t);
    for (int k = 0; k < K; k += step) {
        for (size_t off = row_bytes * (size_t)k / (size_t)K; next <= off; next += 64)
            for (int i = 0; i < pre_n; i++) __builtin_prefetch(pre + (size_t)i * ldw + next, 0, 2);
        if (step == 4) {
            float32x4_t w[DR_MAX];
            UNROLL
            for (int r = 0; r < dr; r++) w[r] = load4(row[r], t, k);
            UNROLL
            for (int m = 0; m < GEMV_MAX_M; m++)
                if (m < M) {
                    float32x4_t a = vld1q_f32(A + (size_t)m * lda + k);
                    UNROLL
                    for (int r = 0; r < dr; r++) acc[m][r] = vfmaq_f32(acc[m][r], a, w[r]);
                }
            continue;
        }
        UNROLL
        for (int r = 0; r < dr; r++) {
            float32x4x4_t w = dq16_run(attn_dq_at(row[r] + (size_t)(k / blk) * (size_t)bytes, t, k % blk));
            UNROLL
            for (int m = 0; m < GEMV_MAX_M; m++)
                UNROLL
                for (int i = 0; i < 4; i++)
                    if (m < M) acc[m][r] = vfmaq_f32(acc[m][r], vld1q_f32(A + (size_t)m * lda + k + 4 * i), w.val[i]);
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

// A[m][k] for m < M at Ap[m * K + l * K / 4 + j], k = l + 4 j: 4 j at a time
// by a transpose in registers.
static void dot_reorder(const float *A, int lda, float *Ap, int M, int K) {
    int Kb = K / 4;
    for (int m = 0; m < M; m++) {
        const float *a = A + (size_t)m * lda;
        float *o = Ap + (size_t)m * K;
        int j = 0;
        for (; j + 4 <= Kb; j += 4) {
            float32x4_t r[4];
            UNROLL
            for (int t = 0; t < 4; t++) r[t] = vld1q_f32(a + 4 * (j + t));
            transpose4(r);
            UNROLL
            for (int l = 0; l < 4; l++) vst1q_f32(o + (size_t)l * Kb + j, r[l]);
        }
        for (; j < Kb; j++)
            for (int l = 0; l < 4; l++) o[(size_t)l * Kb + j] = a[4 * j + l];
    }
}

// The 4 lanes' tiles added in hsum's tree, + bias.
static void dot_combine(int R, const float *part, const float *bias, float *C, int ldc, int nc) {
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NR / 4; v++) {
            int left = nc - 4 * v;
            if (left <= 0) break;
            float32x4_t s[4];
            UNROLL
            for (int l = 0; l < 4; l++) s[l] = vld1q_f32(part + (size_t)l * MR * NR + r * NR + 4 * v);
            float32x4_t c = vaddq_f32(vaddq_f32(s[0], s[2]), vaddq_f32(s[1], s[3]));
            float32x4_t b = bias ? loadf4(bias + 4 * v, left) : vdupq_n_f32(0);
            store4(C + (size_t)r * ldc + 4 * v, vaddq_f32(c, b), left);
        }
}

const attn_kernels attn_kernels_neon = {
    .name = "neon",
    .matmul = simd_matmul_dot,
    .matmul_exact = simd_matmul_exact,
    .attention = simd_attention,
    .attention_exact = simd_attention_exact,
    .rmsnorm = neon_rmsnorm,
    .layernorm = neon_layernorm,
    .gelu_tanh = neon_gelu_tanh,
    .gelu_erf = neon_gelu_erf,
    .swiglu = neon_swiglu,
    .add = neon_add,
    .softmax = simd_softmax,
    .rope = attn_scalar_rope,
    .dequant_row = neon_dequant_row,
    .normals = attn_scalar_normals,
};
