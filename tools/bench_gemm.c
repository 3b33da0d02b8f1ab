// tools/bench_gemm.c - the machine and kernel half of `make bench`: this
// CPU's FMA peak (own microbenchmark), its read bandwidth, and GEMM GFLOP/s
// of attn's matmul kernel against OpenBLAS sgemm on transformer shapes, each
// figure measured in this run on the same thread count. OpenBLAS is linked
// into this program only, never into attn.
//
//   bench_gemm [-t THREADS] [--quick]     prints "key value" lines (tools/bench.sh makes the table)
//   bench_gemm [-t THREADS] --bw          the read bandwidth alone (read_bw_gbs), taken
//                                         again beside each decode figure: on a shared
//                                         machine it moves within minutes
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "attn.h"
#include "simd/kernels.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

extern char *openblas_get_corename(void);
extern char *openblas_get_config(void);
extern void openblas_set_num_threads(int);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
#include "tools/bench_bw.h"

// ---------------------------------------------------------------- FMA peak

// Independent FMA chains, enough to cover latency x ports; returns flops.
// One template for every vector ISA: CHAINS accumulators of W floats,
// a[i] = a[i] * b + c.
#define FMA_LOOP(NAME, VEC, W, CHAINS, SET1, FMA, ADD, STORE)                                 \
    static double NAME(long iters) {                                                           \
        VEC a[CHAINS], b = SET1(0.999f), c = SET1(1e-3f);                                      \
        for (int i = 0; i < CHAINS; i++) a[i] = SET1((float)i);                                \
        for (long it = 0; it < iters; it++)                                                    \
            _Pragma("GCC unroll 16") for (int i = 0; i < CHAINS; i++) a[i] = FMA(a[i], b, c); \
        VEC s = a[0];                                                                          \
        for (int i = 1; i < CHAINS; i++) s = ADD(s, a[i]);                                     \
        float out[W];                                                                          \
        STORE(out, s);                                                                         \
        volatile float sink = out[0];                                                          \
        (void)sink;                                                                            \
        return (double)iters * CHAINS * W * 2;                                                 \
    }
#if defined(__x86_64__)
__attribute__((target("avx512f")))
FMA_LOOP(fma_loop512, __m512, 16, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps)
__attribute__((target("avx2,fma")))
FMA_LOOP(fma_loop256, __m256, 8, 12, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps)
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#define NEON_FMA(a, b, c) vfmaq_f32(c, a, b)
FMA_LOOP(fma_loop128, float32x4_t, 4, 16, vdupq_n_f32, NEON_FMA, vaddq_f32, vst1q_f32)
#endif

typedef struct { const char *path; long iters; atomic_int *ready; int n; double t; } fma_job;
static void *fma_thread(void *arg) {
    fma_job *j = arg;
    atomic_fetch_add(j->ready, 1); // start together (macOS has no pthread barriers)
    while (atomic_load(j->ready) < j->n) {}
    double t = now();
#if defined(__x86_64__)
    if (strcmp(j->path, "avx512") == 0) fma_loop512(j->iters);
    else fma_loop256(j->iters);
#elif defined(__aarch64__)
    fma_loop128(j->iters);
#endif
    j->t = now() - t;
    return NULL;
}

// GFLOP/s of nt threads running FMA chains at once, each on its own pthread
// (not the pool, whose caller may run every item itself on a busy machine):
// best of 20 short runs, the slowest thread of a run counting.
static double fma_peak(int nt, const char *path) {
    double per = 0, best = 0;
#if defined(__x86_64__)
    per = strcmp(path, "avx512") == 0 ? 16 * 16 * 2 : 12 * 8 * 2;
#elif defined(__aarch64__)
    per = 16 * 4 * 2;
#endif
    for (int rep = 0; rep < 20; rep++) {
        pthread_t th[64];
        fma_job j[64];
        atomic_int ready = 0;
        for (int i = 0; i < nt; i++) {
            j[i] = (fma_job){ path, 2000000, &ready, nt, 0 };
            pthread_create(&th[i], NULL, fma_thread, &j[i]);
        }
        double worst = 0;
        for (int i = 0; i < nt; i++) {
            pthread_join(th[i], NULL);
            worst = j[i].t > worst ? j[i].t : worst;
        }
        double g = per * 2000000 * nt / worst / 1e9;
        best = g > best ? g : best;
    }
    return best;
}


// ---------------------------------------------------------------- GEMM

