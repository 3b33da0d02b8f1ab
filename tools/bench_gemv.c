// tools/bench_gemv.c - decode's matrix-vector product (M = 1) per weight
// type against this machine's read bandwidth, on the pool's threads.
//
//   bench_gemv [-t THREADS] [-K K] [-mb MiB] [-rows N] [TYPE ...]
// prints per type (every type, or the TYPEs named: F16, Q4_0, ...): GB/s of weights read (wall clock), % of the read bandwidth,
// and GB/s per CPU-second (weights / process CPU time: what one core streams
// when it has the CPU, the figure to compare on a loaded machine).
// The weight matrix (about MiB of it, K columns) is larger than the caches
// by default (-mb 1: about a core's L2, the decoding's speed alone); its
// bytes are random with f16 scale bytes kept finite. Each figure is the best
// of 7 runs, or of 0.5 s of runs where they are short. -rows N runs it as
// consecutive matrices of N rows, one pool dispatch each (a model's decode
// step: 2560 rows is TinyLlama's q, k and v together); default one dispatch.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "attn.h"
#include "simd/kernels.h"

static double clock_s(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
#include "tools/bench_bw.h"


typedef struct { const float *x; const uint8_t *W; uint32_t t; float *y; int K, N, nt; } mv_job;
static void mv_item(void *ctx, int i) {
    mv_job *j = ctx;
    int n0, n1;
    attn_col_range(j->N, j->nt, i, &n0, &n1);
    attn_k->matmul(j->x, j->K, j->W, j->t, NULL, j->y, j->N, 1, j->K, n0, n1);
}

// The whole matrix in dispatches of `rows` rows each (0: one dispatch).
static void mv_sweep(attn_pool *pool, mv_job j, int rows, size_t rb) {
    if (rows <= 0 || rows >= j.N) {
        attn_pool_run(pool, attn_col_items(j.N, j.nt), mv_item, &j);
        return;
    }
    int N = j.N;
    for (int r = 0; r + rows <= N; r += rows) {
        mv_job p = j;
        p.W = j.W + rb * r, p.y = j.y + r, p.N = rows;
        attn_pool_run(pool, attn_col_items(rows, j.nt), mv_item, &p);
    }
}

int main(int argc, char **argv) {
    int nt = 2, K = 2048, mb = 256, named = 0, rows = 0;
    const char *only[16];
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "-t")) nt = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "-K")) K = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "-mb")) mb = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "-rows")) rows = atoi(argv[++i]);
        else if (named < 16) only[named++] = argv[i];
    }
    if (attn_kernels_init()) return 1;
    attn_pool *pool;
    if (attn_pool_new(&pool, nt)) return 1;
    double bw = read_bw(pool);
    printf("kernels %s threads %d read_bw_gbs %.1f K %d\n", attn_k->name, nt, bw, K);
    static const uint32_t types[] = { ATTN_F16, ATTN_BF16, ATTN_Q8_0, ATTN_Q4_0, ATTN_Q4_1, ATTN_Q5_0, ATTN_Q5_1,
                                      ATTN_Q2_K, ATTN_Q3_K, ATTN_Q4_K, ATTN_Q5_K, ATTN_Q6_K, ATTN_IQ4_NL, ATTN_IQ4_XS };
    float *x = malloc((size_t)K * 4);
    for (int k = 0; k < K; k++) x[k] = (float)((k * 7919) % 1000) / 1000.0f - 0.5f;
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        uint32_t t = types[ti];
        int wanted = !named;
        for (int i = 0; i < named; i++) wanted |= !strcmp(only[i], attn_type_name(t));
        if (!wanted) continue;
        size_t rb = attn_type_row_bytes(t, (uint64_t)K);
        int N = (int)(((size_t)mb << 20) / rb) / 48 * 48;
        uint8_t *W = malloc(rb * N);
        float *y = malloc((size_t)N * 4);
        uint64_t s = 88172645463325252ull;
        for (size_t i = 0; i < rb * N; i++) { // bytes < 0x78: every f16 is finite
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            W[i] = (uint8_t)(s % 0x78);
        }
        mv_job j = { x, W, t, y, K, N, nt }; // the forward pass's split
        double best = 1e9, cpu = 1e9, spent = 0;
        for (int rep = 0; rep < 7 || (spent < 0.5 && rep < 100000); rep++) { // (small matrices: 0.5 s of runs)
            double t0 = now(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
            mv_sweep(pool, j, rows, rb);
            double c1 = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
            t0 = now() - t0;
            spent += t0;
            if (t0 < best) best = t0;
            if (c1 < cpu) cpu = c1;
        }
        double gbs = rb * N / best / 1e9;
        printf("%-7s %6.1f GB/s %5.0f %% of read bw %6.1f GB/s per CPU-second (%d x %d)\n", attn_wtype(t)->name, gbs,
               100 * gbs / bw, rb * N / cpu / 1e9, N, K);
        free(W), free(y);
    }
    free(x);
    attn_pool_free(pool);
    return 0;
}
