// tests/unit/test_forward.c - properties of the forward pass that need no outside
// reference: bit-identical results for 1, 2, 3 threads; KV-cache steps equal
// the rows of a full forward; every SIMD path within 1e-5 of scalar; two
// models in one process independent; a random init attends nearly uniformly.
// (Numerical parity with nanoGPT / llama2.c is tests/parity/t_parity.py.)
#include "attn.h"
#include "simd/kernels.h"
#include "check.h"
#include "paths.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---- a tiny GGUF writer (GGUF v3 spec) for in-memory test models
typedef struct { uint8_t *b; size_t n, cap; } buf;
static void put(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2; b->b = realloc(b->b, b->cap); }
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void kv_u32(buf *b, const char *k, uint32_t v) { put_str(b, k); put_u32(b, GGUF_U32); put_u32(b, v); }
static void kv_str(buf *b, const char *k, const char *v) { put_str(b, k); put_u32(b, GGUF_STRING); put_str(b, v); }

typedef struct { char name[64]; int rows, cols; } tdesc;

static uint64_t lcg = 12345;
static float frand(void) { // uniform in [-1, 1)
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((lcg >> 40) / (double)(1 << 24)) * 2 - 1;
}

// A model: arch "gpt2" (fused qkv, biases, learned positions) or "llama" (GQA 4/2);
// head 0: no output.weight, 1: output.weight a copy of token_embd, 2: its own.
static buf make_model_head(int llama, int head) {
    int D = 64, H = 4, KV = llama ? 2 : 4, F = 256, V = 70, CTX = 40, L = 2, hd = D / H;
    tdesc t[64];
    int nt = 0;
#define ADD(nm, r, c) do { snprintf(t[nt].name, 64, "%s", nm); t[nt].rows = r; t[nt].cols = c; nt++; } while (0)
    char nm[64];
    ADD("token_embd.weight", V, D);
    ADD("output_norm.weight", 0, D);
    if (!llama) { ADD("position_embd.weight", CTX, D); ADD("output_norm.bias", 0, D); }
    for (int l = 0; l < L; l++) {
#define LADD(s, r, c) do { snprintf(nm, 64, "blk.%d." s, l); ADD(nm, r, c); } while (0)
        LADD("attn_norm.weight", 0, D);
        LADD("ffn_norm.weight", 0, D);
        LADD("attn_output.weight", D, D);
        LADD("ffn_up.weight", F, D);
        LADD("ffn_down.weight", D, F);
        if (llama) {
            LADD("attn_q.weight", D, D); LADD("attn_k.weight", KV * hd, D); LADD("attn_v.weight", KV * hd, D);
            LADD("ffn_gate.weight", F, D);
        } else {
            LADD("attn_qkv.weight", 3 * D, D); LADD("attn_qkv.bias", 0, 3 * D);
            LADD("attn_norm.bias", 0, D); LADD("ffn_up.bias", 0, F);
        }
    }
    if (head) ADD("output.weight", V, D); // last: the tensors before it get the same values
    buf b = { 0 };
    const char *a = llama ? "llama" : "gpt2";
    char k[96];
    put(&b, "GGUF", 4); put_u32(&b, 3); put_u64(&b, nt); put_u64(&b, 7);
    kv_str(&b, "general.architecture", a);
#define KV(s, v) (snprintf(k, sizeof k, "%s." s, a), kv_u32(&b, k, v))
    KV("block_count", L); KV("embedding_length", D); KV("attention.head_count", H);
    KV("attention.head_count_kv", KV); KV("feed_forward_length", F); KV("context_length", CTX);
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        put_str(&b, t[i].name);
        put_u32(&b, t[i].rows ? 2 : 1);
        put_u64(&b, t[i].cols);
        if (t[i].rows) put_u64(&b, t[i].rows);
        put_u32(&b, ATTN_F32);
        put_u64(&b, off);
        off += ((uint64_t)(t[i].rows ? t[i].rows : 1) * t[i].cols * 4 + 31) / 32 * 32;
    }
    while (b.n % 32) put(&b, "", 1);
    size_t data0 = b.n; // token_embd, the first tensor, is at offset 0
    for (int i = 0; i < nt; i++) {
        size_t n = (size_t)(t[i].rows ? t[i].rows : 1) * t[i].cols;
        if (head == 1 && !strcmp(t[i].name, "output.weight")) {
            float *e = malloc(n * 4);
            memcpy(e, b.b + data0, n * 4);
            put(&b, e, n * 4);
            free(e);
            continue;
        }
        int is_norm = strstr(t[i].name, "norm.weight") != NULL;
        // weights large enough that attention is far from uniform
        float scale = strstr(t[i].name, "attn_q") || strstr(t[i].name, "attn_k") ? 0.5f : 0.25f;
        for (size_t j = 0; j < n; j++) {
            float v = is_norm ? 1 + 0.1f * frand() : scale * frand();
            put(&b, &v, 4);
        }
        while (b.n % 32) put(&b, "", 1);
    }
    return b;
}

