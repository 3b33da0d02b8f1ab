// tests/unit/test_kernels.c - every kernel of every SIMD path this CPU runs,
// against a float64 reference computed here from the mathematical definition
// (not from simd/scalar.c), on awkward sizes; the determinism the forward
// pass relies on (an output element's bits do not depend on M, the column
// range or its tile); the thread pool; path selection.
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "attn.h"
#include "simd/kernels.h"
#include "tests/unit/check.h"
#include "tests/unit/paths.h"

// ---------------------------------------------------------------- data

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_u32(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next_u32() >> 8) / 16777216.0f; }

// f16 value of bits h, decoded independently of kernels.h with ldexp.
static double f16_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}
// A random normal f16 in about [-2, 2] (exponents 1..15).
static uint16_t rand_f16(void) { return (uint16_t)(((next_u32() & 1) << 15) | ((1 + next_u32() % 15) << 10) | (next_u32() & 1023)); }

// A weight matrix (N rows of K) of type t, and its values as doubles.
typedef struct { uint8_t *data; double *val; size_t row_bytes; } wmat;

static wmat make_weights(uint32_t t, int N, int K) {
    wmat w;
    w.row_bytes = attn_type_row_bytes(t, (uint64_t)K);
    w.data = malloc(w.row_bytes * (size_t)N + 64);
    w.val = malloc(sizeof(double) * (size_t)N * K);
    for (int n = 0; n < N; n++) {
        uint8_t *row = w.data + w.row_bytes * (size_t)n;
        double *v = w.val + (size_t)n * K;
        for (int k = 0; k < K; k++) {
            if (t == ATTN_F32) { float f = uniform(-1, 1); memcpy(row + 4 * (size_t)k, &f, 4); v[k] = f; }
            else if (t == ATTN_F16) { uint16_t h = rand_f16(); memcpy(row + 2 * (size_t)k, &h, 2); v[k] = f16_value(h); }
            else if (t == ATTN_BF16) {
                uint32_t bits = (next_u32() & 0x80000000u) | ((uint32_t)(120 + next_u32() % 10) << 23) | (next_u32() & 0x7f0000u);
                uint16_t h = (uint16_t)(bits >> 16);
                float f;
                memcpy(row + 2 * (size_t)k, &h, 2);
                memcpy(&f, &bits, 4);
                v[k] = f;
            }
        }
        if (t == ATTN_Q8_0)
            for (int b = 0; b < K / 32; b++) {
                uint8_t *blk = row + 34 * (size_t)b;
                uint16_t d = (uint16_t)((next_u32() % 3 + 5) << 10 | (next_u32() & 1023)); // ~2^-10 .. 2^-8
                memcpy(blk, &d, 2);
                for (int i = 0; i < 32; i++) {
                    int8_t q = (int8_t)(next_u32() % 255 - 127);
                    blk[2 + i] = (uint8_t)q;
                    v[32 * b + i] = f16_value(d) * q;
                }
            }
    }
    return w;
}
static void free_weights(wmat *w) { free(w->data); free(w->val); }

static float *rand_floats(size_t n, float lo, float hi) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = uniform(lo, hi);
    return x;
}

static const uint32_t wtypes[] = { ATTN_F32, ATTN_F16, ATTN_BF16, ATTN_Q8_0 };

// ---------------------------------------------------------------- matmul

// Every path against float64 on one shape; C is computed for columns
// [n0, n1) only and the rest must stay untouched.
static int matmul_case(const attn_kernels *kp, uint32_t t, int M, int K, int N, int n0, int n1, int lda, int ldc,
                       int with_bias, char *why, size_t why_len) {
    wmat w = make_weights(t, N, K);
    float *A = rand_floats((size_t)M * lda, -1, 1);
    float *bias = with_bias ? rand_floats((size_t)N, -1, 1) : NULL;
    float *C = malloc(sizeof(float) * (size_t)M * ldc);
    for (size_t i = 0; i < (size_t)M * ldc; i++) C[i] = 12345.0f;
    kp->matmul(A, lda, w.data, t, bias, C, ldc, M, K, n0, n1);
    int ok = 1;
    for (int m = 0; m < M && ok; m++)
        for (int n = 0; n < ldc && ok; n++) {
            float got = C[(size_t)m * ldc + n];
            if (n < n0 || n >= n1) {
                if (got != 12345.0f) { snprintf(why, why_len, "C[%d][%d] outside [%d,%d) was written", m, n, n0, n1); ok = 0; }
                continue;
            }
            double ref = bias ? bias[n] : 0.0, mag = fabs(ref);
            for (int k = 0; k < K; k++) {
                double p = (double)A[(size_t)m * lda + k] * w.val[(size_t)n * K + k];
                ref += p;
                mag += fabs(p);
            }
            // Any f32 summation order of K terms errs by at most about K*2^-24 of
            // sum|a w| and typically sqrt(K)*2^-24 (2e-6 at K=1000); 1e-5 of
            // sum|a w| allows that, while one wrong or missing term (about 1/K
            // of the sum, >= 1e-3 here) fails.
            if (!(fabs(got - ref) <= 1e-5 * mag + 1e-30)) {
                snprintf(why, why_len, "%s M=%d K=%d n=[%d,%d): C[%d][%d]=%.9g, float64 %.9g", attn_type_name(t), M, K,
                         n0, n1, m, n, got, ref);
                ok = 0;
            }
        }
    free(A); free(bias); free(C); free_weights(&w);
    return ok;
}

static void test_matmul(const attn_kernels *kp) {
    static const int Ms[] = { 1, 2, 3, 4, 5, 7, 13, 14, 15, 17, 29, 63 };
    static const int Ks[] = { 1, 3, 7, 16, 17, 63, 65, 257, 1000 };
    static const int Kq[] = { 32, 64, 96, 288, 1024 }; // Q8_0: whole blocks
    static const int Ns[] = { 1, 3, 7, 17, 33, 65 };
    char name[96], why[256];
    for (size_t ti = 0; ti < sizeof wtypes / sizeof *wtypes; ti++) {
        uint32_t t = wtypes[ti];
        int ok = 1, cases = 0;
        const int *ks = t == ATTN_Q8_0 ? Kq : Ks;
        int nks = t == ATTN_Q8_0 ? (int)(sizeof Kq / sizeof *Kq) : (int)(sizeof Ks / sizeof *Ks);
        for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms && ok; mi++)
            for (int ki = 0; ki < nks && ok; ki++) {
                int M = Ms[mi], K = ks[ki];
                if ((long)M * K > 40000) continue; // keep the run short
                int N = Ns[(mi + ki) % (sizeof Ns / sizeof *Ns)];
                int n0 = N > 3 ? (int)(next_u32() % 3) : 0, n1 = N - (N > 5 ? 1 : 0);
                ok = matmul_case(kp, t, M, K, N, n0, n1, K + (int)(mi % 3), N + (int)(ki % 2), (int)((mi + ki) & 1), why, sizeof why);
                cases++;
            }
        // the benchmark's shape class: big enough for full tiles and many panels
        if (ok) ok = matmul_case(kp, t, 64, 256, 130, 0, 130, 256, 130, 1, why, sizeof why), cases++;
        snprintf(name, sizeof name, "%s matmul %s (%d shapes)", kp->name, attn_type_name(t), cases);
        check(ok, name, "%s", why);
    }
}

