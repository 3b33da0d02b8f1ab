// simd/kernels.h - the kernel table. One implementation per instruction set
// (scalar.c is the reference; avx2.c, avx512.c, neon.c are fast paths),
// chosen once at start-up by CPU detection (attn_kernels_init). Kernels know
// nothing of models: they take pointers, sizes and strides.
//
// Determinism: for a given path every output element is computed by the same
// sequence of floating-point operations whatever the sizes, ranges and tile
// positions, so splitting work across threads (by rows or column ranges)
// never changes a bit.
#ifndef ATTN_KERNELS_H
#define ATTN_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "simd/quant.h"

typedef struct {
    const char *name; // "scalar", "avx2", "avx512", "neon"

    // C[m][n] = sum_k A[m][k] * W[n][k] (+ bias[n] if bias), for m in [0,M),
    // n in [n0,n1). A is f32 with row stride lda (floats); W has K columns of
    // weight type wtype (ATTN_F32/F16/BF16 or a quantized type of simd/quant.h,
    // then K a multiple of its block), rows
    // of attn_type_row_bytes(wtype, K) bytes; C has row stride ldc (floats).
    // M == 1 is the matrix-vector case (decode) and must be fast too.
    // Every element is computed by the same operations whatever M, n0, n1:
    // one chain of fused multiply-adds over k = 0..K-1 from +0, then + bias
    // (scalar: one chain in double, rounded to float, then + bias: the
    // reference; see tests/parity/accuracy_large_scores.py for what float
    // chains cost); except avx512 on Q8_0, Q4_K, Q6_K and F16 (K % 32 == 0),
    // the dot form: 16 chains, lane l over k = l, l+16, ..., each from +0,
    // summed by a fixed tree, then + bias (simd/avx512.c).
    // Speed: M > 4 packs 48 (avx512; avx2 16, neon 12) weight rows at a time
    // into a per-thread f32 panel in cache, so column ranges that are
    // multiples of 48 waste nothing on any path; A is read in place (the dot
    // form: reordered once per call, or once per mark, below).
    void (*matmul)(const float *A, int lda, const void *W, uint32_t wtype, const float *bias,
                   float *C, int ldc, int M, int K, int n0, int n1);

    // Causal attention of one head for nq queries at positions q0..q0+nq-1
    // against nk = q0 + nq keys.
    //   q: (nq, hd) stride qs;  k, v: (nk, hd) strides ks, vs (floats)
    //   probs: (nq, nk) row-major output, softmax(scale * q.k) with keys j > q0+i
    //          set to exactly 0;  out: (nq, hd) stride os = probs @ v.
    void (*attention)(const float *q, int qs, const float *k, int ks, const float *v, int vs,
                      int nq, int q0, int hd, float scale, float *probs, float *out, int os);

    // Exact mode (attn_kernels_exact): matmul with the scalar reference's
    // operations (one chain in double per element, so its bits), and
    // attention with its scores computed so; 2-3x the float prefill's time on
    // AVX-512 (tests/parity/accuracy_large_scores.py: the error they remove).
    void (*matmul_exact)(const float *A, int lda, const void *W, uint32_t wtype, const float *bias,
                         float *C, int ldc, int M, int K, int n0, int n1);
    void (*attention_exact)(const float *q, int qs, const float *k, int ks, const float *v, int vs,
                            int nq, int q0, int hd, float scale, float *probs, float *out, int os);

    // Row-wise ops over n floats.
    void (*rmsnorm)(float *out, const float *x, const float *w, int n, float eps);
    void (*layernorm)(float *out, const float *x, const float *w, const float *b, int n, float eps); // b may be NULL
    void (*gelu_tanh)(float *x, int n);
    void (*gelu_erf)(float *x, int n);
    void (*swiglu)(float *gate, const float *up, int n); // gate[i] = silu(gate[i]) * up[i]
    void (*add)(float *y, const float *x, int n);        // y += x
    void (*softmax)(float *x, int n);
    // RoPE on n_heads heads of head_dim floats (stride head_dim) at position pos,
    // rotating the first rot_dims dims of each head; freqs[i] = theta^(-2i/rot_dims)
    // for i < rot_dims/2. halves=0: pairs (x[2i], x[2i+1]); halves=1: (x[i], x[i+rot_dims/2]).
    void (*rope)(float *x, int n_heads, int head_dim, int rot_dims, int pos, const float *freqs, int halves);
    // Convert n weights of a row of type wtype to f32 (embedding lookup).
    void (*dequant_row)(const void *W, uint32_t wtype, float *out, int n);
    // w[i] = (float)(std * normal number first + i of the seeded N(0, 1)
    // stream), i < n (a random init's weights). Number k of splitmix64's
    // stream is mix(seed + (k + 1) * 0x9e3779b97f4a7c15); normals 2p and
    // 2p + 1 are Box-Muller's r cos a and r sin a of numbers x = 2p, y = 2p + 1:
    // u1 = ((x >> 11) + 1) 2^-53 in (0, 1], r = sqrt(-2 ln u1), a = 2 pi
    // (y >> 11) 2^-53, ln, sin and cos as series in double (attn_scalar_normals,
    // within 1e-10 of libm's): the same bits on every path and platform.
    void (*normals)(uint64_t seed, uint64_t first, size_t n, double std, float *w);
} attn_kernels;