static buf make_model(int llama) { return make_model_head(llama, 0); }

typedef struct { float *attn; int H, T; } cap_ctx;
static void on_attn(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p) {
    cap_ctx *c = ctx;
    for (int i = 0; i < nq; i++)
        memcpy(c->attn + (((size_t)layer * c->H + head) * c->T + q0 + i) * c->T, p + (size_t)i * nk, (size_t)nk * 4);
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}
static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

// 32 positions: large enough that matmuls and attention go to the thread pool
static const int32_t IDS[] = { 1, 5, 9, 2, 60, 33, 5, 9, 2, 60, 7, 0, 69, 12, 5, 9,
                               3, 4, 5, 6, 7, 8, 9, 10, 60, 33, 5, 9, 2, 61, 62, 63 };
#define T 32

static void full(const attn_model *m, int threads, float *logits, float *attn) {
    attn_pool *p;
    attn_pool_new(&p, threads);
    size_t na = (size_t)m->cfg.n_layer * m->cfg.n_head * T * T;
    memset(attn, 0, na * 4);
    int rc = attn_forward(m, p, IDS, T, logits, attn);
    if (rc) printf("FAIL forward: %s\n", attn_errmsg());
    attn_pool_free(p);
}

// One test model and its full-forward results (a1, l1) on IDS; a2, l2 scratch.
typedef struct {
    const attn_model *m;
    const char *an;    // "llama" or "gpt2"
    int L, H, V;
    size_t na, nl;     // L*H*T*T attention values, T*V logits
    float *a1, *l1, *a2, *l2;
} fwd;

// Rows sum to 1, zero above the diagonal, not uniform.
static void test_rows(const fwd *f) {
    char name[128];
    const float *a1 = f->a1;
    double sum_err = 0, above = 0, max_p = 0;
    for (size_t r = 0; r < (size_t)f->L * f->H * T; r++) {
        int i = r % T;
        double s = 0;
        for (int j = 0; j < T; j++) {
            s += a1[r * T + j];
            if (j > i) above = fmax(above, fabs(a1[r * T + j]));
            else if (i > 2) max_p = fmax(max_p, a1[r * T + j]);
        }
        sum_err = fmax(sum_err, fabs(s - 1));
    }
    snprintf(name, sizeof name, "forward %s rows sum to 1, zero above diagonal", f->an);
    check(sum_err < 1e-5 && above == 0, name, "sum err %g, above-diagonal %g", sum_err, above);
    snprintf(name, sizeof name, "forward %s test model is not uniform", f->an);
    check(max_p > 0.5, name, "largest attention %g", max_p);
}

// Threads: bit-identical.
static void test_threads(const fwd *f) {
    char name[128];
    for (int th = 2; th <= 3; th++) {
        full(f->m, th, f->l2, f->a2);
        snprintf(name, sizeof name, "forward %s %d threads bit-identical to 1", f->an, th);
        check(!memcmp(f->a1, f->a2, f->na * 4) && !memcmp(f->l1, f->l2, f->nl * 4), name,
              "attn diff %g, logits diff %g", max_abs_diff(f->a1, f->a2, f->na), max_abs_diff(f->l1, f->l2, f->nl));
    }
}

