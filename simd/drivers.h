// simd/drivers.h - what every fast path does the same way: the GEMV and GEMM
// drivers, the weight-panel buffer and attention built from the kernels.
// A code template, not a header: included once in each of avx2.c, avx512.c
// and neon.c, after each has defined:
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
// and for exact mode (attn_simd_exact), a vector XD of XL doubles:
//   XR, XV                 exact tile: rows of A, vectors of columns (XV * XL divides NR)
//   xd_zero(), xd_set1(d), xd_fma(a, b, c) = a * b + c, xd_from(p) (XL floats at p),
//   xd_store(p, v)
// A path that keeps the "dot form" for some weight types defines DOT_LANES
// and DOT_TYPES too (and may define DOT_GEMV_M(t), the most rows of A its
// GEMV takes for weights of type t; default GEMV_MAX_M), and after this file
// the functions declared in the section at the end; its matmul is then
// simd_matmul_dot.
#ifndef ATTN_SIMD_DRIVERS_H
#define ATTN_SIMD_DRIVERS_H
#include <pthread.h>

// Per-thread buffers, freed when their thread ends (pool workers come and
// go) through a pthread key: the weight panel (NR weight columns x K, as
// [k][NR] f32) and rows of A rewritten for a tile (rows_cap bytes: exact
// mode's XR rows in double; avx512's dot form, reordered rows). rows_of:
// whose rows, when they are A's reordered under a mark (attn_kernels_set_mark)
// that promises A unchanged; mark 0 when rows hold anything else.
typedef struct { const float *A; int lda, M, K; uint64_t mark; } rows_key;
typedef struct { void *panel, *rows; size_t panel_cap, rows_cap; rows_key rows_of; } thread_bufs;
static _Thread_local thread_bufs *tbufs;
static pthread_key_t tbufs_key;
static pthread_once_t tbufs_once = PTHREAD_ONCE_INIT;
static void tbufs_free(void *p) {
    thread_bufs *b = p;
    attn_big_free(b->panel, b->panel_cap * 4);
    attn_big_free(b->rows, b->rows_cap);
    free(b);
}
static void tbufs_key_init(void) { pthread_key_create(&tbufs_key, tbufs_free); }

static thread_bufs *tbufs_get(void) {
    if (!tbufs && (tbufs = calloc(1, sizeof *tbufs))) {
        pthread_once(&tbufs_once, tbufs_key_init);
        pthread_setspecific(tbufs_key, tbufs);
    }
    return tbufs;
}

// *buf holding at least n elements of size es, or NULL: whole 2 MB pages
// (attn_big_alloc), so a new buffer faults once, not once per 4 KB.
static void *tbuf_grow(void **buf, size_t *cap, size_t n, size_t es) {
    if (n > *cap) {
        attn_big_free(*buf, *cap * es);
        size_t bytes = n * es < ((size_t)2 << 20) ? (size_t)2 << 20 : n * es;
        *buf = attn_big_alloc(bytes);
        *cap = *buf ? bytes / es : 0;
    }
    return *buf;
}