// The same element computed in different company must give the same bits:
// alone (M=1), in small groups (the GEMV kernel), in a big M (the GEMM
// kernel) at another tile position, and with other column ranges.
static void determinism_case(const attn_kernels *kp, uint32_t t, int K) {
    char name[96];
    int M = 41, N = 77;
    wmat w = make_weights(t, N, K);
    float *A = rand_floats((size_t)(M + 1) * K, -1, 1), *bias = rand_floats((size_t)N, -1, 1);
    float *full = malloc(sizeof(float) * (size_t)M * N), *part = malloc(sizeof(float) * (size_t)(M + 1) * N);
    kp->matmul(A, K, w.data, t, bias, full, N, M, K, 0, N);
    int ok = 1;
    const char *what = "";
    // rows alone and in threes
    for (int m = 0; m < M && ok; m++) {
        kp->matmul(A + (size_t)m * K, K, w.data, t, bias, part, N, 1, K, 0, N);
        if (memcmp(part, full + (size_t)m * N, sizeof(float) * N)) { ok = 0; what = "one row (M=1) differs from the same row in M=41"; }
    }
    for (int m = 0; m + 3 <= M && ok; m += 3) {
        kp->matmul(A + (size_t)m * K, K, w.data, t, bias, part, N, 3, K, 0, N);
        if (memcmp(part, full + (size_t)m * N, sizeof(float) * 3 * N)) { ok = 0; what = "rows in a group of 3 differ"; }
    }
    for (int m = 0; m + 13 <= M && ok; m += 13) {
        kp->matmul(A + (size_t)m * K, K, w.data, t, bias, part, N, 13, K, 0, N);
        if (memcmp(part, full + (size_t)m * N, sizeof(float) * 13 * N)) { ok = 0; what = "rows in a group of 13 differ"; }
    }
    // rows 1..M-1 as rows 0..M-2 of another call (other tile positions), M-1 = 40
    if (ok) {
        kp->matmul(A + K, K, w.data, t, bias, part, N, M - 1, K, 0, N);
        if (memcmp(part, full + N, sizeof(float) * (size_t)(M - 1) * N)) { ok = 0; what = "rows shifted by one tile position differ"; }
    }
    // column ranges as threads would split them
    static const int cuts[][4] = { { 0, 5, 37, 77 }, { 0, 16, 48, 77 }, { 0, 1, 2, 77 }, { 0, 33, 65, 77 } };
    for (int c = 0; c < 4 && ok; c++) {
        for (int i = 0; i < 3; i++) kp->matmul(A, K, w.data, t, bias, part, N, M, K, cuts[c][i], cuts[c][i + 1]);
        if (memcmp(part, full, sizeof(float) * (size_t)M * N)) { ok = 0; what = "a column split differs"; }
        for (int i = 0; i < 3; i++) kp->matmul(A, K, w.data, t, bias, part, N, 2, K, cuts[c][i], cuts[c][i + 1]);
        if (memcmp(part, full, sizeof(float) * (size_t)2 * N)) { ok = 0; what = "a column split of 2 rows differs"; }
    }
    snprintf(name, sizeof name, "%s matmul %s K=%d bit-identical across M, tiles, column ranges", kp->name,
             attn_type_name(t), K);
    check(ok, name, "%s", what);
    free(A); free(bias); free(full); free(part); free_weights(&w);
}

// A long prompt: rows past the GEMM's blocks of A (avx512: 512 rows per
// reordering) give the same bits as alone.
static void determinism_long(const attn_kernels *kp, uint32_t t) {
    int M = 530, N = 50, K = 64;
    wmat w = make_weights(t, N, K);
    float *A = rand_floats((size_t)M * K, -1, 1), *full = malloc(sizeof(float) * (size_t)M * N), one[50];
    kp->matmul(A, K, w.data, t, NULL, full, N, M, K, 0, N);
    static const int rows[] = { 0, 255, 256, 511, 512, 529 };
    int ok = 1, bad = -1;
    for (int i = 0; i < 6 && ok; i++) {
        kp->matmul(A + (size_t)rows[i] * K, K, w.data, t, NULL, one, N, 1, K, 0, N);
        if (memcmp(one, full + (size_t)rows[i] * N, sizeof one)) ok = 0, bad = rows[i];
    }
    char name[96];
    snprintf(name, sizeof name, "%s matmul %s M=%d: rows alone bit-identical to the long product", kp->name,
             attn_type_name(t), M);
    check(ok, name, "row %d differs", bad);
    free(A); free(full); free_weights(&w);
}

// attn_kernels_set_mark: a path may reuse what it made of A under one mark,
// never under another mark or none (A rewritten in place between them).
static void reuse_case(const attn_kernels *kp, uint32_t t) {
    int M = 40, N = 96, K = 64;
    wmat w = make_weights(t, N, K);
    float *A = rand_floats((size_t)M * K, -1, 1), *B = rand_floats((size_t)M * K, -1, 1);
    float *want = malloc(sizeof(float) * (size_t)M * N), *got = malloc(sizeof(float) * (size_t)M * N);
    kp->matmul(B, K, w.data, t, NULL, want, N, M, K, 0, N); // B's product, no mark
    float *X = malloc(sizeof(float) * (size_t)M * K);
    memcpy(X, A, sizeof(float) * (size_t)M * K);
    uint64_t m1 = attn_kernels_new_mark(), m2 = attn_kernels_new_mark();
    attn_kernels_set_mark(m1);
    kp->matmul(X, K, w.data, t, NULL, got, N, M, K, 0, 48);
    memcpy(X, B, sizeof(float) * (size_t)M * K); // same address, other rows
    attn_kernels_set_mark(m2);
    kp->matmul(X, K, w.data, t, NULL, got, N, M, K, 0, 48);
    kp->matmul(X, K, w.data, t, NULL, got, N, M, K, 48, N); // reused under m2
    int ok = !memcmp(got, want, sizeof(float) * (size_t)M * N);
    memcpy(X, A, sizeof(float) * (size_t)M * K);
    attn_kernels_set_mark(m2);
    kp->matmul(X, K, w.data, t, NULL, got, N, M, K, 0, N);
    attn_kernels_set_mark(0);
    memcpy(X, B, sizeof(float) * (size_t)M * K);
    kp->matmul(X, K, w.data, t, NULL, got, N, M, K, 0, N); // no mark: made anew
    ok = ok && !memcmp(got, want, sizeof(float) * (size_t)M * N);
    char name[96];
    snprintf(name, sizeof name, "%s matmul %s: A rewritten in place is read anew under a new mark or none", kp->name,
             attn_type_name(t));
    check(ok, name, "a product of the old rows came back");
    free(A); free(B); free(X); free(want); free(got); free_weights(&w);
}

