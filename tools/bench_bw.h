// tools/bench_bw.h - the read-bandwidth measurement shared by bench_gemm.c and
// bench_gemv.c (included once by each; needs attn.h and a `now()` in seconds).
#ifndef ATTN_BENCH_BW_H
#define ATTN_BENCH_BW_H
#include <stdlib.h>

typedef struct { const float *a; size_t n; int nt; double sum[64]; } bw_job;
static void bw_item(void *ctx, int i) {
    bw_job *j = ctx;
    size_t per = j->n / j->nt, lo = per * i;
    const float *a = j->a + lo;
    float s[16] = { 0 };
    for (size_t k = 0; k + 16 <= per; k += 16)
        for (int l = 0; l < 16; l++) s[l] += a[k + l];
    double t = 0;
    for (int l = 0; l < 16; l++) t += s[l];
    j->sum[i] = t;
}

// Read bandwidth in GB/s of all pool threads summing a 512 MiB array (best of 10).
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
        if (n * 4 / t / 1e9 > best) best = n * 4 / t / 1e9;
    }
    free(a);
    return best;
}

#endif
