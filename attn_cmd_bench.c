// attn_cmd_bench.c - `attn bench`: speed of a model on this machine.
// Prefill of T tokens (logits of the last position), the same with every
// layer's and head's attention captured (copied out as [L][H][T][T] would be),
// and decode (one token at a time with the KV cache) for n tokens.
#include "attn_cli.h"
#include "simd/kernels.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Capture that touches every probability, as a consumer copying it would.
typedef struct { double sum; } bench_sink;
static void sink_attn(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p) {
    bench_sink *b = ctx;
    (void)layer, (void)head, (void)q0;
    double s = 0;
    for (size_t i = 0; i < (size_t)nq * nk; i++) s += p[i];
    b->sum += s;
}

static const char BENCH_HELP[] =
    "usage: attn bench [-m FILE] [-T N] [-n N] [-t N] [--repeat R]\n"
    "                  [--format table|json]\n\n"
    "Speed of this model on this machine, on random token ids:\n"
    "  prefill ms          forward of T tokens, logits of the last position\n"
    "  prefill+capture ms  the same with every layer's and head's attention\n"
    "                      probabilities handed out (L*H*T*T floats)\n"
    "  decode tok/s        n tokens generated one at a time with the KV cache\n"
    "                      (after a prompt of 1 token)\n"
    "Defaults: T = 256 and n = 128, or less where the model's context is shorter\n"
    "(T <= context, n <= context - 1; larger values given are refused).\n"
    "Each figure is the best of R runs (default 3).\n";

// ---- options -> result -> print

typedef struct {
    cli_opts o;
    const char *fmt;    // table or json
    long T, n, reps;    // 0: the default, within the context
} bench_opts;

typedef struct {
    attn_model *m;
    attn_pool *pool;
    long T, n;          // as run
    int threads;
    double pre_ms, cap_ms, dec_ms; // best of the repeats
} bench_result;

static int bench_opt(void *p, const char *a, int argc, char **argv, int *i) {
    bench_opts *bo = p;
    if (!strcmp(a, "-T")) return cli_opt_int(argc, argv, i, 1, 1 << 20, &bo->T);
    if (!strcmp(a, "-n")) return cli_opt_int(argc, argv, i, 1, 1 << 20, &bo->n);
    if (!strcmp(a, "--repeat")) return cli_opt_int(argc, argv, i, 1, 1000, &bo->reps);
    return 0;
}

static int bench_parse(int argc, char **argv, bench_opts *bo) {
    bo->reps = 3;
    if (cli_parse_opts(&bo->o, argc, argv, bench_opt, bo)) return CLI_PRINTED;
    return bo->o.help ? 0 : cli_format(&bo->o, "table,json", &bo->fmt);
}

// The model, and -T / -n checked against its context (defaults within it).
static int bench_setup(const bench_opts *bo, bench_result *r) {
    int rc = cli_setup(&bo->o, &r->m, &r->pool, NULL, NULL, NULL);
    if (rc) return rc;
    const attn_config *c = &r->m->cfg;
    if (c->n_ctx < 2) return attn_err(ATTN_EINPUT, "bench: a context of %d leaves nothing to decode", c->n_ctx);
    if (bo->T > c->n_ctx)
        return attn_err(ATTN_EINPUT, "bench: -T %ld is more than the model's context of %d allows (%d)", bo->T,
                        c->n_ctx, c->n_ctx);
    if (bo->n > c->n_ctx - 1)
        return attn_err(ATTN_EINPUT, "bench: -n %ld is more than the model's context of %d allows (%d)", bo->n,
                        c->n_ctx, c->n_ctx - 1);
    r->T = bo->T ? bo->T : c->n_ctx < 256 ? c->n_ctx : 256;
    r->n = bo->n ? bo->n : c->n_ctx - 1 < 128 ? c->n_ctx - 1 : 128;
    r->threads = attn_pool_size(r->pool);
    return 0;
}