static void test_matmul_determinism(const attn_kernels *kp) {
    reuse_case(kp, ATTN_Q8_0);
    reuse_case(kp, ATTN_F16);
    determinism_long(kp, ATTN_Q8_0);
    determinism_long(kp, ATTN_F32);
    for (size_t ti = 0; ti < sizeof wtypes / sizeof *wtypes; ti++) {
        uint32_t t = wtypes[ti];
        determinism_case(kp, t, t == ATTN_Q8_0 ? 320 : 301);
        if (t == ATTN_F16 || t == ATTN_BF16) determinism_case(kp, t, 320); // (the dot form: avx512 F16 and BF16, avx2, neon)
    }
}

static int same_bits(const float *a, const float *b, size_t n, size_t *at);
// Exact mode: matmul_exact gives the scalar reference's bits for every
// type, M (GEMV and GEMM sizes, tile tails), K, column range and stride,
// and leaves columns outside the range untouched.
static int exact_case(const attn_kernels *kp, uint32_t t, int M, int K, int N, int n0, int n1, int with_bias,
                      char *why, size_t why_len) {
    int lda = K + 3, ldc = N + 2;
    wmat w = make_weights(t, N, K);
    float *A = rand_floats((size_t)M * lda, -1, 1), *bias = with_bias ? rand_floats((size_t)N, -1, 1) : NULL;
    float *got = malloc(sizeof(float) * (size_t)M * ldc), *ref = malloc(sizeof(float) * (size_t)M * ldc);
    for (size_t i = 0; i < (size_t)M * ldc; i++) got[i] = ref[i] = 12345.0f;
    kp->matmul_exact(A, lda, w.data, t, bias, got, ldc, M, K, n0, n1);
    attn_scalar_matmul(A, lda, w.data, t, bias, ref, ldc, M, K, n0, n1);
    size_t at = 0;
    int ok = same_bits(got, ref, (size_t)M * ldc, &at);
    if (!ok)
        snprintf(why, why_len, "%s M=%d K=%d n=[%d,%d): C[%zu][%zu] %.9g, scalar %.9g", attn_type_name(t), M, K, n0, n1,
                 at / ldc, at % ldc, got[at], ref[at]);
    free(A); free(bias); free(got); free(ref); free_weights(&w);
    return ok;
}

static void test_exact(const attn_kernels *kp) {
    static const int Ms[] = { 1, 2, 4, 5, 7, 8, 9, 17, 41 };
    static const int Ks[] = { 1, 17, 64, 301 }, Kq[] = { 32, 320 };
    char name[96], why[256] = "";
    for (size_t ti = 0; ti < sizeof wtypes / sizeof *wtypes; ti++) {
        uint32_t t = wtypes[ti];
        const int *ks = t == ATTN_Q8_0 ? Kq : Ks;
        int nk = t == ATTN_Q8_0 ? 2 : 4, ok = 1, cases = 0;
        for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms && ok; mi++)
            for (int ki = 0; ki < nk && ok; ki++, cases++)
                ok = exact_case(kp, t, Ms[mi], ks[ki], 77, (int)(mi % 3) * 5, 77 - (int)(ki % 2) * 11, (int)(mi & 1), why,
                                sizeof why);
        snprintf(name, sizeof name, "%s matmul_exact %s bit-identical to scalar (%d shapes)", kp->name,
                 attn_type_name(t), cases);
        check(ok, name, "%s", why);
    }
}

// ---------------------------------------------------------------- attention

