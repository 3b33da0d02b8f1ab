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
    // Every element is one chain of fused multiply-adds over k = 0..K-1 from
    // +0, then + bias (scalar: separate multiply and add), whatever M, n0, n1.
    // Speed: M > 4 packs 48 (avx512; avx2 16, neon 12) weight rows at a time
    // into a per-thread f32 panel in cache, so column ranges that are
    // multiples of 48 waste nothing on any path; A is read in place.
    void (*matmul)(const float *A, int lda, const void *W, uint32_t wtype, const float *bias,
                   float *C, int ldc, int M, int K, int n0, int n1);

    // Causal attention of one head for nq queries at positions q0..q0+nq-1
    // against nk = q0 + nq keys.
    //   q: (nq, hd) stride qs;  k, v: (nk, hd) strides ks, vs (floats)
    //   probs: (nq, nk) row-major output, softmax(scale * q.k) with keys j > q0+i
    //          set to exactly 0;  out: (nq, hd) stride os = probs @ v.
    void (*attention)(const float *q, int qs, const float *k, int ks, const float *v, int vs,
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

#if defined(ATTN_SIMD_DRIVERS) && !defined(ATTN_SIMD_DRIVERS_DONE)
#define ATTN_SIMD_DRIVERS_DONE
#include <pthread.h>
// ---------------------------------------------------------------- drivers
// What every fast path does the same way, included at the end of avx2.c,
// avx512.c and neon.c (after #define ATTN_SIMD_DRIVERS) once they define:
//   GEMV_ROWS, GEMV_MAX_M  weight rows per gemv_rows call; most rows of A for GEMV
//   MR (6, 8 or 14), NR    GEMM register tile: rows of A, weight columns
//   PV_R (6)               rows of a probs @ V tile
//   gemv_rows(A, lda, W, ldw, wtype, bias, C, ldc, M, K, nr, pre, pre_n)
//       C[m][0..nr) for m < M (a constant), nr <= GEMV_ROWS weight rows at W,
//       prefetching the pre_n rows at pre
//   pack_panel(P, W, ldw, wtype, K, nc)   P[k][c] = weight (c, k), c < nc <= NR, 0 beyond
//   gemm_tile(R, A, lda, P, K, bias, C, ldc, nc)   C tile, R <= MR rows, nc <= NR columns
//   softmax_scaled(x, n, scale)           x *= scale, then softmax in place
//   pv_tile(R, p, ps, v, vs, nj, hd, out, os)     R <= PV_R rows of probs @ V over nj keys

// Per-thread panel buffer: NR weight columns x K, as [k][NR] f32, freed when
// its thread ends (pool workers come and go) through a pthread key.
static _Thread_local float *panel_buf;
static _Thread_local size_t panel_cap;
static pthread_key_t panel_key;
static pthread_once_t panel_once = PTHREAD_ONCE_INIT;
static void panel_key_init(void) { pthread_key_create(&panel_key, free); }

static float *panel_alloc(int K) {
    size_t need = (size_t)K * NR;
    if (need > panel_cap) {
        free(panel_buf);
        panel_buf = aligned_alloc(64, (need * 4 + 63) / 64 * 64);
        panel_cap = panel_buf ? need : 0;
        pthread_once(&panel_once, panel_key_init);
        pthread_setspecific(panel_key, panel_buf);
    }
    return panel_buf;
}

// Any M, in groups of up to GEMV_MAX_M rows (more than that only when there
// is no memory for a GEMM panel).
static void gemv(const float *A, int lda, const uint8_t *W, size_t ldw, uint32_t wtype, const float *bias,
                 float *C, int ldc, int M, int K, int n0, int n1) {
    for (int m = 0; m < M; m += GEMV_MAX_M) {
        const float *a = A + (size_t)m * lda;
        float *c = C + (size_t)m * ldc;
        for (int n = n0; n < n1; n += GEMV_ROWS) {
            int nr = n1 - n < GEMV_ROWS ? n1 - n : GEMV_ROWS, left = n1 - n - GEMV_ROWS;
            const uint8_t *w = W + (size_t)n * ldw, *pre = w + GEMV_ROWS * ldw;
            const float *b = bias ? bias + n : NULL;
            int pre_n = left < 0 ? 0 : left < GEMV_ROWS ? left : GEMV_ROWS;
            switch (M - m) { // constant M lets the compiler keep the accumulators in registers
            case 1: gemv_rows(a, lda, w, ldw, wtype, b, c + n, ldc, 1, K, nr, pre, pre_n); break;
            case 2: gemv_rows(a, lda, w, ldw, wtype, b, c + n, ldc, 2, K, nr, pre, pre_n); break;
            case 3: gemv_rows(a, lda, w, ldw, wtype, b, c + n, ldc, 3, K, nr, pre, pre_n); break;
            default: gemv_rows(a, lda, w, ldw, wtype, b, c + n, ldc, 4, K, nr, pre, pre_n); break;
            }
        }
    }
}

// One function per tile height, so each keeps its accumulators in registers.
typedef void (*tile_fn)(const float *A, int lda, const float *P, int K, const float *bias, float *C, int ldc, int nc);
#define TILE(R) \
    static void tile_##R(const float *A, int lda, const float *P, int K, const float *bias, float *C, int ldc, int nc) { \
        gemm_tile(R, A, lda, P, K, bias, C, ldc, nc); \
    }
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)
#if MR > 6
TILE(7) TILE(8)
#endif
#if MR > 8
TILE(9) TILE(10) TILE(11) TILE(12) TILE(13) TILE(14)
#endif
#undef TILE
static const tile_fn tiles[MR + 1] = { NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6,
#if MR > 6
                                       tile_7, tile_8,
#endif
#if MR > 8
                                       tile_9, tile_10, tile_11, tile_12, tile_13, tile_14,
#endif
};