// The timings, each the best of --repeat runs on random ids.
static int bench_compute(const bench_opts *bo, bench_result *r) {
    int rc = bench_setup(bo, r);
    if (rc) return rc;
    long T = r->T, n = r->n, N = T > n + 1 ? T : n + 1;
    int32_t *ids = malloc((size_t)N * sizeof *ids);
    float *logits = malloc((size_t)r->m->cfg.n_vocab * sizeof *logits);
    attn_session *s = NULL;
    if (!ids || !logits || (rc = attn_session_new(&s, r->m, (int)N, r->pool))) {
        if (!rc) rc = attn_err(ATTN_EFAIL, "out of memory");
        goto done;
    }
    uint64_t x = 88172645463325252ull;
    for (long i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ids[i] = (int32_t)(x % (uint64_t)r->m->cfg.n_vocab);
    }
    r->pre_ms = r->cap_ms = r->dec_ms = 1e30;
    bench_sink sink = { 0 };
    attn_capture cap = { .on_attn = sink_attn, .ctx = &sink };
    for (long k = 0; k < bo->reps && !rc; k++) {
        cli_progress("bench", k, bo->reps);
        double t0 = now_ms();
        attn_session_reset(s);
        if ((rc = attn_session_feed(s, ids, (int)T, logits, 1, NULL))) break;
        double t1 = now_ms();
        attn_session_reset(s);
        if ((rc = attn_session_feed(s, ids, (int)T, logits, 1, &cap))) break;
        double t2 = now_ms();
        attn_session_reset(s);
        if ((rc = attn_session_feed(s, ids, 1, logits, 1, NULL))) break;
        double t3 = now_ms();
        for (long i = 0; i < n && !rc; i++) rc = attn_session_feed(s, ids + 1 + i, 1, logits, 1, NULL);
        double t4 = now_ms();
        r->pre_ms = t1 - t0 < r->pre_ms ? t1 - t0 : r->pre_ms;
        r->cap_ms = t2 - t1 < r->cap_ms ? t2 - t1 : r->cap_ms;
        r->dec_ms = t4 - t3 < r->dec_ms ? t4 - t3 : r->dec_ms;
    }
    cli_progress("bench", bo->reps, bo->reps);
done:
    attn_session_free(s);
    free(ids);
    free(logits);
    return rc;
}

static int print_bench(const bench_result *r, const bench_opts *bo) {
    const char *fmt = bo->fmt;
    const attn_config *c = &r->m->cfg;
    if (!strcmp(fmt, "json")) {
        cli_json_open_model(r->m->name);
        printf(", \"simd\": \"%s\", \"threads\": %d, \"T\": %ld, \"n\": %ld, \"prefill_ms\": ", attn_k->name,
               r->threads, r->T, r->n);
        attn_json_numf(stdout, "%.3f", r->pre_ms);
        cli_json_num("prefill_capture_ms", "%.3f", r->cap_ms);
        cli_json_num("decode_tok_s", "%.2f", r->n / (r->dec_ms / 1e3));
        printf("}\n");
    } else {
        printf("model            %s (%.2f M parameters)\n", r->m->name, r->m->n_params / 1e6);
        printf("simd, threads    %s, %d\n", attn_k->name, r->threads);
        printf("prefill          %9.2f ms  (T = %ld, %.0f tok/s)\n", r->pre_ms, r->T, r->T / (r->pre_ms / 1e3));
        printf("prefill+capture  %9.2f ms  (all %d x %d heads, %.1f MB of probabilities)\n", r->cap_ms,
               c->n_layer, c->n_head, (double)c->n_layer * c->n_head * r->T * r->T * 4 / 1e6);
        printf("decode           %9.2f tok/s  (n = %ld)\n", r->n / (r->dec_ms / 1e3), r->n);
    }
    return 0;
}

static void bench_result_free(bench_result *r) {
    attn_pool_free(r->pool);
    attn_model_free(r->m);
}

CLI_COMMAND(bench, bench, "speed of this model on this machine", BENCH_HELP);