static int attention_case(const attn_kernels *kp, int nq, int q0, int hd, char *why, size_t why_len) {
    int nk = q0 + nq, qs = hd + 3, ks = hd + 5, vs = hd + 1, os = hd + 2;
    float *q = rand_floats((size_t)nq * qs, -1, 1), *k = rand_floats((size_t)nk * ks, -1, 1);
    float *v = rand_floats((size_t)nk * vs, -1, 1);
    float *probs = malloc(sizeof(float) * (size_t)nq * nk), *out = malloc(sizeof(float) * (size_t)nq * os);
    double *p = malloc(sizeof(double) * (size_t)nk);
    for (size_t i = 0; i < (size_t)nq * nk; i++) probs[i] = NAN;
    float scale = 2.0f / sqrtf((float)hd); // sharper than 1/sqrt(hd): more varied rows
    kp->attention(q, qs, k, ks, v, vs, nq, q0, hd, scale, probs, out, os);
    int ok = 1;
    for (int i = 0; i < nq && ok; i++) {
        int nvis = q0 + i + 1;
        double mx = -1e300, sum = 0;
        for (int j = 0; j < nvis; j++) {
            double s = 0;
            for (int d = 0; d < hd; d++) s += (double)q[(size_t)i * qs + d] * k[(size_t)j * ks + d];
            p[j] = s * scale;
            if (p[j] > mx) mx = p[j];
        }
        for (int j = 0; j < nvis; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
        for (int j = 0; j < nk && ok; j++) {
            float got = probs[(size_t)i * nk + j];
            if (j >= nvis) {
                if (got != 0.0f || signbit(got)) { snprintf(why, why_len, "probs[%d][%d] above the diagonal is %g, not +0", i, j, got); ok = 0; }
                continue;
            }
            // scores err ~hd*2^-24*scale*sum|q k| (~1e-6 here); exp and the
            // normalisation add a few ulp: 1e-6 absolute + 1e-5 relative.
            double ref = p[j] / sum;
            if (!(fabs(got - ref) <= 1e-6 + 1e-5 * ref)) {
                snprintf(why, why_len, "nq=%d q0=%d hd=%d: probs[%d][%d]=%.9g, float64 %.9g", nq, q0, hd, i, j, got, ref);
                ok = 0;
            }
        }
        for (int d = 0; d < hd && ok; d++) {
            double ref = 0, mag = 0;
            for (int j = 0; j < nvis; j++) {
                ref += p[j] / sum * v[(size_t)j * vs + d];
                mag += p[j] / sum * fabs(v[(size_t)j * vs + d]);
            }
            // probabilities carry ~1e-6 error each; the sum over keys is bounded by sum p|v|
            float got = out[(size_t)i * os + d];
            if (!(fabs(got - ref) <= 2e-6 + 1e-5 * mag)) {
                snprintf(why, why_len, "nq=%d q0=%d hd=%d: out[%d][%d]=%.9g, float64 %.9g", nq, q0, hd, i, d, got, ref);
                ok = 0;
            }
        }
    }
    free(q); free(k); free(v); free(probs); free(out); free(p);
    return ok;
}

static void test_attention(const attn_kernels *kp) {
    static const int hds[] = { 1, 3, 16, 17, 48, 64, 65, 128 };
    static const int q0s[] = { 0, 1, 5, 63 };
    static const int nqs[] = { 1, 3, 17, 40 };
    char name[96], why[256] = "";
    int ok = 1, cases = 0;
    for (size_t h = 0; h < sizeof hds / sizeof *hds && ok; h++)
        for (size_t a = 0; a < sizeof q0s / sizeof *q0s && ok; a++)
            for (size_t b = 0; b < sizeof nqs / sizeof *nqs && ok; b++) {
                ok = attention_case(kp, nqs[b], q0s[a], hds[h], why, sizeof why);
                cases++;
            }
    snprintf(name, sizeof name, "%s attention (%d shapes)", kp->name, cases);
    check(ok, name, "%s", why);

    // Decode equals prefill: each row computed alone at its position (as with
    // a KV cache), or in chunks, gives the same bits as in the full pass.
    int T = 45, hd = 64;
    float *q = rand_floats((size_t)T * hd, -2, 2), *k = rand_floats((size_t)T * hd, -2, 2), *v = rand_floats((size_t)T * hd, -1, 1);
    float *pf = malloc(sizeof(float) * T * T), *of = malloc(sizeof(float) * T * hd);
    float *pp = malloc(sizeof(float) * T * T), *op = malloc(sizeof(float) * T * hd);
    kp->attention(q, hd, k, hd, v, hd, T, 0, hd, 0.125f, pf, of, hd);
    ok = 1;
    for (int i = 0; i < T && ok; i++) {
        kp->attention(q + (size_t)i * hd, hd, k, hd, v, hd, 1, i, hd, 0.125f, pp, op, hd);
        if (memcmp(pp, pf + (size_t)i * T, sizeof(float) * (i + 1)) || memcmp(op, of + (size_t)i * hd, sizeof(float) * hd)) {
            ok = 0;
            snprintf(why, sizeof why, "row %d alone differs from the full pass", i);
        }
    }
    static const int chunks[] = { 0, 7, 8, 23, 45 };
    for (int c = 0; c + 1 < 5 && ok; c++) {
        int a = chunks[c], n = chunks[c + 1] - a, nk = a + n;
        kp->attention(q + (size_t)a * hd, hd, k, hd, v, hd, n, a, hd, 0.125f, pp, op, hd);
        for (int i = 0; i < n && ok; i++)
            if (memcmp(pp + (size_t)i * nk, pf + (size_t)(a + i) * T, sizeof(float) * nk) ||
                memcmp(op + (size_t)i * hd, of + (size_t)(a + i) * hd, sizeof(float) * hd)) {
                ok = 0;
                snprintf(why, sizeof why, "chunk at %d, row %d differs from the full pass", a, i);
            }
    }
    snprintf(name, sizeof name, "%s attention rows bit-identical alone, in chunks, in full", kp->name);
    check(ok, name, "%s", why);

    // attention_exact: its scores are the scalar path's, so its probabilities
    // differ from the scalar path's only by exp and the normalisation (a few ulp)
    kp->attention_exact(q, hd, k, hd, v, hd, T, 0, hd, 0.5f, pf, of, hd);
    attn_scalar_attention(q, hd, k, hd, v, hd, T, 0, hd, 0.5f, pp, op, hd);
    double worst = 0;
    for (int i = 0; i < T * T; i++) {
        double d = isnan(pf[i]) ? INFINITY : fabs((double)pf[i] - pp[i]) / (pp[i] > 1e-30f ? pp[i] : 1e-30);
        worst = d > worst ? d : worst;
    }
    snprintf(name, sizeof name, "%s attention_exact probabilities within 1e-6 relative of scalar", kp->name);
    check(worst <= 1e-6, name, "worst relative difference %g", worst);
    free(q); free(k); free(v); free(pf); free(of); free(pp); free(op);
}

// ---------------------------------------------------------------- row ops

static const int sizes[] = { 1, 3, 7, 17, 63, 65, 257, 1000 };
#define NSIZES (int)(sizeof sizes / sizeof *sizes)

// |got - ref| <= tol_abs + tol_rel |ref| over n values; names the first miss.
static int close_all(const float *got, const double *ref, int n, double tol_abs, double tol_rel, char *why, size_t len,
                     const char *what) {
    for (int i = 0; i < n; i++)
        if (!(fabs(got[i] - ref[i]) <= tol_abs + tol_rel * fabs(ref[i]))) {
            snprintf(why, len, "%s n=%d: [%d] = %.9g, float64 %.9g", what, n, i, got[i], ref[i]);
            return 0;
        }
    return 1;
}

// The check of one row-op group on one SIMD path.
static void check_path(const attn_kernels *kp, int ok, const char *what, const char *why) {
    char name[96];
    snprintf(name, sizeof name, "%s %s", kp->name, what);
    check(ok, name, "%s", why);
}

// One row-op group at one size n against ref: 1 while all are close, else 0
// with why set.
typedef int (*rowop_case)(const attn_kernels *kp, int n, double *ref, float *out, char *why, size_t nw);

// A row-op group on one SIMD path at every size, until one fails.
static void check_sizes(const attn_kernels *kp, const char *what, rowop_case fn, double *ref, float *out) {
    char why[256] = "";
    int ok = 1;
    for (int s = 0; s < NSIZES && ok; s++) ok = fn(kp, sizes[s], ref, out, why, sizeof why);
    check_path(kp, ok, what, why);
}

// norms: sums of n squares (f32 error ~n*2^-24 worst case, 6e-5 at 1000;
// typically far less): 1e-5 relative
static int norms_at(const attn_kernels *kp, int n, double *ref, float *out, char *why, size_t nw) {
    int ok = 1;
    float *x = rand_floats(n, -3, 3), *w = rand_floats(n, -2, 2), *b = rand_floats(n, -1, 1);
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    for (int i = 0; i < n; i++) ref[i] = x[i] / sqrt(ss / n + 1e-5) * w[i];
    kp->rmsnorm(out, x, w, n, 1e-5f);
    ok = close_all(out, ref, n, 1e-6, 1e-5, why, nw, "rmsnorm");
    memcpy(out, x, sizeof(float) * n); // in place
    kp->rmsnorm(out, out, w, n, 1e-5f);
    if (ok) ok = close_all(out, ref, n, 1e-6, 1e-5, why, nw, "rmsnorm in place");
    for (int withb = 0; withb < 2 && ok; withb++) {
        double mean = 0, var = 0;
        for (int i = 0; i < n; i++) mean += x[i];
        mean /= n;
        for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= n;
        for (int i = 0; i < n; i++) ref[i] = (x[i] - mean) / sqrt(var + 1e-5) * w[i] + (withb ? b[i] : 0);
        memcpy(out, x, sizeof(float) * n);
        kp->layernorm(out, out, w, withb ? b : NULL, n, 1e-5f);
        // (x - mean) cancels for x near the mean: the absolute term covers it
        ok = close_all(out, ref, n, 1e-5, 1e-5, why, nw, withb ? "layernorm with bias" : "layernorm");
    }
    free(x); free(w); free(b);
    return ok;
}

// elementwise: each value is a few ulp off (2^-24 = 6e-8): 1e-6 relative,
// plus 1e-7 absolute where the function crosses zero
static int elementwise_at(const attn_kernels *kp, int n, double *ref, float *out, char *why, size_t nw) {
    int ok = 1;
    float *x = rand_floats(n, -6, 6), *u = rand_floats(n, -2, 2);
    for (int i = 0; i < n; i++) ref[i] = 0.5 * x[i] * (1 + tanh(sqrt(2 / M_PI) * (x[i] + 0.044715 * pow(x[i], 3))));
    memcpy(out, x, sizeof(float) * n);
    kp->gelu_tanh(out, n);
    ok = close_all(out, ref, n, 1e-7, 1e-6, why, nw, "gelu_tanh");
    for (int i = 0; i < n; i++) ref[i] = 0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0)));
    memcpy(out, x, sizeof(float) * n);
    kp->gelu_erf(out, n);
    if (ok) ok = close_all(out, ref, n, 1e-7, 1e-6, why, nw, "gelu_erf");
    for (int i = 0; i < n; i++) ref[i] = x[i] / (1 + exp(-(double)x[i])) * u[i];
    memcpy(out, x, sizeof(float) * n);
    kp->swiglu(out, u, n);
    if (ok) ok = close_all(out, ref, n, 1e-7, 1e-6, why, nw, "swiglu");
    for (int i = 0; i < n; i++) ref[i] = (double)x[i] + u[i];
    memcpy(out, x, sizeof(float) * n);
    kp->add(out, u, n);
    if (ok) ok = close_all(out, ref, n, 0, 1e-7, why, nw, "add"); // one rounding
    // softmax with large values: needs the max subtracted
    double mx = -1e300, sum = 0;
    for (int i = 0; i < n; i++) { x[i] *= 20; if (x[i] > mx) mx = x[i]; }
    for (int i = 0; i < n; i++) sum += exp(x[i] - mx);
    for (int i = 0; i < n; i++) ref[i] = exp(x[i] - mx) / sum;
    memcpy(out, x, sizeof(float) * n);
    kp->softmax(out, n);
    if (ok) ok = close_all(out, ref, n, 1e-9, 1e-5, why, nw, "softmax");
    free(x); free(u);
    return ok;
}