static float *panel_alloc(int K) {
    thread_bufs *b = tbufs_get();
    return b ? tbuf_grow(&b->panel, &b->panel_cap, (size_t)K * NR, 4) : NULL;
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

// One function per tile height R <= N, R a constant in each (so the
// accumulators stay in registers), and a table of them by R.
#define ROWS_6(F) F(1) F(2) F(3) F(4) F(5) F(6)
#define ROWS_8(F) ROWS_6(F) F(7) F(8)
#define ROWS_14(F) ROWS_8(F) F(9) F(10) F(11) F(12) F(13) F(14)
#define ROWS_CAT(a, b) a##b
#define ROWS(N, F) ROWS_CAT(ROWS_, N)(F)

typedef void (*tile_fn)(const float *A, int lda, const float *P, int K, const float *bias, float *C, int ldc, int nc);
#define TILE(R) static void tile_##R(const float *A, int lda, const float *P, int K, const float *bias, float *C, int ldc, int nc) { gemm_tile(R, A, lda, P, K, bias, C, ldc, nc); }
#define TILE_REF(R) tile_##R,
ROWS(MR, TILE)
static const tile_fn tiles[MR + 1] = { NULL, ROWS(MR, TILE_REF) };

// ---------------------------------------------------------------- exact mode

// attn_simd_exact: every output one chain over k = 0..K-1 in order from +0
// in double, rounded to float, then + bias: the operations of the scalar
// reference (attn_scalar_matmul), so its bits. A product of two floats is
// exact in double, so a fused and an unfused multiply-add give the same sum.
// The weights come from pack_panel (the same floats as every other kernel's);
// R <= XR rows of A are converted to double once per panel.
#define XC (XV * XL) // columns of an exact tile
INLINE void exact_tile(int R, const double *Ad, int K, const float *P, const float *bias, float *C, int ldc, int nc) {
    XD acc[XR][XV];
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int v = 0; v < XV; v++) acc[r][v] = xd_zero();
    for (int k = 0; k < K; k++) {
        XD w[XV];
        UNROLL
        for (int v = 0; v < XV; v++) w[v] = xd_from(P + (size_t)k * NR + v * XL);
        UNROLL
        for (int r = 0; r < R; r++) {
            XD a = xd_set1(Ad[(size_t)r * K + k]);
            UNROLL
            for (int v = 0; v < XV; v++) acc[r][v] = xd_fma(a, w[v], acc[r][v]);
        }
    }
    double t[XL];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < XV; v++) {
            xd_store(t, acc[r][v]);
            for (int l = 0; l < XL && v * XL + l < nc; l++)
                C[(size_t)r * ldc + v * XL + l] = (float)t[l] + (bias ? bias[v * XL + l] : 0.0f);
        }
}

typedef void (*exact_fn)(const double *Ad, int K, const float *P, const float *bias, float *C, int ldc, int nc);
#define XTILE(R) static void exact_##R(const double *Ad, int K, const float *P, const float *bias, float *C, int ldc, int nc) { exact_tile(R, Ad, K, P, bias, C, ldc, nc); }
#define XTILE_REF(R) exact_##R,
ROWS(XR, XTILE)
static const exact_fn exact_tiles[XR + 1] = { NULL, ROWS(XR, XTILE_REF) };

// R <= XR rows of A x a panel's nc columns: the rows converted to double
// once (into Ad, R x K), then tiles of XC columns.
static void exact_rows(int R, const float *A, int lda, double *Ad, int K, const float *P, const float *bias, float *C,
                       int ldc, int nc) {
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++) Ad[(size_t)r * K + k] = A[(size_t)r * lda + k];
    for (int c = 0; c < nc; c += XC) exact_tiles[R](Ad, K, P + c, bias ? bias + c : NULL, C + c, ldc, nc - c);
}

// General matmul on weight rows of ldw bytes; exact: exact mode's tiles.
// row_lo >= 0: causal scores, where row m needs columns n <= row_lo + m only
// (tiles wholly above are skipped; what the others write above the diagonal
// is overwritten).
static void matmul_ld(int exact, const float *A, int lda, const uint8_t *W, size_t ldw, uint32_t wtype,
                      const float *bias, float *C, int ldc, int M, int K, int n0, int n1, int row_lo) {
    thread_bufs *b = exact ? tbufs_get() : NULL;
    double *Ad = b ? tbuf_grow(&b->rows, &b->rows_cap, (size_t)XR * K * 8, 1) : NULL;
    if (b) b->rows_of.mark = 0;
    float *P = exact || M > GEMV_MAX_M ? panel_alloc(K) : NULL;
    if (exact && (!P || !Ad)) { // no memory for the buffers: the scalar reference gives the same bits
        for (int n = n0; n < n1; n++)
            attn_scalar_matmul(A, lda, W + (size_t)n * ldw, wtype, bias ? bias + n : NULL, C + n, ldc, M, K, 0, 1);
        return;
    }
    if (!P) { // small M, or no memory for a panel: the GEMV kernel gives the same bits
        gemv(A, lda, W, ldw, wtype, bias, C, ldc, M, K, n0, n1);
        return;
    }
    int rows = exact ? XR : MR;
    for (int n = n0; n < n1; n += NR) {
        int nc = n1 - n < NR ? n1 - n : NR;
        pack_panel(P, W + (size_t)n * ldw, ldw, wtype, K, nc);
        int m = 0;
        if (row_lo >= 0 && n > row_lo) m = (n - row_lo) / rows * rows; // rows before m see none of these columns
        for (; m < M; m += rows) {
            int R = M - m < rows ? M - m : rows;
            const float *a = A + (size_t)m * lda, *bn = bias ? bias + n : NULL;
            float *c = C + (size_t)m * ldc + n;
            if (exact) exact_rows(R, a, lda, Ad, K, P, bn, c, ldc, nc);
            else tiles[R](a, lda, P, K, bn, c, ldc, nc);
        }
    }
}

