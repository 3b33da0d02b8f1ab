// tests/fuzz/fuzz_gguf.c - libFuzzer harness: the GGUF reader, the model
// loader and the tokenizer loader on arbitrary bytes, then what a forward pass
// does with what loaded (a prompt, then one more token through the KV cache,
// with capture), the typed getters on every key, and the random init.
//
// Besides "no crash, no sanitizer report" it checks what the output promises:
// attention rows are probabilities with exact zeros above the diagonal, and a
// position fed through the KV cache gives the same bits as in a full forward.
// Built by `make fuzz`; tests/unit/test_fuzz_replay.c includes this file to replay
// the corpus and tests/fuzz/regressions/gguf/ without libFuzzer.
#include "attn.h"
#include "simd/kernels.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_GGUF_ENTRY
#define FUZZ_GGUF_ENTRY LLVMFuzzerTestOneInput
#endif

// Largest array the getters are exercised on (the loader itself sees all).
#define FG_MAX_ARR 4096

static void fg_assert(int ok) {
    if (!ok) __builtin_trap();
}

// What a forward hands to the capture: the model, and the attention rows of
// position `last` of every layer and head, rows (L, H, last + 1).
typedef struct {
    const attn_model *m;
    int last;
    float *rows;
} fg_ctx;

// Same bits, or both NaN (a NaN's payload may differ between code paths).
static int fg_same(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(a + i, b + i, sizeof *a) && !(isnan(a[i]) && isnan(b[i]))) return 0;
    return 1;
}

static void fg_on_attn(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p) {
    const fg_ctx *f = ctx;
    fg_assert(nk == q0 + nq && layer >= 0 && layer < f->m->cfg.n_layer && head >= 0 && head < f->m->cfg.n_head);
    for (int i = 0; i < nq; i++)
        for (int j = 0; j < nk; j++) {
            float v = p[(size_t)i * nk + j];
            if (j > q0 + i) fg_assert(v == 0);
            else fg_assert(isnan(v) || (v >= 0 && v <= 1));
        }
    if (q0 + nq - 1 == f->last)
        memcpy(f->rows + ((size_t)layer * f->m->cfg.n_head + head) * nk, p + (size_t)(nq - 1) * nk, (size_t)nk * 4);
}

static void fg_on_resid(void *ctx, int layer, int q0, int nq, const float *x) {
    const attn_model *m = ((const fg_ctx *)ctx)->m;
    float s = 0;
    fg_assert(layer >= -1 && layer < m->cfg.n_layer && q0 >= 0 && nq > 0);
    for (size_t i = 0; i < (size_t)nq * m->cfg.n_embd; i++) s += x[i]; // every value readable
    fg_assert(s == s || s != s);
}

// Every key through the typed getters and, for arrays, the element readers.
static void fg_getters(const attn_gguf_file *f) {
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const attn_gguf_kv *kv = &f->kv[i];
        char key[256];
        if (kv->key.len >= sizeof key || memchr(kv->key.s, 0, kv->key.len)) continue;
        memcpy(key, kv->key.s, kv->key.len);
        key[kv->key.len] = 0;
        int64_t iv;
        float fv;
        int bv;
        attn_gguf_str sv;
        attn_gguf_get_i64(f, key, &iv);
        attn_gguf_get_f32(f, key, &fv);
        attn_gguf_get_bool(f, key, &bv);
        if (attn_gguf_get_str(f, key, &sv) == 0) fg_assert(sv.s + sv.len <= (const char *)f->base + f->size);
        if (kv->type != GGUF_ARRAY || kv->n > FG_MAX_ARR) continue;
        size_t n = kv->n ? kv->n : 1;
        attn_gguf_str *strs = malloc(n * sizeof *strs);
        float *fs = malloc(n * sizeof *fs);
        int32_t *is = malloc(n * sizeof *is);
        if (strs && attn_gguf_arr_strs(kv, strs) == 0)
            for (uint64_t k = 0; k < kv->n; k++)
                fg_assert(strs[k].s >= (const char *)f->base && strs[k].s + strs[k].len <= (const char *)f->base + f->size);
        if (fs) attn_gguf_arr_f32(kv, fs);
        if (is) attn_gguf_arr_i32(kv, is);
        free(strs), free(fs), free(is);
    }
}

static void fg_tokenizer(const attn_model *m, const uint8_t *data, size_t size) {
    const attn_tokenizer *t = m->tok;
    int V = m->cfg.n_vocab;
    fg_assert(attn_tokenizer_bos(t) < V && attn_tokenizer_eos(t) < V);
    static const char text[] = "Hello world, the 日本 é\n\t  <s></s><|endoftext|>";
    for (int pass = 0; pass < 2; pass++) {
        const char *s = pass ? (const char *)data + (size > 48 ? size - 48 : 0) : text;
        size_t len = pass ? (size > 48 ? 48 : size) : sizeof text - 1;
        int32_t *ids = NULL;
        int n = 0;
        if (attn_tokenize(t, s, len, pass, &ids, &n) == 0) {
            for (int i = 0; i < n; i++) fg_assert(ids[i] >= 0 && ids[i] < V);
            char **labels;
            if (n && attn_token_labels(t, ids, n, &labels) == 0) attn_labels_free(labels, n);
            char *back;
            size_t blen;
            if (attn_detokenize(t, ids, n, &back, &blen) == 0) free(back);
        }
        free(ids);
    }
    int32_t all[4] = { 0, V - 1, V / 2, 1 % V };
    for (int i = 0; i < 4; i++) (void)attn_token_piece(t, all[i]);
    char **labels;
    if (attn_token_labels(t, all, 4, &labels) == 0) attn_labels_free(labels, 4);
}