// rope: rotate (a, b) by pos * freq; angles up to ~1000 rad in f32 lose
// ~6e-5 absolute in the angle itself (pos * freq rounded): 1e-4 absolute
static void test_rope(const attn_kernels *kp, double *ref, float *out) {
    char why[256] = "";
    int ok = 1;
    for (int halves = 0; halves < 2 && ok; halves++)
        for (int rot = 2; rot <= 64 && ok; rot += 30) { // 2, 32, 62
            int hd = 64, nh = 3, pos = halves ? 1000 : 7;
            float freqs[32], *x = rand_floats((size_t)nh * hd, -1, 1);
            for (int i = 0; i < rot / 2; i++) freqs[i] = powf(10000.0f, -2.0f * i / rot);
            for (int h = 0; h < nh; h++)
                for (int d = 0; d < hd; d++) ref[h * hd + d] = x[h * hd + d];
            for (int h = 0; h < nh; h++)
                for (int i = 0; i < rot / 2; i++) {
                    int ia = halves ? i : 2 * i, ib = halves ? i + rot / 2 : 2 * i + 1;
                    double ang = (double)((float)pos * freqs[i]), a = x[h * hd + ia], b = x[h * hd + ib];
                    ref[h * hd + ia] = a * cos(ang) - b * sin(ang);
                    ref[h * hd + ib] = a * sin(ang) + b * cos(ang);
                }
            memcpy(out, x, sizeof(float) * nh * hd);
            kp->rope(out, nh, hd, rot, pos, freqs, halves);
            ok = close_all(out, ref, nh * hd, 1e-5, 1e-5, why, sizeof why, halves ? "rope halves" : "rope pairs");
            free(x);
        }
    check_path(kp, ok, "rope pairs, halves, partial rotation", why);
}

// dequant_row: exact for every type
static void test_dequant_row(const attn_kernels *kp, float *out) {
    char why[256] = "";
    int ok = 1;
    for (size_t ti = 0; ti < sizeof wtypes / sizeof *wtypes && ok; ti++)
        for (int s = 0; s < NSIZES && ok; s++) {
            int n = wtypes[ti] == ATTN_Q8_0 ? (sizes[s] + 31) / 32 * 32 : sizes[s];
            wmat w = make_weights(wtypes[ti], 1, n);
            kp->dequant_row(w.data, wtypes[ti], out, n);
            ok = close_all(out, w.val, n, 0, 0, why, sizeof why, attn_type_name(wtypes[ti]));
            free_weights(&w);
        }
    check_path(kp, ok, "dequant_row (exact)", why);
}