// KV cache: prefix of 5, then one token at a time; no position past the size.
static void test_kv_cache(const fwd *f) {
    char name[128];
    attn_session *s;
    attn_pool *pool;
    attn_pool_new(&pool, 2);
    attn_session_new(&s, f->m, T, pool);
    memset(f->a2, 0, f->na * 4);
    cap_ctx cc = { f->a2, f->H, T };
    attn_capture cap = { .on_attn = on_attn, .ctx = &cc };
    attn_session_feed(s, IDS, 5, f->l2, 0, &cap);
    for (int i = 5; i < T; i++) attn_session_feed(s, IDS + i, 1, f->l2 + (size_t)i * f->V, 0, &cap);
    snprintf(name, sizeof name, "forward %s KV-cache steps equal full-forward rows", f->an);
    double da = max_abs_diff(f->a1, f->a2, f->na), dl = max_abs_diff(f->l1, f->l2, f->nl) / max_abs(f->l1, f->nl);
    check(da <= 1e-6 && dl <= 1e-6, name, "attn diff %g, logits rel diff %g", da, dl);
    printf("   %s: KV-cache rows vs full forward: max attn diff %g, logits rel diff %g (%s)\n", f->an, da, dl,
           da == 0 && dl == 0 ? "bit-identical" : "not bit-identical");
    snprintf(name, sizeof name, "forward %s session refuses positions past its size", f->an);
    int rc = attn_session_feed(s, IDS, 1, NULL, 0, NULL);
    check(rc == ATTN_EINPUT, name, "rc %d", rc);
    attn_session_free(s);
    attn_pool_free(pool);
}

// Every SIMD path within 1e-5 of scalar.
static void test_simd_paths(const fwd *f) {
    char name[128];
    attn_kernels_select("scalar");
    float *a_ref = malloc(f->na * 4), *l_ref = malloc(f->nl * 4);
    full(f->m, 1, l_ref, a_ref);
    for (const attn_kernels **k = attn_kernels_available(); *k; k++) {
        attn_kernels_select((*k)->name);
        full(f->m, 2, f->l2, f->a2);
        double ea = max_abs_diff(a_ref, f->a2, f->na), el = max_abs_diff(l_ref, f->l2, f->nl) / max_abs(l_ref, f->nl);
        snprintf(name, sizeof name, "forward %s %s within 1e-5 of scalar", f->an, (*k)->name);
        check(ea <= 1e-5 && el <= 1e-5, name, "attn %g, logits rel %g", ea, el);
    }
    snprintf(name, sizeof name, "forward %s within 1e-5 of scalar on", f->an);
    skip_absent_paths(name);
    attn_kernels_init();
    free(a_ref); free(l_ref);
}

