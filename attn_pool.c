// attn_pool.c - threads: a persistent pthread pool. attn_pool_run hands out
// the item indices of one job through an atomic counter; the calling thread
// works too. Items are independent, so which thread runs which item never
// changes a result. Idle workers spin briefly (a decode step runs dozens of
// short jobs back to back) and then sleep on a condition variable.
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE // sched_getaffinity
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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

struct attn_pool {
    int n_threads;          // including the caller
    int spin;               // spin iterations before sleeping (0 if oversubscribed)
    pthread_t *threads;     // n_threads - 1 workers
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    atomic_uint gen;        // job generation; bumped to start a job
    atomic_int next;        // next item index of the current job
    atomic_int busy;        // workers still in the current job
    int n;                  // current job
    void (*fn)(void *ctx, int i);
    void *ctx;
    int quit;
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

static void run_items(attn_pool *p) {
    int i;
    while ((i = atomic_fetch_add(&p->next, 1)) < p->n) p->fn(p->ctx, i);
}

static void *worker(void *arg) {
    attn_pool *p = arg;
    unsigned seen = 0;
    for (;;) {
        int s = 0;
        while (atomic_load(&p->gen) == seen && s < p->spin) { cpu_relax(); s++; }
        if (atomic_load(&p->gen) == seen) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen && !p->quit) pthread_cond_wait(&p->wake, &p->mu);
            int quit = p->quit;
            pthread_mutex_unlock(&p->mu);
            if (quit) return NULL;
        }
        seen = atomic_load(&p->gen);
        run_items(p);
        if (atomic_fetch_sub(&p->busy, 1) == 1) { // last one out wakes the caller
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

int attn_pool_new(attn_pool **out, int n_threads) {
    *out = NULL;
    if (n_threads <= 0) n_threads = attn_online_cores();
    if (n_threads > 1024) return attn_err(ATTN_EINPUT, "threads: %d is too many", n_threads);
    attn_pool *p = calloc(1, sizeof *p);
    if (!p) return attn_err(ATTN_EFAIL, "thread pool: out of memory");
    p->n_threads = n_threads;
    p->spin = n_threads <= attn_online_cores() ? 1 << 14 : 0;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) { attn_pool_free(p); return attn_err(ATTN_EFAIL, "thread pool: out of memory"); }
    }
    for (int t = 0; t < n_threads - 1; t++) {
        if (pthread_create(&p->threads[t], NULL, worker, p) != 0) {
            p->n_threads = t + 1; // the ones started, plus the caller
            attn_pool_free(p);
            return attn_err(ATTN_EFAIL, "thread pool: cannot start thread %d", t + 1);
        }
    }
    *out = p;
    return 0;
}

void attn_pool_free(attn_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int t = 0; t < p->n_threads - 1; t++) pthread_join(p->threads[t], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int attn_pool_size(const attn_pool *p) { return p ? p->n_threads : 1; }

// A NULL pool runs the items on the calling thread.
void attn_pool_run(attn_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx) {
    if (n <= 0) return;
    if (!p || p->n_threads == 1 || n == 1) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    p->n = n;
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->next, 0);
    atomic_store(&p->busy, p->n_threads - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->gen, 1); // publishes the job (seq_cst)
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_items(p);
    for (int s = 0; atomic_load(&p->busy) != 0 && s < p->spin; s++) cpu_relax();
    if (atomic_load(&p->busy) != 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->busy) != 0) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