// normals: libm's Box-Muller (log, cos, sin in double) on the same splitmix64
// numbers within 1e-9, and the scalar path's bits (stretches starting and
// ending odd or even, short and long, across runs of 16).
static uint64_t mix_at(uint64_t seed, uint64_t k) {
    uint64_t z = seed + (k + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void test_normals(const attn_kernels *kp) {
    enum { N = 4099 };
    static float w[N], r[N];
    char why[256] = "";
    int ok = 1;
    const uint64_t seed = 1234;
    kp->normals(seed, 6, N, 1.0, w); // numbers 6 .. 6 + N - 1
    double worst = 0;
    for (int i = 0; i < N && ok; i++) {
        uint64_t j = (6 + (uint64_t)i) & ~1ull;
        double u1 = ((mix_at(seed, j) >> 11) + 1.0) / 9007199254740992.0, u2 = (mix_at(seed, j + 1) >> 11) / 9007199254740992.0;
        double ref = sqrt(-2.0 * log(u1)) * ((6 + i) & 1 ? sin(2 * M_PI * u2) : cos(2 * M_PI * u2));
        worst = fmax(worst, fabs(w[i] - ref) - fabs(ref) * 0x1p-24); // beyond the float rounding
    }
    if (worst > 1e-9) ok = 0, snprintf(why, sizeof why, "%g from libm's Box-Muller beyond float rounding", worst);
    static const uint64_t firsts[] = { 0, 1, 15, 16, 17, 1000001 };
    static const size_t ns[] = { 1, 2, 15, 16, 17, 33, 100, 4099 };
    for (size_t a = 0; a < sizeof firsts / sizeof *firsts && ok; a++)
        for (size_t b = 0; b < sizeof ns / sizeof *ns && ok; b++) {
            kp->normals(seed, firsts[a], ns[b], 0.02, w);
            attn_kernels_scalar.normals(seed, firsts[a], ns[b], 0.02, r);
            if (memcmp(w, r, ns[b] * 4))
                ok = 0, snprintf(why, sizeof why, "from %llu, %zu: not the scalar path's bits", (unsigned long long)firsts[a], ns[b]);
        }
    check_path(kp, ok, "normals: libm's Box-Muller within 1e-9, scalar's bits", why);
}

// Row operations (norms, activations, softmax, RoPE, dequantization) against
// float64 references.
static void test_rowops(const attn_kernels *kp) {
    double *ref = malloc(sizeof(double) * 1024); // float64 reference, kernel output
    float *out = malloc(sizeof(float) * 1024);
    check_sizes(kp, "rmsnorm, layernorm", norms_at, ref, out);
    check_sizes(kp, "gelu_tanh, gelu_erf, swiglu, add, softmax", elementwise_at, ref, out);
    test_rope(kp, ref, out);
    test_dequant_row(kp, out);
    free(ref); free(out);
}

// ---------------------------------------------------------------- pool

typedef struct { double *part; int *hits; } pool_ctx;
static void pool_item(void *ctx, int i) {
    pool_ctx *c = ctx;
    double s = 0;
    for (int k = 1; k <= 200; k++) s += sin((double)i * k) / k;
    c->part[i] = s;
    __atomic_fetch_add(&c->hits[i], 1, __ATOMIC_RELAXED);
}

// attn_col_range: the items cover [0, N) in order, in whole column blocks
// (but the last end), and threads that each take the next item when free
// (the pool) finish within a block and a bit of the even share; ranges cut
// in equal chunks leave one thread up to a chunk behind (N = 2048, 2 threads:
// 24 blocks against 21.5).
static void test_col_split(void) {
    int ok = 1;
    char why[160] = "";
    for (int N = 1; N <= 6000 && ok; N += N < 300 ? 1 : 97)
        for (int nt = 1; nt <= 8 && ok; nt++) {
            int items = attn_col_items(N, nt), end = 0;
            double busy[8] = { 0 }, blocks = (double)N / ATTN_COL_BLOCK;
            for (int i = 0; i < items && ok; i++) {
                int n0, n1;
                attn_col_range(N, nt, i, &n0, &n1);
                if (n0 != end || n1 <= n0 || (n1 % ATTN_COL_BLOCK && n1 != N)) {
                    ok = 0;
                    snprintf(why, sizeof why, "N=%d nt=%d item %d/%d: [%d,%d) after %d", N, nt, i, items, n0, n1, end);
                }
                end = n1;
                int t = 0; // the thread free first takes the item
                for (int u = 1; u < nt; u++) t = busy[u] < busy[t] ? u : t;
                busy[t] += (double)(n1 - n0) / ATTN_COL_BLOCK;
            }
            double last = 0;
            for (int u = 0; u < nt; u++) last = busy[u] > last ? busy[u] : last;
            if (ok && end != N) ok = 0, snprintf(why, sizeof why, "N=%d nt=%d: items end at %d", N, nt, end);
            if (ok && last > blocks / nt + 1.5)
                ok = 0, snprintf(why, sizeof why, "N=%d nt=%d: last thread done after %.2f blocks of %.2f, share %.2f", N,
                                 nt, last, blocks, blocks / nt);
        }
    check(ok, "column split: items cover N in whole blocks, threads end within 1.5 blocks of an even share", "%s", why);
}

// attn_pool_run_beside: side once, on the calling thread, and every item once.
typedef struct { pthread_t caller; int runs, on_caller; } side_ctx;
static void side_fn(void *ctx) {
    side_ctx *s = ctx;
    s->runs++;
    s->on_caller += pthread_equal(pthread_self(), s->caller) != 0;
}

static void test_pool_beside(pool_ctx *c) {
    int ok = 1;
    char why[128] = "";
    for (int nt = 0; nt <= 3 && ok; nt++) {
        attn_pool *p = NULL;
        if (nt && attn_pool_new(&p, nt)) { ok = 0; snprintf(why, sizeof why, "attn_pool_new(%d): %s", nt, attn_errmsg()); break; }
        static const int ns[] = { 0, 1, 2, 7, 1000 };
        for (int k = 0; k < 5 && ok; k++)
            for (int rep = 0; rep < 20 && ok; rep++) {
                side_ctx sc = { pthread_self(), 0, 0 };
                memset(c->hits, 0, 1000 * sizeof *c->hits);
                attn_pool_run_beside(p, ns[k], pool_item, c, side_fn, &sc);
                if (sc.runs != 1 || sc.on_caller != 1)
                    ok = 0, snprintf(why, sizeof why, "%d threads, %d items: side ran %d times, %d on the caller", nt,
                                     ns[k], sc.runs, sc.on_caller);
                for (int i = 0; i < ns[k] && ok; i++)
                    if (c->hits[i] != 1)
                        ok = 0, snprintf(why, sizeof why, "%d threads: item %d of %d ran %d times", nt, i, ns[k], c->hits[i]);
            }
        attn_pool_free(p);
    }
    check(ok, "pool run beside: the side job once on the caller, every item once (no pool, 1-3 threads)", "%s", why);
}

static void test_pool(void) {
    enum { N = 1000 };
    double part[N], first = 0;
    int hits[N];
    pool_ctx c = { part, hits };
    int ok = 1;
    char why[128] = "";
    for (int nt = 1; nt <= 3 && ok; nt++) {
        attn_pool *p;
        if (attn_pool_new(&p, nt)) { ok = 0; snprintf(why, sizeof why, "attn_pool_new(%d): %s", nt, attn_errmsg()); break; }
        if (attn_pool_size(p) != nt) { ok = 0; snprintf(why, sizeof why, "size %d, asked %d", attn_pool_size(p), nt); }
        for (int rep = 0; rep < 300 && ok; rep++) { // many short jobs back to back
            int n = rep % 7 == 0 ? N : 1 + rep % 13;
            memset(hits, 0, sizeof hits);
            attn_pool_run(p, n, pool_item, &c);
            for (int i = 0; i < n; i++)
                if (hits[i] != 1) { ok = 0; snprintf(why, sizeof why, "%d threads: item %d of %d ran %d times", nt, i, n, hits[i]); break; }
            if (n == N && ok) {
                double sum = 0;
                for (int i = 0; i < N; i++) sum += part[i]; // fixed order: same bits
                if (nt == 1 && rep == 0) first = sum;
                else if (memcmp(&sum, &first, sizeof sum)) { ok = 0; snprintf(why, sizeof why, "%d threads: sum differs", nt); }
            }
        }
        attn_pool_free(p);
    }
    check(ok, "pool runs every item once, same sums with 1, 2, 3 threads", "%s", why);
    attn_pool *p = NULL;
    int rc = attn_pool_new(&p, 0);
    check(rc == 0 && attn_pool_size(p) == attn_online_cores() && attn_online_cores() >= 1, "pool default size = online cores",
          "rc %d size %d cores %d", rc, p ? attn_pool_size(p) : -1, attn_online_cores());
    attn_pool_free(p);
    attn_pool_run(NULL, 5, pool_item, &c); // no pool: on the caller
    check(hits[4] >= 1, "pool NULL runs on the caller", "item 4 not run");
    test_pool_beside(&c);
}

// ---------------------------------------------------------------- quantized types

// tests/data/quant_blocks.gguf (tests/parity/make_quant.py): blocks of every
// quantized type, random and from llama-quantize's output, each beside
// llama.cpp's reference decoding (gguf-py). dequant_row must give its bits
// (NaN where it has NaN); matmul on the blocks must give the bits that the
// same path gives on the reference's F32 rows (decoding is exact, so the
// chains of multiply-adds are the same), for GEMV and GEMM sizes; on the
// types a path keeps in the dot form (dot_form_type), the bits of that order
// (dot_form).
#define QUANT_FILE "tests/data/quant_blocks.gguf"

static int same_bits(const float *a, const float *b, size_t n, size_t *at) {
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) && isnan(b[i])) continue;
        if (memcmp(&a[i], &b[i], 4)) { *at = i; return 0; }
    }
    return 1;
}