// A random init of the same architecture attends nearly uniformly.
static void test_random_init(const fwd *f) {
    char name[128];
    attn_model *r;
    if (attn_model_random(&r, f->m, 7, NULL) == 0) {
        full(r, 1, f->l2, f->a2);
        double dev = 0;
        for (size_t row = 0; row < (size_t)f->L * f->H * T; row++) {
            int i = row % T;
            for (int j = 0; j <= i; j++) dev = fmax(dev, fabs(f->a2[row * T + j] - 1.0 / (i + 1)));
        }
        snprintf(name, sizeof name, "forward %s random init near uniform", f->an);
        check(dev < 0.05, name, "max deviation from uniform %g", dev);
        // layers made when used, in one shared layer's memory (budget 0) or
        // one kept (a layer's bytes): the same bits, forward after forward
        size_t per = 0;
        for (int i = 0; i < attn_n_layer_tensors; i++) {
            const attn_tensor *t = (const attn_tensor *)((const char *)&r->layers[0] + attn_layer_tensors[i].off);
            if (t->data && t->rows > 1) per += ((size_t)t->rows * t->cols * 4 + 63) / 64 * 64;
        }
        size_t budgets[2] = { 0, per };
        float *l3 = malloc(f->nl * 4), *a3 = malloc(f->na * 4);
        for (int b = 0; b < 2; b++) {
            attn_model *z;
            int same = 0;
            if (attn_model_random_budget(&z, f->m, 7, NULL, budgets[b]) == 0) {
                same = 1;
                for (int rep = 0; rep < 3; rep++) { // (made in the slot, then kept or made again)
                    full(z, 1 + rep % 2, l3, a3);
                    same &= !memcmp(l3, f->l2, f->nl * 4) && !memcmp(a3, f->a2, f->na * 4);
                }
                attn_model_free(z);
            }
            snprintf(name, sizeof name, "forward %s random init made per layer (%s): same bits", f->an,
                     b ? "one layer kept" : "none kept");
            check(same, name, "%s", same ? "" : "logits or attention differ");
        }
        free(l3), free(a3);
        // the head's rows (tied: the token embedding's) are numbers v D .. of
        // the stream, made when read; the stream starts with them
        int D = r->cfg.n_embd, ok = !r->tok_embd.data && !r->output.data && attn_model_tied_head(r);
        float *row = malloc((size_t)D * 4), *want = malloc((size_t)D * 4);
        for (int v = 0; v < f->V && ok; v += 13) {
            attn_model_out_row(r, v, row);
            attn_kernels_scalar.normals(7, (uint64_t)v * D, (size_t)D, 0.02, want);
            ok = !memcmp(row, want, (size_t)D * 4);
        }
        snprintf(name, sizeof name, "forward %s random init: head rows from the stream, not held", f->an);
        check(ok, name, "a row differs, or the embedding is held");
        free(row), free(want);
        attn_model_free(r);
    } else check(0, "forward random init", "%s", attn_errmsg());
}

static void test_model(int llama) {
    char name[128];
    buf b = make_model(llama);
    attn_model *m;
    if (attn_model_load_mem(&m, b.b, b.n, "test")) {
        check(0, "forward load", "%s", attn_errmsg());
        return;
    }
    fwd f = {.m = m, .an = llama ? "llama" : "gpt2", .L = m->cfg.n_layer, .H = m->cfg.n_head, .V = m->cfg.n_vocab};
    f.na = (size_t)f.L * f.H * T * T, f.nl = (size_t)T * f.V;
    f.a1 = malloc(f.na * 4), f.a2 = malloc(f.na * 4), f.l1 = malloc(f.nl * 4), f.l2 = malloc(f.nl * 4);
    full(m, 1, f.l1, f.a1);
    test_rows(&f);
    test_threads(&f);
    test_kv_cache(&f);
    test_simd_paths(&f);
    test_random_init(&f);

    // ids out of range are refused
    int32_t bad = f.V;
    snprintf(name, sizeof name, "forward %s id out of range refused", f.an);
    int rc = attn_forward(m, NULL, &bad, 1, NULL, NULL);
    check(rc == ATTN_EINPUT, name, "rc %d", rc);

    free(f.a1); free(f.a2); free(f.l1); free(f.l2);
    attn_model_free(m);
    free(b.b);
}

// ---- interventions (attn_edits, attn_session_refeed): doing nothing, and
// patching a run's own values into it, leave every logit bit-identical, on
// every SIMD path and thread count.
typedef struct { int nt, nd, nqd; float *resid, *z; } rec_ctx;
static void rec_act(void *ctx, int kind, int layer, int q0, int nq, float *x) {
    rec_ctx *r = ctx;
    if (kind == ATTN_ACT_RESID_PRE) memcpy(r->resid + ((size_t)layer * r->nt + q0) * r->nd, x, (size_t)nq * r->nd * 4);
    if (kind == ATTN_ACT_Z) memcpy(r->z + ((size_t)layer * r->nt + q0) * r->nqd, x, (size_t)nq * r->nqd * 4);
}