static void simd_matmul(const float *A, int lda, const void *W, uint32_t wtype, const float *bias, float *C, int ldc,
                        int M, int K, int n0, int n1) {
    if (M <= 0 || n1 <= n0) return;
    matmul_ld(0, A, lda, W, attn_type_row_bytes(wtype, (uint64_t)K), wtype, bias, C, ldc, M, K, n0, n1, -1);
}

static void simd_matmul_exact(const float *A, int lda, const void *W, uint32_t wtype, const float *bias, float *C,
                              int ldc, int M, int K, int n0, int n1) {
    if (M <= 0 || n1 <= n0) return;
    matmul_ld(1, A, lda, W, attn_type_row_bytes(wtype, (uint64_t)K), wtype, bias, C, ldc, M, K, n0, n1, -1);
}

static void simd_softmax(float *x, int n) {
    if (n > 0) softmax_scaled(x, n, 1.0f);
}

// Scores with the matmul kernels (keys as f32 weight rows), softmax per row,
// then probs @ V: a row's bits do not depend on the rows computed with it.
// exact: the scores in exact mode.
static void attention_with(int exact, const float *q, int qs, const float *k, int ks, const float *v, int vs, int nq,
                           int q0, int hd, float scale, float *probs, float *out, int os) {
    int nk = q0 + nq;
    matmul_ld(exact, q, qs, (const uint8_t *)k, (size_t)ks * 4, ATTN_F32, NULL, probs, nk, nq, hd, 0, nk, q0);
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

static void simd_attention(const float *q, int qs, const float *k, int ks, const float *v, int vs, int nq, int q0,
                           int hd, float scale, float *probs, float *out, int os) {
    attention_with(0, q, qs, k, ks, v, vs, nq, q0, hd, scale, probs, out, os);
}

static void simd_attention_exact(const float *q, int qs, const float *k, int ks, const float *v, int vs, int nq,
                                 int q0, int hd, float scale, float *probs, float *out, int os) {
    attention_with(1, q, qs, k, ks, v, vs, nq, q0, hd, scale, probs, out, os);
}
#ifdef DOT_LANES
// ---------------------------------------------------------------- dot form
//
// C[m][n] = the path's sum tree of its DOT_LANES lanes + bias[n], lane l a
// chain of fused multiply-adds from +0 of A[m][k] * w[n][k] over k = l,
// l + DOT_LANES, ... in order (w the weights exactly as attn_dq_block decodes
// them). GEMV (M <= GEMV_MAX_M) multiplies DOT_LANES consecutive weights of a
// row by A's in place, dot_dr rows at once; GEMM runs the float GEMM's tiles
// on a panel and on rows of A whose k are reordered so that each lane's
// chain is one tile chain (k = l + DOT_LANES j stored at l * K / DOT_LANES +
// j in both), then adds the lanes' tiles in the GEMV's tree. Both give the
// same bits. What the path provides:
//   DOT_TYPES(X)        X(type) for each type that can be in the dot form
//   dot_order(t, K)     whether rows of type t, K weights each, are in it
//   dot_dr(t, M)        weight rows per GEMV step (at most DR_MAX)
//   dot_rows(A, lda, W, ldw, t, bias, C, ldc, M, K, nr, pre, pre_n)  the
//                       GEMV: C[m][0..nr) for m < M, nr <= dot_dr(t, M) rows
//                       at W, prefetching the pre_n rows at pre (inline: made
//                       once per type and M below)
//   dot_pack(P, W, ldw, t, K, nc)  the panel: lane l's K / DOT_LANES rows of
//                       NR weights at P + l * dot_lane(K), columns >= nc zero
//                       (inline: made once per type below)
//   dot_reorder(A, lda, Ap, M, K)  Ap[m * K + l * K / DOT_LANES + j] = A[m][l + DOT_LANES j]
//   dot_combine(R, part, bias, C, ldc, nc)  C's R x nc tile from the lanes'
//                       tiles (lane l's at part + l * MR * NR, rows of NR)
static int dot_order(uint32_t t, int K);
static inline int dot_dr(uint32_t t, int M);
static inline void dot_rows(const float *A, int lda, const uint8_t *W, size_t ldw, uint32_t t, const float *bias,
                            float *C, int ldc, int M, int K, int nr, const uint8_t *pre, int pre_n);
static inline void dot_pack(float *P, const uint8_t *W, size_t ldw, uint32_t t, int K, int nc);
static void dot_reorder(const float *A, int lda, float *Ap, int M, int K);
static void dot_combine(int R, const float *part, const float *bias, float *C, int ldc, int nc);

// One GEMV and one panel packing per type (the type a constant in its
// decoding), the GEMV once per M too (for the accumulators).
typedef void (*dot_rows_fn)(const float *A, int lda, const uint8_t *W, size_t ldw, const float *bias, float *C,
                            int ldc, int M, int K, int nr, const uint8_t *pre, int pre_n);
#define DOT_FNS(T) \
    static __attribute__((noinline)) void dot_rows_##T(const float *A, int lda, const uint8_t *W, size_t ldw, \
        const float *bias, float *C, int ldc, int M, int K, int nr, const uint8_t *pre, int pre_n) { \
        switch (M) { \
        case 1: dot_rows(A, lda, W, ldw, T, bias, C, ldc, 1, K, nr, pre, pre_n); break; \
        case 2: dot_rows(A, lda, W, ldw, T, bias, C, ldc, 2, K, nr, pre, pre_n); break; \
        case 3: dot_rows(A, lda, W, ldw, T, bias, C, ldc, 3, K, nr, pre, pre_n); break; \
        default: dot_rows(A, lda, W, ldw, T, bias, C, ldc, 4, K, nr, pre, pre_n); break; \
        } \
    } \
    static __attribute__((noinline)) void dot_pack_##T(float *P, const uint8_t *W, size_t ldw, int K, int nc) { \
        dot_pack(P, W, ldw, T, K, nc); \
    }