// N rows cycling through the tensor's rows (rows of row_bytes bytes).
static uint8_t *cycle_rows(const attn_gguf_tensor *t, size_t row_bytes, int N) {
    uint8_t *w = malloc(row_bytes * (size_t)N);
    for (int n = 0; n < N; n++) memcpy(w + row_bytes * n, t->data + row_bytes * (size_t)(n % t->ne[1]), row_bytes);
    return w;
}

// The "dot form" (simd/drivers.h) of a path with L-lane vectors: lane l of L
// chains a[k] * w[k] in fused multiply-adds from +0 over k = l, l+L, ...; the
// lanes are then summed as halves, quarters, ..., pairs.
static float dot_form(const float *a, const float *w, int K, int L) {
    float v[16];
    for (int l = 0; l < L; l++) {
        v[l] = 0.0f;
        for (int k = l; k < K; k += L) v[l] = fmaf(a[k], w[k], v[l]);
    }
    for (int h = L / 2; h >= 1; h /= 2)
        for (int i = 0; i < h; i++) v[i] = v[i] + v[i + h];
    return v[0];
}

// The lanes of the dot form where kp keeps it for type t, K per row (dot_order
// in simd/avx512.c, avx2.c, neon.c), else 0: avx512, 16, for every quantized
// type and for F16 and BF16 rows of K % 32 == 0; avx2, 8, and
// neon, 4, for every type but F32 (F16 and BF16 where K % 8 or 4 == 0).
static int dot_form_type(const attn_kernels *kp, uint32_t t, int K) {
    if (!strcmp(kp->name, "avx2")) return t != ATTN_F32 && K % 8 == 0 ? 8 : 0;
    if (!strcmp(kp->name, "neon")) return t != ATTN_F32 && K % 4 == 0 ? 4 : 0;
    if (strcmp(kp->name, "avx512")) return 0;
    return (t == ATTN_F16 || t == ATTN_BF16 ? K % 32 == 0 : attn_is_quant(t)) ? 16 : 0;
}

// What kp's matmul must give on quantized weights of type t, from their f32
// decoding wf (N rows of K): its own f32 matmul, or the dot form + bias.
static void quant_expect(const attn_kernels *kp, uint32_t t, const float *A, const float *wf, const float *bias,
                         float *C, int M, int K, int N) {
    int L = dot_form_type(kp, t, K);
    if (!L) {
        kp->matmul(A, K, wf, ATTN_F32, bias, C, N, M, K, 0, N);
        return;
    }
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) C[(size_t)m * N + n] = dot_form(A + (size_t)m * K, wf + (size_t)n * K, K, L) + bias[n];
}

static void quant_matmul(const attn_kernels *kp, const attn_gguf_tensor *q, const attn_gguf_tensor *f, const char *name) {
    int K = (int)q->ne[0], N = 101;
    size_t qb = attn_type_row_bytes(q->type, (uint64_t)K), fb = (size_t)K * 4;
    uint8_t *wq = cycle_rows(q, qb, N), *wf = cycle_rows(f, fb, N);
    float *A = rand_floats((size_t)21 * K, -1, 1), *bias = rand_floats((size_t)N, -1, 1);
    float *cq = malloc(sizeof(float) * 21 * N), *cf = malloc(sizeof(float) * 21 * N);
    static const int Ms[] = { 1, 3, 7, 13, 21 }; // (5..16: avx512's GEMV for many rows of A)
    char label[160];
    for (int i = 0; i < 5; i++) {
        int M = Ms[i];
        // column ranges of 48, 32, 16 and 5 rows: each width the GEMV kernels treat apart
        static const int cuts[] = { 0, 48, 80, 96, 101 };
        for (int c = 0; c < 4; c++) kp->matmul(A, K, wq, q->type, bias, cq, N, M, K, cuts[c], cuts[c + 1]);
        quant_expect(kp, q->type, A, (const float *)wf, bias, cf, M, K, N);
        size_t at = 0;
        snprintf(label, sizeof label, "%s matmul %s M=%d bit-identical to its F32 decoding%s", kp->name, name, M,
                 dot_form_type(kp, q->type, K) ? " in the dot form" : "");
        check(same_bits(cq, cf, (size_t)M * N, &at), label, "element %zu: %.9g vs %.9g", at, cq[at], cf[at]);
        kp->matmul_exact(A, K, wq, q->type, bias, cq, N, M, K, 0, N);
        attn_scalar_matmul(A, K, wq, q->type, bias, cf, N, M, K, 0, N);
        snprintf(label, sizeof label, "%s matmul_exact %s M=%d bit-identical to scalar", kp->name, name, M);
        check(same_bits(cq, cf, (size_t)M * N, &at), label, "element %zu: %.9g vs %.9g", at, cq[at], cf[at]);
    }
    free(wq); free(wf); free(A); free(bias); free(cq); free(cf);
}