// General matmul on weight rows of ldw bytes. row_lo >= 0: causal scores,
// where row m needs columns n <= row_lo + m only (tiles wholly above are
// skipped; what the others write above the diagonal is overwritten).
static void matmul_ld(const float *A, int lda, const uint8_t *W, size_t ldw, uint32_t wtype, const float *bias,
                      float *C, int ldc, int M, int K, int n0, int n1, int row_lo) {
    float *P = M > GEMV_MAX_M ? panel_alloc(K) : NULL;
    if (!P) { // small M, or no memory for a panel: the GEMV kernel gives the same bits
        gemv(A, lda, W, ldw, wtype, bias, C, ldc, M, K, n0, n1);
        return;
    }
    for (int n = n0; n < n1; n += NR) {
        int nc = n1 - n < NR ? n1 - n : NR;
        pack_panel(P, W + (size_t)n * ldw, ldw, wtype, K, nc);
        int m = 0;
        if (row_lo >= 0 && n > row_lo) m = (n - row_lo) / MR * MR; // rows before m see none of these columns
        for (; m < M; m += MR) {
            int R = M - m < MR ? M - m : MR;
            tiles[R](A + (size_t)m * lda, lda, P, K, bias ? bias + n : NULL, C + (size_t)m * ldc + n, ldc, nc);
        }
    }
}

static void simd_matmul(const float *A, int lda, const void *W, uint32_t wtype, const float *bias, float *C, int ldc,
                        int M, int K, int n0, int n1) {
    if (M <= 0 || n1 <= n0) return;
    matmul_ld(A, lda, W, attn_type_row_bytes(wtype, (uint64_t)K), wtype, bias, C, ldc, M, K, n0, n1, -1);
}

static void simd_softmax(float *x, int n) {
    if (n > 0) softmax_scaled(x, n, 1.0f);
}

// Scores with the matmul kernels (keys as f32 weight rows), softmax per row,
// then probs @ V: a row's bits do not depend on the rows computed with it.
static void simd_attention(const float *q, int qs, const float *k, int ks, const float *v, int vs, int nq, int q0,
                           int hd, float scale, float *probs, float *out, int os) {
    int nk = q0 + nq;
    matmul_ld(q, qs, (const uint8_t *)k, (size_t)ks * 4, ATTN_F32, NULL, probs, nk, nq, hd, 0, nk, q0);
    for (int i = 0; i < nq; i++) {
        float *p = probs + (size_t)i * nk;
        int nvis = q0 + i + 1;
        softmax_scaled(p, nvis, scale);
        if (nvis < nk) memset(p + nvis, 0, (size_t)(nk - nvis) * 4);
    }
    for (int i = 0; i < nq; i += PV_R) {
        int R = nq - i < PV_R ? nq - i : PV_R, nj = q0 + i + R;
        const float *p = probs + (size_t)i * nk;
        float *o = out + (size_t)i * os;
        switch (R) {
        case 1: pv_tile(1, p, nk, v, vs, nj, hd, o, os); break;
        case 2: pv_tile(2, p, nk, v, vs, nj, hd, o, os); break;
        case 3: pv_tile(3, p, nk, v, vs, nj, hd, o, os); break;
        case 4: pv_tile(4, p, nk, v, vs, nj, hd, o, os); break;
        case 5: pv_tile(5, p, nk, v, vs, nj, hd, o, os); break;
        default: pv_tile(6, p, nk, v, vs, nj, hd, o, os); break;
        }
    }
}
#endif