DOT_TYPES(DOT_FNS)
#undef DOT_FNS

static dot_rows_fn dot_rows_for(uint32_t t) {
    switch (t) {
#define CASE(T) case T: return dot_rows_##T;
    DOT_TYPES(CASE)
#undef CASE
    default: return NULL;
    }
}

static void dot_pack_panel(float *P, const uint8_t *W, size_t ldw, uint32_t t, int K, int nc) {
    switch (t) {
#define CASE(T) case T: dot_pack_##T(P, W, ldw, K, nc); return;
    DOT_TYPES(CASE)
#undef CASE
    default: break; // (dot_gemm runs only the dot form's types)
    }
}

// The panel holds lane l's K / DOT_LANES rows of NR weights from l *
// dot_lane(K): DOT_PAD floats more than that, so that the stores of a
// transposed block (one per lane) do not all fall into one set of the L1
// cache when a lane's bytes are a multiple of 4096 (K = 2048).
#define DOT_PAD 16
static inline size_t dot_lane(int K) { return (size_t)(K / DOT_LANES) * NR + DOT_PAD; }
// GEMV with more rows of A than a group (GEMV_MAX_M): weight rows taken
// through all the groups at a time (a multiple of every dot_dr). TinyLlama
// shape, `attn bench -T 13 / 16 -n 1`, before and after interleaved, prefill
// ms: F16 154-156 -> 118-123 and 167-174 -> 126-137 (its weights were read
// from memory once per group of 4); Q8_0 128-132 -> 118 and 126 -> 119-120,
// Q4_K_M 135 -> 127 and 137-139 -> 129-131 (their decoding, done again per
// group, bounds them). 12, 24 and 48 rows alike, 6 slower.
#define DOT_CHUNK 24
#define DOT_MB 512 // GEMM: rows of A reordered at a time (each weight panel is packed once per DOT_MB rows)
#ifndef DOT_GEMV_M
#define DOT_GEMV_M(t) GEMV_MAX_M // most rows of A for the GEMV of type t (in groups of GEMV_MAX_M); the GEMM beyond
#endif