static int causal_identity(const attn_model *m, int threads, char *why, size_t n_why) {
    const attn_config *c = &m->cfg;
    int L = c->n_layer, D = c->n_embd, H = c->n_head, hd = c->head_dim, qd = H * hd, V = c->n_vocab;
    size_t nl = (size_t)T * V;
    float *l0 = malloc(nl * 4), *l1 = malloc(nl * 4);
    rec_ctx r = { T, D, qd, malloc((size_t)L * T * D * 4), malloc((size_t)L * T * qd * 4) };
    attn_edit *e = malloc((size_t)(H + 1) * sizeof *e);
    attn_pool *pool;
    attn_session *s;
    attn_pool_new(&pool, threads);
    attn_session_new(&s, m, T, pool);
    attn_session_feed(s, IDS, T, l0, 0, NULL);
    attn_session_reset(s);
    attn_edits ed;
    attn_edits_init(&ed, m, e, 0);
    attn_capture none = { .on_act = attn_edits_on_act, .ctx = &ed }, rec = { .on_act = rec_act, .ctx = &r };
    int bad = 0;
    attn_session_feed(s, IDS, T, l1, 0, &none);
    if (memcmp(l0, l1, nl * 4)) bad = snprintf(why, n_why, "an empty edit list changed the logits");
    attn_session_reset(s);
    attn_session_feed(s, IDS, T, l1, 0, &rec);
    if (!bad && memcmp(l0, l1, nl * 4)) bad = snprintf(why, n_why, "recording changed the logits");
    for (int l = 0; !bad && l < L; l++) { // every head's z and the residual from the run itself
        for (int h = 0; h < H; h++)
            e[h] = (attn_edit){ ATTN_ACT_Z, l, -1, h * hd, hd, r.z + (size_t)l * T * qd + h * hd, (size_t)qd };
        e[H] = (attn_edit){ ATTN_ACT_RESID_PRE, l, -1, 0, D, r.resid + (size_t)l * T * D, (size_t)D };
        attn_edits_init(&ed, m, e, H + 1);
        int rc = attn_session_refeed(s, l, r.resid + (size_t)l * T * D, T, l1, 0, &none);
        if (rc || memcmp(l0, l1, nl * 4)) bad = snprintf(why, n_why, "refeed from layer %d with its own values: rc %d, logits differ", l, rc);
    }
    attn_session_free(s);
    attn_pool_free(pool);
    free(l0); free(l1); free(r.resid); free(r.z); free(e);
    return !bad;
}