// F16 and BF16 rows whose K is a multiple of 32: what quant_expect says (the
// dot form where the path keeps it), for GEMV and GEMM sizes and a column split.
static void test_half_order(const attn_kernels *kp, uint32_t t) {
    int K = 320, N = 77;
    wmat w = make_weights(t, N, K);
    float *wf = malloc(sizeof(float) * (size_t)N * K), *A = rand_floats((size_t)21 * K, -1, 1);
    float *bias = rand_floats((size_t)N, -1, 1), *got = malloc(sizeof(float) * 21 * N), *want = malloc(sizeof(float) * 21 * N);
    for (size_t i = 0; i < (size_t)N * K; i++) wf[i] = (float)w.val[i];
    static const int Ms[] = { 1, 3, 7, 13, 21 };
    char label[128];
    for (int i = 0; i < 5; i++) {
        int M = Ms[i];
        kp->matmul(A, K, w.data, t, bias, got, N, M, K, 0, 48);
        kp->matmul(A, K, w.data, t, bias, got, N, M, K, 48, N);
        quant_expect(kp, t, A, wf, bias, want, M, K, N);
        size_t at = 0;
        snprintf(label, sizeof label, "%s matmul %s K=320 M=%d bit-identical to its F32 decoding%s", kp->name,
                 attn_type_name(t), M, dot_form_type(kp, t, K) ? " in the dot form" : "");
        check(same_bits(got, want, (size_t)M * N, &at), label, "element %zu: %.9g vs %.9g", at, got[at], want[at]);
    }
    free(wf); free(A); free(bias); free(got); free(want); free_weights(&w);
}

static void test_quant(const attn_kernels *kp) {
    attn_gguf_file f;
    if (attn_gguf_open(&f, QUANT_FILE)) { skip("quantized types", attn_errmsg()); return; }
    int n_types = 0;
    for (uint64_t i = 0; i < f.n_tensors; i++) {
        const attn_gguf_tensor *q = &f.tensors[i];
        if (q->type == ATTN_F32) continue;
        char name[64], fname[72], label[128];
        snprintf(name, sizeof name, "%.*s", (int)q->name.len, q->name.s);
        snprintf(fname, sizeof fname, "%s.f32", name);
        const attn_gguf_tensor *ft = attn_gguf_find_tensor(&f, fname);
        if (!ft || ft->ne[0] != q->ne[0] || ft->ne[1] != q->ne[1]) {
            check(0, "quant_blocks.gguf pairs", "no %s beside %s", fname, name);
            continue;
        }
        int K = (int)q->ne[0];
        size_t qb = attn_type_row_bytes(q->type, (uint64_t)K), at = 0;
        float *row = malloc(sizeof(float) * K);
        int ok = qb != 0;
        for (uint64_t r = 0; ok && r < q->ne[1]; r++) {
            kp->dequant_row(q->data + qb * r, q->type, row, K);
            ok = same_bits(row, (const float *)ft->data + (size_t)K * r, (size_t)K, &at);
            if (!ok) at += (size_t)K * r;
        }
        snprintf(label, sizeof label, "%s dequant %s bit-identical to gguf.quants.dequantize", kp->name, name);
        check(ok, label, "weight %zu: got %.9g, reference %.9g", at, qb ? row[at % K] : 0.0f,
              ((const float *)ft->data)[at]);
        free(row);
        if (!strstr(name, ".special")) quant_matmul(kp, q, ft, name);
        n_types += !!strstr(name, ".rand");
    }
    check(n_types == 12, "quant_blocks.gguf has all 12 quantized types", "%d", n_types);
    attn_gguf_close(&f);
}

// ---------------------------------------------------------------- dispatch

static void test_dispatch(void) {
    check(attn_kernels_select("nonsense") == ATTN_EINPUT && strstr(attn_errmsg(), "nonsense"), "ATTN_SIMD unknown path is bad input",
          "%s", attn_errmsg());
    check(attn_kernels_select("scalar") == 0 && strcmp(attn_k->name, "scalar") == 0, "select scalar", "%s", attn_errmsg());
    const attn_kernels **av = attn_kernels_available();
    static const char *all[] = { "avx2", "avx512", "neon" };
    for (int i = 0; i < 3; i++) {
        int have = 0;
        for (int j = 0; av[j]; j++) have |= strcmp(av[j]->name, all[i]) == 0;
        if (!have) check(attn_kernels_select(all[i]) == ATTN_EINPUT, "a path the CPU lacks is bad input", "%s accepted", all[i]);
    }
    setenv("ATTN_SIMD", "scalar", 1);
    check(attn_kernels_init() == 0 && strcmp(attn_k->name, "scalar") == 0, "ATTN_SIMD=scalar forces scalar", "%s", attn_k->name);
    unsetenv("ATTN_SIMD");
    int n = 0;
    while (av[n]) n++;
    check(attn_kernels_init() == 0 && attn_k == av[n - 1], "default is the best available path", "%s", attn_k->name);
}

int main(void) {
    const attn_kernels **av = attn_kernels_available();
    for (int i = 0; av[i]; i++) {
        test_matmul(av[i]);
        test_matmul_determinism(av[i]);
        test_exact(av[i]);
        test_attention(av[i]);
        test_rowops(av[i]);
        test_normals(av[i]);
        test_quant(av[i]);
        test_half_order(av[i], ATTN_F16);
        test_half_order(av[i], ATTN_BF16);
    }
    skip_absent_paths("kernels");
    test_col_split();
    test_pool();
    test_dispatch();
    CHECK_EXIT();
}