extern const attn_kernels attn_kernels_scalar;
extern const attn_kernels attn_kernels_avx2;   // x86-64 builds only
extern const attn_kernels attn_kernels_avx512; // x86-64 builds only
extern const attn_kernels attn_kernels_neon;   // aarch64 builds only

// The chosen path; valid after attn_kernels_init().
extern const attn_kernels *attn_k;
// Pick the best path the CPU supports, or the one named by ATTN_SIMD
// (scalar|avx2|avx512|neon). Returns 0, or ATTN_EINPUT with a message if the
// named path is unknown or the CPU lacks it. Safe to call more than once.
int attn_kernels_init(void);
// Force a path by name (tests). Same errors as above.
int attn_kernels_select(const char *name);
// Exact mode on (1) or off (0) for the chosen path and any chosen later:
// attn_k's matmul and attention become matmul_exact and attention_exact.
void attn_kernels_exact(int on);
// A promise by the caller of matmul on this thread: while its mark is a
// nonzero m, A's contents at a given address (lda, M, K) do not change, so
// a path may reuse what it made of A in an earlier call (avx512's dot form
// reorders A's rows once per thread for a group of products that share A,
// not once per call). attn_kernels_new_mark gives a mark no other call in
// the process got; 0 (the default) promises nothing.
uint64_t attn_kernels_new_mark(void);
void attn_kernels_set_mark(uint64_t mark);
uint64_t attn_kernels_mark(void);
// Column ranges for a pool of nt threads: N columns in whole blocks of
// ATTN_COL_BLOCK (a multiple of every path's panel and GEMV step, so no range
// but the last ends in a part-filled panel), each item taking 1 / (2 nt) of
// the blocks left, at least one ("guided"): threads that claim items in turn
// finish within about a block of each other, even on a machine whose cores
// are not all ours. Item i of attn_col_items(N, nt) is [*n0, *n1).
#define ATTN_COL_BLOCK 48
static inline int attn_col_next(int left, int nt) { // blocks of the next item, left > 0
    int b = left / (2 * nt);
    return b > 0 ? b : 1;
}
static inline int attn_col_items(int N, int nt) {
    int left = (N + ATTN_COL_BLOCK - 1) / ATTN_COL_BLOCK, n = 0;
    for (; left > 0; n++) left -= attn_col_next(left, nt);
    return n;
}
static inline void attn_col_range(int N, int nt, int i, int *n0, int *n1) {
    int left = (N + ATTN_COL_BLOCK - 1) / ATTN_COL_BLOCK, b0 = 0;
    for (int k = 0; k < i; k++) {
        int b = attn_col_next(left, nt);
        b0 += b, left -= b;
    }
    *n0 = b0 * ATTN_COL_BLOCK;
    *n1 = (b0 + attn_col_next(left, nt)) * ATTN_COL_BLOCK;
    if (*n1 > N) *n1 = N;
}

// Every path this build has and this CPU can run, NULL-terminated.
const attn_kernels **attn_kernels_available(void);

// The scalar kernels by name, for fast paths that reuse one where the work is
// too small to vectorise (internal to simd/).
void attn_scalar_matmul(const float *A, int lda, const void *W, uint32_t wtype, const float *bias,
                        float *C, int ldc, int M, int K, int n0, int n1);