// attn_session_run_from: runs of different edits in one pass give, run by
// run, the bits of attn_session_refeed of each alone (all logits, and the
// last position's) and the same callbacks (a hash of every on_attn, on_qk
// and on_resid call's arguments and floats), with 3 runs of T rows (past
// the GEMV's rows of A).
#define RUNS 3
typedef struct { attn_edits ed; uint64_t h; } run_ctx;
static void run_hash(run_ctx *r, const void *p, size_t n) { // FNV-1a
    for (size_t i = 0; i < n; i++) r->h = (r->h ^ ((const uint8_t *)p)[i]) * 0x100000001b3ull;
}
static void run_act(void *ctx, int kind, int layer, int q0, int nq, float *x) {
    attn_edits_on_act(&((run_ctx *)ctx)->ed, kind, layer, q0, nq, x);
}
static void run_attn(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p) {
    int a[5] = { layer, head, q0, nq, nk };
    run_hash(ctx, a, sizeof a);
    run_hash(ctx, p, (size_t)nq * nk * 4);
}
static void run_resid(void *ctx, int layer, int q0, int nq, const float *x) {
    int a[3] = { layer, q0, nq };
    run_hash(ctx, a, sizeof a);
    run_hash(ctx, x, (size_t)nq * 4); // (the first floats of the rows)
}
static void run_qk(void *ctx, int layer, int q0, int nq, int nk, const float *q, int qs, const float *k, int ks) {
    int a[6] = { layer, q0, nq, nk, qs, ks };
    run_hash(ctx, a, sizeof a);
    for (int i = 0; i < nq; i++) run_hash(ctx, q + (size_t)i * qs, (size_t)qs * 4);
    for (int j = 0; j < nk; j++) run_hash(ctx, k + (size_t)j * ks, (size_t)ks * 4);
}
static int runs_identity(const attn_model *m, int threads, char *why, size_t n_why) {
    const attn_config *c = &m->cfg;
    int L = c->n_layer, D = c->n_embd, H = c->n_head, hd = c->head_dim, qd = H * hd, V = c->n_vocab;
    size_t nl = (size_t)T * V;
    float *one = malloc(nl * 4), *all = malloc(RUNS * nl * 4), *x = malloc((size_t)RUNS * T * D * 4);
    rec_ctx r = { T, D, qd, malloc((size_t)L * T * D * 4), malloc((size_t)L * T * qd * 4) };
    attn_pool *pool;
    attn_session *s, *sr;
    attn_pool_new(&pool, threads);
    attn_session_new(&s, m, T, pool);
    attn_session_new_runs(&sr, m, T, RUNS, pool);
    attn_capture rec = { .on_act = rec_act, .ctx = &r }, caps[RUNS];
    attn_session_feed(s, IDS, T, one, 0, &rec);
    attn_edit e[RUNS];
    run_ctx rc_[RUNS];
    int bad = 0;
    for (int l = 0; !bad && l < L; l++) {
        for (int b = 0; b < RUNS; b++) { // run b: head b of layer l zeroed (run 0: at position 5 only)
            e[b] = (attn_edit){ ATTN_ACT_Z, l, b ? -1 : 5, (b % H) * hd, hd, NULL, 0 };
            attn_edits_init(&rc_[b].ed, m, &e[b], 1);
            caps[b] = (attn_capture){ .on_act = run_act, .on_attn = run_attn, .on_resid = run_resid, .on_qk = run_qk,
                                      .ctx = &rc_[b] };
            memcpy(x + (size_t)b * T * D, r.resid + (size_t)l * T * D, (size_t)T * D * 4);
        }
        for (int last = 0; !bad && last < 2; last++) {
            for (int b = 0; b < RUNS; b++) rc_[b].h = 0;
            int rc = attn_session_run_from(sr, l, x, T, RUNS, all, last, caps);
            for (int b = 0; !bad && b < RUNS; b++) {
                uint64_t h = rc_[b].h;
                rc_[b].h = 0;
                rc |= attn_session_refeed(s, l, r.resid + (size_t)l * T * D, T, one, last, &caps[b]);
                size_t n = last ? (size_t)V : nl;
                if (rc || memcmp(one, all + b * n, n * 4) || h != rc_[b].h)
                    bad = snprintf(why, n_why, "layer %d, run %d%s: rc %d, %s differ", l, b, last ? " (last only)" : "",
                                   rc, h != rc_[b].h ? "callbacks" : "logits");
            }
        }
    }
    attn_session_free(s);
    attn_session_free(sr);
    attn_pool_free(pool);
    free(one); free(all); free(x); free(r.resid); free(r.z);
    return !bad;
}

static void test_causal(int llama) {
    buf b = make_model(llama);
    attn_model *m;
    if (attn_model_load_mem(&m, b.b, b.n, "test")) { check(0, "causal load", "%s", attn_errmsg()); return; }
    for (const attn_kernels **k = attn_kernels_available(); *k; k++) {
        attn_kernels_select((*k)->name);
        for (int th = 1; th <= 3; th += 2) {
            char name[160], why[200] = "";
            snprintf(name, sizeof name, "causal %s %s %d threads: no edit / own values bit-identical",
                     llama ? "llama" : "gpt2", (*k)->name, th);
            check(causal_identity(m, th, why, sizeof why), name, "%s", why);
            snprintf(name, sizeof name, "causal %s %s %d threads: %d runs in one pass bit-identical to each alone",
                     llama ? "llama" : "gpt2", (*k)->name, th, RUNS);
            check(runs_identity(m, th, why, sizeof why), name, "%s", why);
        }
    }
    skip_absent_paths(llama ? "causal llama bit-identical on" : "causal gpt2 bit-identical on");
    attn_kernels_init();
    attn_model_free(m);
    free(b.b);
}