typedef struct { const float *A, *W; float *C; int M, K, N, nt; } mm_job;
static void mm_item(void *ctx, int i) {
    mm_job *j = ctx;
    int n0, n1;
    attn_col_range(j->N, j->nt, i, &n0, &n1);
    attn_k->matmul(j->A, j->K, j->W, ATTN_F32, NULL, j->C, j->N, j->M, j->K, n0, n1);
}

// The column split of the forward pass (attn_model.c, simd/kernels.h).
static void ours(attn_pool *pool, const float *A, const float *W, float *C, int M, int K, int N) {
    mm_job j = { A, W, C, M, K, N, attn_pool_size(pool) };
    attn_pool_run(pool, attn_col_items(N, j.nt), mm_item, &j);
}

static void blas(const float *A, const float *W, float *C, int M, int K, int N) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, W, K, 0.0f, C, N);
}

int main(int argc, char **argv) {
    int nt = 0, quick = 0, bw_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) nt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--bw")) bw_only = 1;
    }
    if (attn_kernels_init()) { fprintf(stderr, "bench_gemm: %s\n", attn_errmsg()); return 2; }
    attn_pool *pool;
    if (attn_pool_new(&pool, nt)) { fprintf(stderr, "bench_gemm: %s\n", attn_errmsg()); return 1; }
    nt = attn_pool_size(pool);
    if (bw_only) {
        printf("read_bw_gbs %.1f\n", read_bw(pool));
        attn_pool_free(pool);
        return 0;
    }
    openblas_set_num_threads(nt);
    printf("threads %d\npath %s\nopenblas_core %s\nopenblas_config %s\n", nt, attn_k->name, openblas_get_corename(),
           openblas_get_config());
    // On a shared machine every figure is a best of several; the peak is
    // measured again before each shape and its best is printed at the end.
    double peak = fma_peak(nt < 64 ? nt : 64, attn_k->name);
    if (!quick) printf("read_bw_gbs %.1f\n", read_bw(pool));
    fflush(stdout);

    static const int shapes[][3] = { // T, K (in), N (out)
        { 256, 768, 768 }, { 256, 768, 2304 }, { 256, 768, 3072 }, { 256, 3072, 768 }, { 512, 2048, 2048 },
    };
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        float *A = aligned_alloc(64, sizeof(float) * M * K), *W = aligned_alloc(64, sizeof(float) * N * K);
        float *C1 = aligned_alloc(64, sizeof(float) * M * N), *C2 = aligned_alloc(64, sizeof(float) * M * N);
        srand(1);
        for (long i = 0; i < (long)M * K; i++) A[i] = (float)rand() / RAND_MAX - 0.5f;
        for (long i = 0; i < (long)N * K; i++) W[i] = (float)rand() / RAND_MAX - 0.5f;
        double p = fma_peak(nt < 64 ? nt : 64, attn_k->name);
        peak = p > peak ? p : peak;
        double flop = 2.0 * M * N * K, t_ours = 1e9, t_blas = 1e9;
        // interleaved, best time of each, for 2 s (0.5 s quick) or 300 rounds: on
        // a shared machine the best round is the one nobody else ran in
        double budget = quick ? 0.5 : 2.0, t_start = now();
        ours(pool, A, W, C1, M, K, N); // warm up both, and pages
        blas(A, W, C2, M, K, N);
        for (int r = 0; r < 300 && (r < 5 || now() - t_start < budget); r++) {
            double t = now();
            ours(pool, A, W, C1, M, K, N);
            t = now() - t;
            if (t < t_ours) t_ours = t;
            t = now();
            blas(A, W, C2, M, K, N);
            t = now() - t;
            if (t < t_blas) t_blas = t;
        }
        double maxd = 0, maxv = 0; // the peer's result must be right: compare with ours
        for (long i = 0; i < (long)M * N; i++) {
            maxd = fmax(maxd, fabs(C1[i] - C2[i]));
            maxv = fmax(maxv, fabs(C2[i]));
        }
        printf("gemm %d %d %d ours_gflops %.1f blas_gflops %.1f maxdiff_rel %.2g\n", M, K, N, flop / t_ours / 1e9,
               flop / t_blas / 1e9, maxd / maxv);
        fflush(stdout);
        free(A); free(W); free(C1); free(C2);
    }
    printf("fma_peak_gflops %.1f\n", peak);
    attn_pool_free(pool);
    return 0;
}
