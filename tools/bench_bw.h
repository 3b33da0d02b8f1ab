// tools/bench_bw.h - the read-bandwidth measurement shared by bench_gemm.c and
// bench_gemv.c (included once by each; needs attn.h, simd/kernels.h and a
// `now()` in seconds).
#ifndef ATTN_BENCH_BW_H
#define ATTN_BENCH_BW_H
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

// Sum of a[0..n) (n a multiple of 4 W) in 4 chains of W-float vectors, each
// load as wide as the path's vectors: how fast a core streams memory depends
// on the width of its loads (on this project's 2-core AMD EPYC, 64-byte
// loads read 37 GB/s per core, a float loop compiled for plain x86-64, 16
// bytes a load, 21).
#define BW_SUM(NAME, VEC, W, LOAD, ZERO, ADD, STORE)                        \
    static double NAME(const float *a, size_t n) {                           \
        VEC s0 = ZERO, s1 = ZERO, s2 = ZERO, s3 = ZERO;                      \
        for (size_t k = 0; k < n; k += 4 * W)                                \
            s0 = ADD(s0, LOAD(a + k)), s1 = ADD(s1, LOAD(a + k + W)),        \
            s2 = ADD(s2, LOAD(a + k + 2 * W)), s3 = ADD(s3, LOAD(a + k + 3 * W)); \
        float out[W];                                                        \
        STORE(out, ADD(ADD(s0, s1), ADD(s2, s3)));                           \
        double t = 0;                                                        \
        for (int l = 0; l < W; l++) t += out[l];                             \
        return t;                                                            \
    }
#if defined(__x86_64__)
__attribute__((target("avx512f")))
BW_SUM(bw_sum512, __m512, 16, _mm512_loadu_ps, _mm512_setzero_ps(), _mm512_add_ps, _mm512_storeu_ps)
__attribute__((target("avx2")))
BW_SUM(bw_sum256, __m256, 8, _mm256_loadu_ps, _mm256_setzero_ps(), _mm256_add_ps, _mm256_storeu_ps)
#define bw_sum_vec(a, n) (strcmp(attn_k->name, "avx512") == 0 ? bw_sum512(a, n) : bw_sum256(a, n))
#elif defined(__aarch64__)
BW_SUM(bw_sum128, float32x4_t, 4, vld1q_f32, vdupq_n_f32(0.0f), vaddq_f32, vst1q_f32)
#define bw_sum_vec(a, n) bw_sum128(a, n)
#endif

typedef struct { const float *a; size_t n; int nt; double sum[64]; } bw_job;
static void bw_item(void *ctx, int i) {
    bw_job *j = ctx;
    size_t per = j->n / j->nt / 64 * 64;
    const float *a = j->a + per * i;
#ifdef bw_sum_vec
    if (strcmp(attn_k->name, "scalar") != 0) {
        j->sum[i] = bw_sum_vec(a, per);
        return;
    }
#endif
    float s[16] = { 0 };
    for (size_t k = 0; k < per; k += 16)
        for (int l = 0; l < 16; l++) s[l] += a[k + l];
    double t = 0;
    for (int l = 0; l < 16; l++) t += s[l];
    j->sum[i] = t;
}

// Read bandwidth in GB/s of all pool threads summing a 512 MiB array (best of
// 10), with the path's vector loads.
static double read_bw(attn_pool *pool) {
    size_t n = (size_t)1 << 27;
    float *a = aligned_alloc(64, n * 4);
    if (!a) return 0;
    for (size_t i = 0; i < n; i++) a[i] = 1.0f;
    double best = 0;
    for (int rep = 0; rep < 10; rep++) {
        bw_job j = { a, n, attn_pool_size(pool), { 0 } };
        double t = now();
        attn_pool_run(pool, j.nt, bw_item, &j);
        t = now() - t;
        size_t bytes = j.n / j.nt / 64 * 64 * j.nt * 4;
        if (bytes / t / 1e9 > best) best = bytes / t / 1e9;
    }
    free(a);
    return best;
}

#endif