static void dot_gemm(const float *A, int lda, const uint8_t *W, size_t ldw, uint32_t t, const float *bias, float *C,
                     int ldc, int M, int K, int n0, int n1, float *P, float *Ap, int reordered) {
    static _Thread_local float part[DOT_LANES * MR * NR] __attribute__((aligned(64)));
    int Kb = K / DOT_LANES;
    for (int m0 = 0; m0 < M; m0 += DOT_MB) {
        int mb = M - m0 < DOT_MB ? M - m0 : DOT_MB;
        if (!reordered) dot_reorder(A + (size_t)m0 * lda, lda, Ap, mb, K);
        for (int n = n0; n < n1; n += NR) {
            int nc = n1 - n < NR ? n1 - n : NR;
            dot_pack_panel(P, W + (size_t)n * ldw, ldw, t, K, nc);
            for (int m = 0; m < mb; m += MR) {
                int R = mb - m < MR ? mb - m : MR;
                for (int l = 0; l < DOT_LANES; l++)
                    tiles[R](Ap + (size_t)m * K + (size_t)l * Kb, K, P + (size_t)l * dot_lane(K), Kb, NULL,
                             part + (size_t)l * MR * NR, NR, nc);
                dot_combine(R, part, bias ? bias + n : NULL, C + (size_t)(m0 + m) * ldc + n, ldc, nc);
            }
        }
    }
}

// The matmul of kernels.h for a wtype in the dot form.
static void dot_matmul(const float *A, int lda, const uint8_t *W, size_t ldw, uint32_t t, const float *bias, float *C,
                       int ldc, int M, int K, int n0, int n1) {
    dot_rows_fn rows = dot_rows_for(t);
    thread_bufs *b = M > DOT_GEMV_M(t) ? tbufs_get() : NULL;
    float *P = b ? panel_alloc(K + (DOT_LANES * DOT_PAD + NR - 1) / NR) : NULL; // (the lanes, each padded)
    float *Ap = P ? tbuf_grow(&b->rows, &b->rows_cap, (size_t)(M < DOT_MB ? M : DOT_MB) * K * 4, 1) : NULL;
    if (Ap) {
        // A's rows are reordered once under a mark (all of them: M <= DOT_MB)
        rows_key key = { A, lda, M, K, M <= DOT_MB ? attn_kernels_mark() : 0 };
        const rows_key *had = &b->rows_of;
        int same = key.mark && key.mark == had->mark && key.A == had->A && key.lda == had->lda && key.M == had->M &&
                   key.K == had->K;
        b->rows_of.mark = 0; // (while Ap is rewritten)
        dot_gemm(A, lda, W, ldw, t, bias, C, ldc, M, K, n0, n1, P, Ap, same);
        b->rows_of = key;
        return;
    }
    // M <= DOT_GEMV_M(t), or no memory for the buffers: GEMV gives the same bits.
    // DOT_CHUNK weight rows at a time go through every group of rows of A, so
    // that they come from memory once, not once per group.
    for (int c0 = n0; c0 < n1; c0 += DOT_CHUNK) {
        int c1 = n1 - c0 < DOT_CHUNK ? n1 : c0 + DOT_CHUNK;
        for (int m = 0; m < M; m += GEMV_MAX_M) {
            int mm = M - m < GEMV_MAX_M ? M - m : GEMV_MAX_M, dr = dot_dr(t, mm);
            for (int n = c0; n < c1; n += dr) { // (the first group prefetches the next rows)
                int nr = c1 - n < dr ? c1 - n : dr, left = m ? 0 : n1 - n - dr;
                const uint8_t *w = W + (size_t)n * ldw;
                rows(A + (size_t)m * lda, lda, w, ldw, bias ? bias + n : NULL, C + (size_t)m * ldc + n, ldc, mm, K,
                     nr, w + dr * ldw, left < 0 ? 0 : left < dr ? left : dr);
            }
        }
    }
}

// kernels.h's matmul on a path with the dot form: that form where dot_order
// says, the one chain (simd_matmul) elsewhere.
static void simd_matmul_dot(const float *A, int lda, const void *W, uint32_t wtype, const float *bias, float *C,
                            int ldc, int M, int K, int n0, int n1) {
    if (!dot_order(wtype, K)) {
        simd_matmul(A, lda, W, wtype, bias, C, ldc, M, K, n0, n1);
        return;
    }
    if (M > 0 && n1 > n0)
        dot_matmul(A, lda, W, attn_type_row_bytes(wtype, (uint64_t)K), wtype, bias, C, ldc, M, K, n0, n1);
}
#endif
#endif