// T = 3 positions at once, again as 2 + 1 through the KV cache, and again at
// once on 3 threads: the last position's logits and attention rows must be
// the same bits (the kernels compute every element by the same operations
// whatever the number of rows and however the work is split, simd/kernels.h).
static void fg_forward(const attn_model *m) {
    static attn_pool *pool;
    if (!pool && attn_pool_new(&pool, 3)) return;
    const attn_config *c = &m->cfg;
    int V = c->n_vocab, T = c->n_ctx < 3 ? c->n_ctx : 3;
    int32_t ids[3] = { V - 1, 0, V / 2 };
    size_t nr = (size_t)c->n_layer * c->n_head * T;
    float *logits = malloc((size_t)T * V * sizeof(float)), *last = malloc((size_t)V * sizeof(float));
    float *rows_a = calloc(nr, sizeof(float)), *rows_b = calloc(nr, sizeof(float));
    attn_session *a = NULL, *b = NULL;
    if (!logits || !last || !rows_a || !rows_b || attn_session_new(&a, m, T, NULL) || attn_session_new(&b, m, T, pool))
        goto done;
    fg_ctx ca = { m, T - 1, rows_a }, cb = { m, T - 1, rows_b };
    attn_capture cap_a = { .on_attn = fg_on_attn, .on_resid = fg_on_resid, .ctx = &ca };
    attn_capture cap_b = { .on_attn = fg_on_attn, .on_resid = fg_on_resid, .ctx = &cb };
    int ok_a = attn_session_feed(a, ids, T, logits, 0, &cap_a) == 0;
    int ok_b = (T == 1 || attn_session_feed(b, ids, T - 1, NULL, 0, &cap_b) == 0) &&
               attn_session_feed(b, ids + T - 1, 1, last, 1, &cap_b) == 0;
    fg_assert(ok_a == ok_b);
    if (ok_a) {
        fg_assert(attn_session_pos(a) == T && attn_session_pos(b) == T);
        fg_assert(fg_same(logits + (size_t)(T - 1) * V, last, (size_t)V));
        // a non-finite logit was seen by the detector (attn_nonfinite, issue 13)
        for (size_t i = 0; i < (size_t)T * V; i++)
            if (!isfinite(logits[i])) fg_assert(attn_nonfinite() != NULL);
        fg_assert(fg_same(rows_a, rows_b, nr));
        // all at once on the pool (b has the pool: the steps above ran on it too)
        attn_session_reset(b);
        memset(rows_b, 0, nr * sizeof(float));
        fg_assert(attn_session_feed(b, ids, T, last, 1, &cap_b) == 0);
        fg_assert(fg_same(logits + (size_t)(T - 1) * V, last, (size_t)V) && fg_same(rows_a, rows_b, nr));
        float *x = calloc((size_t)c->n_embd, sizeof *x);
        if (x) attn_unembed(a, x, last);
        free(x);
    }
    // one id past the vocabulary is refused, never read
    attn_session_reset(a);
    int32_t bad = V;
    fg_assert(attn_session_feed(a, &bad, 1, NULL, 0, NULL) == ATTN_EINPUT);
done:
    attn_session_free(a);
    attn_session_free(b);
    free(logits), free(last), free(rows_a), free(rows_b);
}

int FUZZ_GGUF_ENTRY(const uint8_t *data, size_t size) {
    attn_gguf_file f;
    if (attn_gguf_open_mem(&f, data, size, "fuzz") == 0) {
        fg_getters(&f);
        attn_gguf_close(&f);
    }
    attn_model *m;
    if (attn_model_load_mem(&m, data, size, "fuzz") != 0) return 0;
    fg_assert(m->cfg.n_vocab > 0 && m->cfg.n_ctx > 0 && m->cfg.n_head % m->cfg.n_head_kv == 0);
    // float hyper-parameters that load are finite and positive (issue 13)
    fg_assert(isfinite(m->cfg.norm_eps) && m->cfg.norm_eps > 0 && isfinite(m->cfg.rope_theta) && m->cfg.rope_theta > 0);
    // the SIMD path is picked by the last byte (after the load, which picks
    // the best one), so every path sees every shape
    const attn_kernels **paths = attn_kernels_available();
    int n_paths = 0;
    while (paths[n_paths]) n_paths++;
    attn_kernels_select(paths[data[size - 1] % n_paths]->name);
    fg_tokenizer(m, data, size);
    fg_forward(m);
    attn_model *r;
    if (attn_model_random(&r, m, 1, NULL) == 0) {
        fg_forward(r);
        attn_model_free(r);
    }
    attn_model_free(m);
    return 0;
}
