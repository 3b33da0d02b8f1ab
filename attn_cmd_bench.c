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

static const char *HELP =
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

int cmd_bench(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    long T = 0, n = 0, reps = 3; // 0: the default, within the context
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return cli_exit(CLI_PRINTED);
        if (r > 0) continue;
        const char *v;
        if (!strcmp(argv[i], "-T")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_int("-T", v, 1, 1 << 20, &T)) return cli_exit(CLI_PRINTED);
        } else if (!strcmp(argv[i], "-n")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_int("-n", v, 1, 1 << 20, &n)) return cli_exit(CLI_PRINTED);
        } else if (!strcmp(argv[i], "--repeat")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_int("--repeat", v, 1, 1000, &reps)) return cli_exit(CLI_PRINTED);
        } else return cli_bad_opt("bench", argv[i]);
    }
    if (o.help) { fputs(HELP, stdout); return 0; }
    const char *fmt;
    attn_model *m;
    attn_pool *pool;
    if (cli_format(&o, "table,json", &fmt)) return cli_exit(ATTN_EINPUT);
    int rc = cli_load_model(&o, 0, &m);
    if (rc) return cli_exit(rc);
    if ((rc = cli_pool(&o, &pool))) { attn_model_free(m); return cli_exit(rc); }
    const attn_config *c = &m->cfg;
    if (c->n_ctx < 2) rc = attn_err(ATTN_EINPUT, "bench: a context of %d leaves nothing to decode", c->n_ctx);
    else if (T > c->n_ctx)
        rc = attn_err(ATTN_EINPUT, "bench: -T %ld is more than the model's context of %d allows (%d)", T, c->n_ctx, c->n_ctx);
    else if (n > c->n_ctx - 1)
        rc = attn_err(ATTN_EINPUT, "bench: -n %ld is more than the model's context of %d allows (%d)", n, c->n_ctx,
                      c->n_ctx - 1);
    if (rc) {
        attn_pool_free(pool);
        attn_model_free(m);
        return cli_exit(rc);
    }
    if (!T) T = c->n_ctx < 256 ? c->n_ctx : 256;
    if (!n) n = c->n_ctx - 1 < 128 ? c->n_ctx - 1 : 128;
    int32_t *ids = malloc((size_t)(T > n + 1 ? T : n + 1) * sizeof *ids);
    float *logits = malloc((size_t)c->n_vocab * sizeof *logits);
    attn_session *s = NULL;
    if (!ids || !logits || (rc = attn_session_new(&s, m, (int)(T > n + 1 ? T : n + 1), pool))) {
        if (!rc) rc = attn_err(ATTN_EFAIL, "out of memory");
        goto done;
    }
    uint64_t x = 88172645463325252ull;
    for (long i = 0; i < (T > n + 1 ? T : n + 1); i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ids[i] = (int32_t)(x % (uint64_t)c->n_vocab);
    }
    double best_pre = 1e30, best_cap = 1e30, best_dec = 1e30;
    bench_sink sink = { 0 };
    attn_capture cap = { .on_attn = sink_attn, .ctx = &sink };
    for (long r = 0; r < reps && !rc; r++) {
        cli_progress("bench", r, reps);
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
        best_pre = t1 - t0 < best_pre ? t1 - t0 : best_pre;
        best_cap = t2 - t1 < best_cap ? t2 - t1 : best_cap;
        best_dec = t4 - t3 < best_dec ? t4 - t3 : best_dec;
    }
    cli_progress("bench", reps, reps);
    if (rc) goto done;
    int threads = attn_pool_size(pool);
    if (!strcmp(fmt, "json")) {
        printf("{\"model\": ");
        attn_json_str(stdout, m->name);
        printf(", \"simd\": \"%s\", \"threads\": %d, \"T\": %ld, \"n\": %ld, \"prefill_ms\": %.3f, "
               "\"prefill_capture_ms\": %.3f, \"decode_tok_s\": %.2f}\n",
               attn_k->name, threads, T, n, best_pre, best_cap, n / (best_dec / 1e3));
    } else {
        printf("model            %s (%.2f M parameters)\n", m->name, m->n_params / 1e6);
        printf("simd, threads    %s, %d\n", attn_k->name, threads);
        printf("prefill          %9.2f ms  (T = %ld, %.0f tok/s)\n", best_pre, T, T / (best_pre / 1e3));
        printf("prefill+capture  %9.2f ms  (all %d x %d heads, %.1f MB of probabilities)\n", best_cap,
               c->n_layer, c->n_head, (double)c->n_layer * c->n_head * T * T * 4 / 1e6);
        printf("decode           %9.2f tok/s  (n = %ld)\n", n / (best_dec / 1e3), n);
    }
done:
    attn_session_free(s);
    free(ids);
    free(logits);
    attn_pool_free(pool);
    attn_model_free(m);
    return cli_exit(rc);
}
