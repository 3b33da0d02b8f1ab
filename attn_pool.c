// attn_pool.c - threads: a persistent pthread pool. attn_pool_run publishes
// a job (generation, item count) in one atomic word; every thread, the caller
// included, claims item indices from it with compare-and-swap, and the caller
// returns when all items are done. A worker that wakes late finds nothing
// left and never holds the caller up, so a busy machine degrades to the
// caller doing the work alone. Items are independent, so which thread runs
// which item never changes a result. Idle workers spin briefly (a decode step
// runs dozens of short jobs back to back), then sleep on a condition variable.
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE // sched_getaffinity
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include "attn.h"

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield")
#else
#define cpu_relax() ((void)0)
#endif

// The job word: generation (24 bits) | item count (20) | next item (20).
#define JOB_BITS 20
#define JOB_MAX ((1 << JOB_BITS) - 1)
#define JOB_GEN(s) ((uint32_t)((s) >> (2 * JOB_BITS)))
#define JOB_N(s) ((int)(((s) >> JOB_BITS) & JOB_MAX))
#define JOB_NEXT(s) ((int)((s) & JOB_MAX))

struct attn_pool {
    int n_threads;        // including the caller
    int spin;             // pause iterations before sleeping (0 when oversubscribed)
    pthread_t *threads;   // n_threads - 1 workers
    _Atomic uint64_t job; // see JOB_*
    atomic_int done;      // items of the current job finished
    atomic_int sleepers;  // workers waiting on `wake`
    atomic_int waiting;   // 1 while the caller waits on `finished`
    void (*fn)(void *ctx, int i);
    void *ctx;
    int base;             // index of the job's item 0 (jobs of more than JOB_MAX items are split)
    pthread_mutex_t mu;
    pthread_cond_t wake, finished;
    atomic_int quit;
};

int attn_online_cores(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

// Claim and run items of generation gen until none is left. A successful
// claim means the job is not finished, so fn/ctx still belong to it.
static void run_items(attn_pool *p, uint32_t gen) {
    uint64_t s = atomic_load(&p->job);
    for (;;) {
        if (JOB_GEN(s) != gen || JOB_NEXT(s) >= JOB_N(s)) return;
        if (!atomic_compare_exchange_weak(&p->job, &s, s + 1)) continue; // s reloaded
        int n = JOB_N(s);
        p->fn(p->ctx, p->base + JOB_NEXT(s));
        if (atomic_fetch_add(&p->done, 1) + 1 == n && atomic_load(&p->waiting)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->finished);
            pthread_mutex_unlock(&p->mu);
        }
        s = atomic_load(&p->job);
    }
}

static void *worker(void *arg) {
    attn_pool *p = arg;
    uint32_t seen = JOB_GEN(atomic_load(&p->job));
    for (;;) {
        uint32_t gen = seen;
        for (int s = 0; s < p->spin && (gen = JOB_GEN(atomic_load(&p->job))) == seen; s++) cpu_relax();
        if (gen == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1); // seq_cst: the caller sees it or we see the new job
            while ((gen = JOB_GEN(atomic_load(&p->job))) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) return NULL;
        seen = gen;
        run_items(p, gen);
    }
}

int attn_pool_new(attn_pool **out, int n_threads) {
    *out = NULL;
    if (n_threads <= 0) n_threads = attn_online_cores();
    if (n_threads > 1024) return attn_err(ATTN_EINPUT, "threads: %d is too many (at most 1024)", n_threads);
    attn_pool *p = calloc(1, sizeof *p);
    if (!p) return attn_err(ATTN_EFAIL, "thread pool: out of memory");
    p->n_threads = 1;
    p->spin = n_threads <= attn_online_cores() ? 1 << 14 : 0;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->finished, NULL);
    if (n_threads > 1 && !(p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads))) {
        attn_pool_free(p);
        return attn_err(ATTN_EFAIL, "thread pool: out of memory");
    }
    for (int t = 0; t < n_threads - 1; t++) {
        if (pthread_create(&p->threads[t], NULL, worker, p) != 0) {
            attn_pool_free(p);
            return attn_err(ATTN_EFAIL, "thread pool: cannot start thread %d", t + 2);
        }
        p->n_threads++;
    }
    *out = p;
    return 0;
}

void attn_pool_free(attn_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    atomic_fetch_add(&p->job, (uint64_t)1 << (2 * JOB_BITS)); // a new generation wakes the spinners
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int t = 0; t < p->n_threads - 1; t++) pthread_join(p->threads[t], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->finished);
    free(p->threads);
    free(p);
}

int attn_pool_size(const attn_pool *p) { return p ? p->n_threads : 1; }

// One job: items base .. base+n-1, n <= JOB_MAX; side(side_ctx) (if any) on
// the calling thread first, while the workers start on the items.
static void run_job(attn_pool *p, int base, int n, void (*fn)(void *ctx, int i), void *ctx, void (*side)(void *),
                    void *side_ctx) {
    p->fn = fn;
    p->ctx = ctx;
    p->base = base;
    atomic_store(&p->done, 0);
    uint32_t gen = (JOB_GEN(atomic_load(&p->job)) + 1) & 0xffffff;
    atomic_store(&p->job, (uint64_t)gen << (2 * JOB_BITS) | (uint64_t)n << JOB_BITS); // publishes fn, ctx
    if (atomic_load(&p->sleepers)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    if (side) side(side_ctx);
    run_items(p, gen);
    for (int s = 0; atomic_load(&p->done) < n && s < p->spin; s++) cpu_relax();
    if (atomic_load(&p->done) < n) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->waiting, 1);
        while (atomic_load(&p->done) < n) pthread_cond_wait(&p->finished, &p->mu);
        atomic_store(&p->waiting, 0);
        pthread_mutex_unlock(&p->mu);
    }
}

// Not reentrant: one attn_pool_run at a time per pool. A NULL pool runs the
// items on the calling thread.
void attn_pool_run_beside(attn_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx, void (*side)(void *),
                          void *side_ctx) {
    if (!p || p->n_threads == 1 || n <= 1) {
        if (side) side(side_ctx);
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    for (int base = 0; base < n; base += JOB_MAX, side = NULL)
        run_job(p, base, n - base < JOB_MAX ? n - base : JOB_MAX, fn, ctx, side, side_ctx);
}

void attn_pool_run(attn_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx) {
    attn_pool_run_beside(p, n, fn, ctx, NULL, NULL);
}