// Two models in one process: loading and freeing one leaves the other intact.
static void test_two_models(void) {
    buf b1 = make_model(0), b2 = make_model(1);
    attn_model *m1, *m2;
    float *l1 = malloc((size_t)T * 70 * 4), *l1b = malloc((size_t)T * 70 * 4);
    attn_model_load_mem(&m1, b1.b, b1.n, "one");
    attn_forward(m1, NULL, IDS, T, l1, NULL);
    attn_model_load_mem(&m2, b2.b, b2.n, "two");
    attn_forward(m2, NULL, IDS, T, l1b, NULL);
    attn_model_free(m2);
    attn_forward(m1, NULL, IDS, T, l1b, NULL);
    check(!memcmp(l1, l1b, (size_t)T * 70 * 4), "two models in one process are independent", "logits changed");
    attn_model_free(m1);
    free(l1); free(l1b); free(b1.b); free(b2.b);
}

// The architecture table: every row found by its llama.cpp name, its tensor
// sets disjoint and inside attn_layer_tensors, and a row per attn_arch.
static void test_arch_table(void) {
    int ok = 1;
    uint32_t all = attn_n_layer_tensors >= 32 ? ~0u : (1u << attn_n_layer_tensors) - 1;
    for (int a = 0; a < ATTN_ARCH_N; a++) {
        const attn_arch_info *r = attn_arch_get((attn_arch)a);
        if (!r || r->id != (attn_arch)a || attn_arch_find(r->gguf, strlen(r->gguf)) != r || (r->req & r->opt) ||
            ((r->req | r->opt) & ~all) || !(r->req >> 12 & 1)) {
            ok = 0;
            printf("  row %d (%s) is inconsistent\n", a, r ? r->gguf : "?");
        }
    }
    check(ok && !attn_arch_find("mamba", 5) && !attn_arch_get(ATTN_ARCH_N), "architecture table consistent",
          "see above");
}

// A tied head written again as output.weight (llama.cpp's converter and ours
// do) is found tied, and a forward gives the logits of the same model without
// that tensor bit for bit; a head of its own is not tied. A random init of the
// copy model ties its head too (same logits as the random init of the other).
static void test_tied_head(void) {
    attn_model *m[3] = { 0 };
    buf b[3];
    float *l[3], *r[2];
    int tied[3];
    attn_pool *p;
    attn_pool_new(&p, 2);
    for (int h = 0; h < 3; h++) {
        lcg = 12345;
        b[h] = make_model_head(0, h);
        l[h] = calloc((size_t)T * 70, 4);
        attn_model_load_mem(&m[h], b[h].b, b[h].n, "tied");
        tied[h] = m[h] ? attn_model_tied_head(m[h]) : -1;
        if (m[h]) attn_forward(m[h], p, IDS, T, l[h], NULL);
    }
    check(tied[0] == 1 && tied[1] == 1 && tied[2] == 0, "tied head: none or a copy tied, its own not",
          "tied %d %d %d", tied[0], tied[1], tied[2]);
    size_t nl = (size_t)T * 70 * 4;
    check(!memcmp(l[0], l[1], nl) && memcmp(l[0], l[2], nl), "tied head: a copied head gives the same logits bits",
          "copy %s, own head %s", memcmp(l[0], l[1], nl) ? "differs" : "same", memcmp(l[0], l[2], nl) ? "differs" : "same");
    for (int h = 0; h < 2; h++) {
        attn_model *rm = NULL;
        r[h] = calloc((size_t)T * 70, 4);
        if (m[h] && !attn_model_random(&rm, m[h], 7, NULL)) attn_forward(rm, p, IDS, T, r[h], NULL);
        attn_model_free(rm);
    }
    check(!memcmp(r[0], r[1], nl), "tied head: random init of a copied head is tied", "logits differ");
    for (int h = 0; h < 3; h++) attn_model_free(m[h]), free(b[h].b), free(l[h]);
    free(r[0]), free(r[1]);
    attn_pool_free(p);
}

int main(void) {
    if (attn_kernels_init()) { printf("FAIL kernels: %s\n", attn_errmsg()); return 1; }
    test_arch_table();
    test_model(0);
    test_model(1);
    test_two_models();
    test_causal(0);
    test_causal(1);
    test_tied_head();
    CHECK_EXIT();
}