void attn_scalar_attention(const float *q, int qs, const float *k, int ks, const float *v, int vs,
                           int nq, int q0, int hd, float scale, float *probs, float *out, int os);
void attn_scalar_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
void attn_scalar_layernorm(float *out, const float *x, const float *w, const float *b, int n, float eps);
void attn_scalar_gelu_tanh(float *x, int n);
void attn_scalar_gelu_erf(float *x, int n);
void attn_scalar_swiglu(float *gate, const float *up, int n);
void attn_scalar_add(float *y, const float *x, int n);
void attn_scalar_softmax(float *x, int n);
void attn_scalar_rope(float *x, int n_heads, int head_dim, int rot_dims, int pos, const float *freqs, int halves);
void attn_scalar_dequant_row(const void *W, uint32_t wtype, float *out, int n);
void attn_scalar_normals(uint64_t seed, uint64_t first, size_t n, double std, float *w);
// attn_kernels.normals on a path that makes `per` normals at a time: run(seed,
// p, std, out) writes normals 2p .. 2p + per - 1; the stretches before the
// first multiple of per and after the last whole run by the scalar path
// (the same bits).
static inline void attn_normals_runs(uint64_t seed, uint64_t first, size_t n, double std, float *w, int per,
                                     void (*run)(uint64_t seed, uint64_t p, double std, float *out)) {
    uint64_t a = (first + per - 1) / per * per, end = first + n;
    if (a >= end || end - a < (uint64_t)per) {
        attn_scalar_normals(seed, first, n, std, w);
        return;
    }
    attn_scalar_normals(seed, first, (size_t)(a - first), std, w);
    uint64_t j = a;
    for (; j + per <= end; j += per) run(seed, j / 2, std, w + (j - first));
    attn_scalar_normals(seed, j, (size_t)(end - j), std, w + (j - first));
}

// The normals' series (attn_scalar_normals): ln m = 2 s (1 + s^2/3 + ...) for
// s = (m - 1) / (m + 1), |s| <= 0.172 (coefficients 1/13 down to 1/3); sin
// and cos on [-pi/4, pi/4] by Taylor's terms (x^11 / 11!, x^12 / 12! last),
// highest power first.
static const double attn_ln_series[6] = { 1.0 / 13, 1.0 / 11, 1.0 / 9, 1.0 / 7, 1.0 / 5, 1.0 / 3 };
static const double attn_sin_series[5] = { -1.0 / 39916800, 1.0 / 362880, -1.0 / 5040, 1.0 / 120, -1.0 / 6 };
static const double attn_cos_series[6] = { 1.0 / 479001600, -1.0 / 3628800, 1.0 / 40320, -1.0 / 720, 1.0 / 24, -0.5 };
#define ATTN_SPLITMIX_GAMMA 0x9e3779b97f4a7c15ull
#define ATTN_LN2 0.6931471805599453
#define ATTN_SQRT2 1.4142135623730951
#define ATTN_PI_2 1.5707963267948966

// sum_i x[i]^2 in double, in a fixed order: every path's rmsnorm.
double attn_sumsq(const float *x, int n);

// For gelu_erf on the fast paths: erfc(z) = t exp(-z^2 + P(t)), t = 1/(1 + z/2),
// z >= 0, P's coefficients highest power first (our least-squares fit to erfc
// on [0, 10]; with z^2 split so that its rounding does not reach the
// exponent, erfc is within about 1.2e-6 relative in f32 for z < 4).
#define ATTN_ERFC_DEG 10
#define ATTN_ERFC_P { -0.1322232038f, 0.9186638594f, -2.660632610f, 4.066195965f, -3.408038855f, \
                      1.589802146f, -0.6849140525f, 0.2197799981f, 0.3553099036f, 1.001627684f, -1.265570641f }

// f16 / bf16 helpers shared by the kernels (exact conversions).
static inline float attn_f16_to_f32(uint16_t h) { // one home: attn_h2f in simd/quant.h
    uint8_t b[2];
    memcpy(b, &h, 2);
    return attn_h2f(b);
}
static inline float attn_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = { (uint32_t)h << 16 };
    return v.f;
}

#endif
