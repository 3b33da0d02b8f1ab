// attn_model.c - sections "model" and "forward" of attn (see attn.c for the
// table of contents).
//
// model:   the configuration switches derived from GGUF keys, tensor views
//          into the mapped file (nothing copied but F16/BF16 vectors, which
//          are converted to F32), random init of the same architecture.
// forward: a session holds the KV cache and scratch sized by the positions
//          actually fed; attn_session_feed runs n new positions through every
//          layer, hands attention rows and residual rows to the capture
//          callbacks, and writes logits.
#include "attn.h"
#include "simd/kernels.h"
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// ---------------------------------------------------------------- owned memory

// Blocks the model owns (converted vectors, random weights), freed together.
// Blocks of 2 MB or more are session-style mappings (attn_big_alloc): a
// random model's gigabytes are then faulted in 2 MB at a time, not 4 KB
// (TinyLlama's random init: 13.9 s of system time in 4 KB pages).
typedef struct owned_block { struct owned_block *next; size_t bytes; } owned_block; // bytes: mapped, 0: malloc'ed

static void *own(attn_model *m, size_t n) {
    size_t bytes = sizeof(owned_block) + n + 64;
    int big = bytes >= ((size_t)2 << 20);
    owned_block *b = big ? attn_big_alloc(bytes) : malloc(bytes);
    if (!b) return NULL;
    b->next = m->owned, b->bytes = big ? bytes : 0;
    m->owned = b;
    // 64-byte aligned payload inside the block
    uintptr_t p = ((uintptr_t)(b + 1) + 63) & ~(uintptr_t)63;
    return (void *)p;
}

// ---------------------------------------------------------------- config

typedef struct {
    attn_model *m;
    const attn_gguf_file *f;
    const char *arch;           // general.architecture, the prefix of its keys
    const attn_arch_info *info;
    char key[160];
} loader;

static int read_rope(loader *L);

static int key_int(loader *L, const char *suffix, int required, int dflt, int *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->arch, suffix);
    int64_t v;
    if (attn_gguf_get_i64(L->f, key, &v) != 0) {
        if (required) return attn_err(ATTN_EINPUT, "%s: missing key '%s'", L->f->path, key);
        *out = dflt;
        return 0;
    }
    if (v <= 0 || v > (1 << 24)) return attn_err(ATTN_EINPUT, "%s: key '%s' = %lld is out of range", L->f->path, key, (long long)v);
    *out = (int)v;
    return 0;
}

static float key_float(loader *L, const char *suffix, float dflt) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->arch, suffix);
    float v;
    return attn_gguf_get_f32(L->f, key, &v) == 0 ? v : dflt;
}

// A boolean key of the architecture, dflt if absent.
static int key_bool(loader *L, const char *suffix, int dflt) {
    snprintf(L->key, sizeof L->key, "%s.%s", L->arch, suffix);
    int v;
    return attn_gguf_get_bool(L->f, L->key, &v) == 0 ? v : dflt;
}

// An attn.* string switch: index of the value in names[], dflt if absent.
static int key_switch(loader *L, const char *key, const char *const *names, int n, int dflt, int *out) {
    attn_gguf_str s;
    *out = dflt;
    if (attn_gguf_get_str(L->f, key, &s) != 0) return 0;
    for (int i = 0; i < n; i++)
        if (s.len == strlen(names[i]) && !memcmp(s.s, names[i], s.len)) {
            *out = i;
            return 0;
        }
    return attn_err(ATTN_EINPUT, "%s: key '%s' has unknown value '%.*s'", L->f->path, key, (int)(s.len > 64 ? 64 : s.len), s.s);
}

// Float hyper-parameters must be finite and positive as the forward uses
// them (float32): NaN, inf, 0 and values that round to 0 or inf (an F64
// epsilon of 1e-300) are refused, whatever the file's type.
static int check_floats(loader *L) {
    const attn_config *c = &L->m->cfg;
    struct { const char *what; float v; } k[] = { { "norm epsilon", c->norm_eps }, { "rope.freq_base", c->rope_theta } };
    for (int i = 0; i < 2; i++)
        if (!(isfinite(k[i].v) && k[i].v > 0))
            return attn_err(ATTN_EINPUT, "%s: %s is %g as float32: it must be finite and positive", L->f->path,
                            k[i].what, (double)k[i].v);
    return 0;
}

static int read_arch(loader *L) {
    attn_config *c = &L->m->cfg;
    attn_gguf_str a;
    if (attn_gguf_get_str(L->f, "general.architecture", &a) != 0)
        return attn_err(ATTN_EINPUT, "%s: missing key 'general.architecture'", L->f->path);
    L->info = attn_arch_find(a.s, a.len);
    if (!L->info) {
        char known[256] = "";
        for (int i = 0; i < ATTN_ARCH_N; i++) {
            size_t n = strlen(known);
            snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "", attn_arch_get(i)->gguf);
        }
        return attn_err(ATTN_EINPUT, "%s: architecture '%.*s' is not supported (attn reads %s)", L->f->path,
                        (int)(a.len > 64 ? 64 : a.len), a.s, known);
    }
    c->arch = L->info->id;
    L->arch = L->info->gguf;
    return 0;
}

// Sizes, heads and head size (attention.key_length when it differs from n_embd / n_head).
static int read_sizes(loader *L) {
    attn_config *c = &L->m->cfg;
    if (key_int(L, "block_count", 1, 0, &c->n_layer) || key_int(L, "embedding_length", 1, 0, &c->n_embd) ||
        key_int(L, "attention.head_count", 1, 0, &c->n_head) ||
        key_int(L, "attention.head_count_kv", 0, c->n_head, &c->n_head_kv) ||
        key_int(L, "feed_forward_length", 0, 4 * c->n_embd, &c->n_ff) ||
        key_int(L, "context_length", 1, 0, &c->n_ctx) ||
        key_int(L, "attention.key_length", 0, c->n_embd / c->n_head, &c->head_dim))
        return ATTN_EINPUT;
    int vlen;
    if (key_int(L, "attention.value_length", 0, c->head_dim, &vlen)) return ATTN_EINPUT;
    if (vlen != c->head_dim)
        return attn_err(ATTN_EINPUT, "%s: key length %d and value length %d differ (attn needs one head size)",
                        L->f->path, c->head_dim, vlen);
    snprintf(L->key, sizeof L->key, "%s.attention.key_length", L->arch);
    if (c->n_head * c->head_dim != c->n_embd && !attn_gguf_find(L->f, L->key))
        return attn_err(ATTN_EINPUT, "%s: embedding length %d is not a multiple of the head count %d",
                        L->f->path, c->n_embd, c->n_head);
    if (c->n_head_kv > c->n_head || c->n_head % c->n_head_kv)
        return attn_err(ATTN_EINPUT, "%s: head count %d is not a multiple of the KV head count %d",
                        L->f->path, c->n_head, c->n_head_kv);
    return 0;
}

// The switches: the architecture's defaults, then the attn.* and llama.cpp keys.
static int read_switches(loader *L) {
    attn_config *c = &L->m->cfg;
    const attn_arch_info *a = L->info;
    static const char *norms[] = { "layernorm", "rmsnorm" };
    static const char *poss[] = { "learned", "rope_pairs", "rope_halves", "none" };
    static const char *mlps[] = { "gelu_tanh", "gelu_erf", "swiglu", "geglu", "swiglu_fused" };
    int v;
    if (key_switch(L, "attn.norm", norms, 2, a->norm, &v)) return ATTN_EINPUT;
    c->norm = (attn_norm)v;
    if (key_switch(L, "attn.positions", poss, 4, a->pos, &v)) return ATTN_EINPUT;
    c->pos = (attn_pos)v;
    if (key_switch(L, "attn.mlp", mlps, 5, a->mlp, &v)) return ATTN_EINPUT;
    c->mlp = (attn_mlp)v;
    c->parallel = a->parallel;
    if (c->parallel == ATTN_PAR_TWO && key_bool(L, "use_parallel_residual", 1) == 0) c->parallel = ATTN_PAR_NONE;
    c->norm_eps = key_float(L, c->norm == ATTN_NORM_RMS ? "attention.layer_norm_rms_epsilon" : "attention.layer_norm_epsilon", 1e-5f);
    c->embd_scale = a->embd_scale ? sqrtf((float)c->n_embd) : 1.0f;
    // read only where llama.cpp's graph has them, with its defaults when absent
    int gemma2 = c->arch == ATTN_ARCH_GEMMA2;
    c->attn_softcap = gemma2 ? key_float(L, "attn_logit_softcapping", 50.0f) : 0.0f;
    c->logit_softcap = gemma2 ? key_float(L, "final_logit_softcapping", 30.0f) : 0.0f;
    c->swa_every = a->swa_every;
    c->swa_window = gemma2 ? 4096 : 0;
    int64_t w; // 0 is allowed: Phi-4 (a phi3 file) has no window
    snprintf(L->key, sizeof L->key, "%s.attention.sliding_window", L->arch);
    if (a->swa_every && attn_gguf_get_i64(L->f, L->key, &w) == 0) {
        if (w < 0 || w > (1 << 24)) return attn_err(ATTN_EINPUT, "%s: key '%s' = %lld is out of range", L->f->path, L->key, (long long)w);
        c->swa_window = (int)w;
    }
    if (!(isfinite(c->attn_softcap) && c->attn_softcap >= 0) || !(isfinite(c->logit_softcap) && c->logit_softcap >= 0))
        return attn_err(ATTN_EINPUT, "%s: soft-caps must be finite and not negative", L->f->path);
    return read_rope(L);
}

// RoPE: base, rotated dims, linear scaling; other scalings are refused.
static int read_rope(loader *L) {
    attn_config *c = &L->m->cfg;
    c->rope_theta = key_float(L, "rope.freq_base", 10000.0f);
    int rope = c->pos == ATTN_POS_ROPE_PAIRS || c->pos == ATTN_POS_ROPE_HALVES;
    // absent and without RoPE: unused, so an odd head size is fine (no pairs
    // to rotate); a key that is present is checked either way
    if (key_int(L, "rope.dimension_count", 0, 0, &c->rope_dims)) return ATTN_EINPUT;
    int given = c->rope_dims > 0;
    if (!given) c->rope_dims = c->head_dim;
    if ((rope || given) && (c->rope_dims > c->head_dim || c->rope_dims % 2))
        return attn_err(ATTN_EINPUT, "%s: rope.dimension_count %d must be even and <= head size %d",
                        L->f->path, c->rope_dims, c->head_dim);
    attn_gguf_str t = { "linear", 6 };
    snprintf(L->key, sizeof L->key, "%s.rope.scaling.type", L->arch);
    attn_gguf_get_str(L->f, L->key, &t);
    if (!(t.len == 6 && !memcmp(t.s, "linear", 6)) && !(t.len == 4 && !memcmp(t.s, "none", 4))) {
        return attn_err(ATTN_EINPUT, "%s: rope scaling '%.*s' is not supported (attn reads none and linear)",
                        L->f->path, (int)(t.len > 64 ? 64 : t.len), t.s);
    }
    float f = key_float(L, "rope.scaling.factor", key_float(L, "rope.scale_linear", 0.0f));
    if (!(isfinite(f) && f >= 0)) return attn_err(ATTN_EINPUT, "%s: rope scaling factor must be finite and positive", L->f->path);
    c->rope_scale = f == 0 || (t.len == 4) ? 1.0f : 1.0f / f;
    if (attn_gguf_find_tensor(L->f, "rope_factors_long.weight") || attn_gguf_find_tensor(L->f, "rope_factors_short.weight"))
        return attn_err(ATTN_EINPUT, "%s: LongRoPE factors (rope_factors_long/short) are not supported", L->f->path);
    return check_floats(L);
}

static int read_config(loader *L) {
    return read_arch(L) || read_sizes(L) || read_switches(L) ? ATTN_EINPUT : 0;
}

// ---------------------------------------------------------------- tensors

// Find a tensor and check its shape: a matrix (rows, cols) or, with rows = 0,
// a vector of cols. Vectors are returned as F32 (converted if stored
// otherwise). Missing and optional: t zeroed, 0 returned.
static int get_tensor(loader *L, const char *name, int rows, int cols, int required, attn_tensor *t) {
    memset(t, 0, sizeof *t);
    const attn_gguf_tensor *g = attn_gguf_find_tensor(L->f, name);
    if (!g) return required ? attn_err(ATTN_EINPUT, "%s: missing tensor '%s'", L->f->path, name) : 0;
    int want_dims = rows ? 2 : 1;
    int ok = g->ne[0] == (uint64_t)cols && g->ne[2] == 1 && g->ne[3] == 1 &&
             (rows ? g->ne[1] == (uint64_t)rows : g->ne[1] == 1);
    if (!ok || (int)g->n_dims > want_dims)
        return attn_err(ATTN_EINPUT, "%s: tensor '%s' has shape [%llu,%llu], expected [%d,%d] from the config",
                        L->f->path, name, (unsigned long long)g->ne[0], (unsigned long long)g->ne[1], cols, rows ? rows : 1);
    t->data = g->data;
    t->type = g->type;
    t->rows = rows ? rows : 1;
    t->cols = cols;
    if (!rows && g->type != ATTN_F32) { // vectors are used as float*
        float *v = own(L->m, (size_t)cols * sizeof(float));
        if (!v) return attn_err(ATTN_EFAIL, "out of memory");
        if (attn_is_quant(g->type))
            return attn_err(ATTN_EINPUT, "%s: vector tensor '%s' may not be %s", L->f->path, name, attn_type_name(g->type));
        attn_k->dequant_row(g->data, g->type, v, cols);
        t->data = v;
        t->type = ATTN_F32;
    }
    return 0;
}

// Fused or separate Q/K/V in layer l, as the architecture allows: the
// presence of attn_qkv.weight decides, and must be the same in every layer.
static int layer_qkv(loader *L, int l, uint32_t *req, uint32_t *opt) {
    char n[96];
    snprintf(n, sizeof n, "blk.%d.attn_qkv.weight", l);
    int fused = attn_gguf_find_tensor(L->f, n) != NULL, allow = L->info->qkv;
    if (allow == 1) fused = 1;
    if (allow == 2) fused = 0;
    if (l == 0) L->m->cfg.fused_qkv = fused;
    else if (fused != L->m->cfg.fused_qkv)
        return attn_err(ATTN_EINPUT, "%s: layer %d mixes fused and separate Q/K/V tensors", L->f->path, l);
    uint32_t fus = 1u << 2 | 1u << 3, sep = 0x3f0; // attn_qkv.*; attn_q/k/v.* (table rows 4..9)
    *opt &= ~(fused ? sep : fus);
    *req &= ~(fused ? sep : fus);
    *req |= fused ? 1u << 2 : 0x70; // the weights of the chosen set
    return 0;
}

// Every tensor of layer l that the architecture has, from attn_layer_tensors.
static int get_layer(loader *L, int l) {
    const attn_config *c = &L->m->cfg;
    attn_layer *ly = &L->m->layers[l];
    uint32_t req = L->info->req, opt = L->info->opt;
    if (layer_qkv(L, l, &req, &opt)) return ATTN_EINPUT;
    if (c->mlp == ATTN_MLP_SWIGLU || c->mlp == ATTN_MLP_GEGLU) req |= 1u << 19; // ffn_gate
    char n[96];
    for (int i = 0; i < attn_n_layer_tensors; i++) {
        const attn_tensor_spec *t = &attn_layer_tensors[i];
        if (!((req | opt) >> i & 1)) continue;
        snprintf(n, sizeof n, "blk.%d.%s", l, t->suffix);
        int rows = t->rows == ATTN_DIM_1 ? 0 : attn_dim(c, t->rows);
        if (get_tensor(L, n, rows, attn_dim(c, t->cols), req >> i & 1, (attn_tensor *)((char *)ly + t->off)))
            return ATTN_EINPUT;
    }
    if (l == 0) { // switches that follow from the tensors present
        L->m->cfg.pre_norm = ly->attn_norm.data != NULL;
        L->m->cfg.post_norm = ly->post_attn_norm.data != NULL;
        L->m->cfg.qk_norm = ly->q_norm.data != NULL;
    } else if ((ly->attn_norm.data != NULL) != c->pre_norm || (ly->post_attn_norm.data != NULL) != c->post_norm ||
               (ly->q_norm.data != NULL) != c->qk_norm)
        return attn_err(ATTN_EINPUT, "%s: layer %d has other norm tensors than layer 0", L->f->path, l);
    return 0;
}

static int count_params(attn_model *m) {
    const attn_gguf_file *f = &m->file;
    m->n_params = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const attn_gguf_tensor *t = &f->tensors[i];
        m->n_params += (int64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    }
    return 0;
}

static int load_from_file(attn_model *m) {
    loader L = { .m = m, .f = &m->file };
    if (attn_simd_init()) return ATTN_EINPUT; // keeps a path already chosen
    if (!m->file.n_tensors)
        return attn_err(ATTN_EINPUT, "%s: no tensors (a vocabulary-only file has no model)", m->file.path);
    if (read_config(&L)) return ATTN_EINPUT;
    attn_config *c = &m->cfg;
    const attn_gguf_tensor *emb = attn_gguf_find_tensor(&m->file, "token_embd.weight");
    if (!emb) return attn_err(ATTN_EINPUT, "%s: missing tensor 'token_embd.weight' (a vocabulary-only file has no model)", m->file.path);
    if (emb->ne[1] > (1 << 24)) return attn_err(ATTN_EINPUT, "%s: vocabulary of %llu tokens is too large", m->file.path, (unsigned long long)emb->ne[1]);
    c->n_vocab = (int)emb->ne[1];
    int D = c->n_embd;
    if (get_tensor(&L, "token_embd.weight", c->n_vocab, D, 1, &m->tok_embd) ||
        get_tensor(&L, "output_norm.weight", 0, D, 1, &m->out_norm) ||
        get_tensor(&L, "output_norm.bias", 0, D, 0, &m->out_norm_b) ||
        get_tensor(&L, "output.weight", c->n_vocab, D, 0, &m->output) ||
        get_tensor(&L, "output.bias", 0, c->n_vocab, 0, &m->output_b) ||
        get_tensor(&L, "rope_freqs.weight", 0, c->rope_dims / 2, 0, &m->rope_freqs) ||
        get_tensor(&L, "position_embd.weight", c->n_ctx, D, c->pos == ATTN_POS_LEARNED, &m->pos_embd))
        return ATTN_EINPUT;
    c->rope_freqs = m->rope_freqs.data != NULL;
    if (!m->output.data) m->output = m->tok_embd; // tied (a copy in output.weight: attn_model_tied_head)
    // each layer has several tensors: a block count the file cannot hold is
    // refused naming the first missing layer's tensor, before allocating
    for (uint64_t l = 0; (uint64_t)c->n_layer > m->file.n_tensors && l <= m->file.n_tensors; l++) {
        char n[64];
        snprintf(n, sizeof n, "blk.%llu.attn_norm.weight", (unsigned long long)l);
        if (!attn_gguf_find_tensor(&m->file, n))
            return attn_err(ATTN_EINPUT, "%s: missing tensor '%s' (block_count is %d)", m->file.path, n, c->n_layer);
    }
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers) return attn_err(ATTN_EFAIL, "out of memory");
    for (int l = 0; l < c->n_layer; l++)
        if (get_layer(&L, l)) return ATTN_EINPUT;
    count_params(m);
    attn_gguf_str s;
    // the name is shown in tables, titles and terminals: no control characters
    if (attn_gguf_get_str(&m->file, "general.name", &s) == 0 && s.len)
        attn_escape(m->name, 121, s.s, s.len);
    else {
        const char *b = strrchr(m->path, '/');
        attn_escape(m->name, sizeof m->name, b ? b + 1 : m->path, strlen(b ? b + 1 : m->path));
    }
    int rc = attn_tokenizer_load(&m->tok, &m->file, c->n_vocab);
    if (rc) { // the tokenizer's message, with the file it is about
        char why[1024];
        snprintf(why, sizeof why, "%s", attn_errmsg());
        return attn_err(rc, "%s: %s", m->file.path, why);
    }
    return 0;
}

static int finish_load(attn_model *m, int rc, attn_model **out) {
    if (rc) {
        attn_model_free(m);
        *out = NULL;
        return rc;
    }
    *out = m;
    return 0;
}

int attn_model_load(attn_model **out, const char *path) {
    attn_model *m = calloc(1, sizeof *m);
    if (!m) return attn_err(ATTN_EFAIL, "out of memory");
    snprintf(m->path, sizeof m->path, "%s", path);
    int rc = attn_gguf_open(&m->file, path);
    if (!rc) rc = load_from_file(m);
    return finish_load(m, rc, out);
}

int attn_model_load_mem(attn_model **out, const void *buf, size_t size, const char *name) {
    attn_model *m = calloc(1, sizeof *m);
    if (!m) return attn_err(ATTN_EFAIL, "out of memory");
    snprintf(m->path, sizeof m->path, "%s", name);
    int rc = attn_gguf_open_mem(&m->file, buf, size, name);
    if (!rc) rc = load_from_file(m);
    return finish_load(m, rc, out);
}

static int lazy_tied(const struct attn_lazy *z);
static void lazy_free(struct attn_lazy *z);

// Tied: no output.weight, or one equal to token_embd byte for byte (what
// llama.cpp's gpt2 converter and ours write for a tied head). Compared when
// asked, not at load: a forward reads either copy with the same result, and
// the compare reads both (50 MB at d=768, V=8192) before anything else runs.
int attn_model_tied_head(const attn_model *m) {
    const attn_tensor *o = &m->output, *e = &m->tok_embd;
    if (m->lazy) return lazy_tied(m->lazy);
    if (o->data == e->data) return 1;
    return o->type == e->type && o->rows == e->rows && o->cols == e->cols &&
           !memcmp(o->data, e->data, attn_type_row_bytes(e->type, (uint64_t)e->cols) * (size_t)e->rows);
}

void attn_model_free(attn_model *m) {
    if (!m) return;
    // a random model borrows its tokenizer and file from the model it imitates
    if (m->file.base) {
        attn_tokenizer_free(m->tok);
        attn_gguf_close(&m->file);
    }
    free(m->layers);
    lazy_free(m->lazy);
    for (owned_block *b = m->owned; b;) {
        owned_block *n = b->next;
        if (b->bytes) attn_big_free(b, b->bytes);
        else free(b);
        b = n;
    }
    free(m);
}

// ---------------------------------------------------------------- random init

// The seeded N(0,1) stream of attn_kernels.normals (splitmix64 + Box-Muller,
// the same on every platform): any stretch of it can be made on its own, so
// the pool's threads make a tensor's in parts, the values of one stream.
typedef struct { uint64_t seed, first; size_t n; double std; float *w; } normals_job;
#define NORMALS_PART ((size_t)1 << 16)

static void normals_item(void *ctx, int i) {
    const normals_job *j = ctx;
    size_t a = (size_t)i * NORMALS_PART, n = j->n - a < NORMALS_PART ? j->n - a : NORMALS_PART;
    attn_k->normals(j->seed, j->first + a, n, j->std, j->w + a);
}

// w[i] = std * normal (first + i), i < n, in parts on the pool.
static void normals_pool(attn_pool *pool, uint64_t seed, uint64_t first, size_t n, double std, float *w) {
    normals_job j = { seed, first, n, std, w };
    attn_pool_run(pool, (int)((n + NORMALS_PART - 1) / NORMALS_PART), normals_item, &j);
}

// A random model's layer matrices: where each starts in the stream, and
// where their values are. A forward's first pass makes each layer in one
// shared slot; from the second pass on (layer 0 asked for again: another
// prompt, or a decode step), layers below n_res are made in memory of their
// own and kept. A single forward so touches one layer's memory, not all.
struct attn_lazy {
    uint64_t seed;
    uint64_t *first;      // [L * attn_n_layer_tensors]: the tensor's first normal; NO_NORMALS: not random
    double *std;          // [attn_n_layer_tensors]
    char **mem;           // [L]: layer l's own memory, mapped when l is first kept (l < n_res)
    size_t *bytes;        // [L]: layer l's matrices' bytes
    char *slot;           // one layer's memory, shared
    unsigned char *made;  // [L]: layer l made in its own memory
    int n_res, in_slot, passes;
    // token embedding and output head: rows made when read, never kept
    uint64_t emb_first, out_first; // their first normals (out_first = emb_first: tied)
    float *head_buf;      // HEAD_CHUNK rows of the head
    pthread_mutex_t mu;
};
#define HEAD_CHUNK 1024
#define NO_NORMALS UINT64_MAX
#define INIT_STD 0.02 // GPT-2's N(0, 0.02) (its residual projections: / sqrt(2 n_layer))

static attn_tensor *layer_tensor(attn_layer *ly, int i) { return (attn_tensor *)((char *)ly + attn_layer_tensors[i].off); }

// Layer l's random matrices made at mem (each from a 64-byte boundary).
static void make_layer(const attn_model *m, int l, char *mem, attn_pool *pool) {
    struct attn_lazy *z = m->lazy;
    for (int i = 0; i < attn_n_layer_tensors; i++) {
        uint64_t first = z->first[(size_t)l * attn_n_layer_tensors + i];
        attn_tensor *t = layer_tensor(&m->layers[l], i);
        if (first == NO_NORMALS) continue;
        size_t n = (size_t)t->rows * t->cols;
        t->data = mem;
        normals_pool(pool, z->seed, first, n, z->std[i], (float *)mem);
        mem += (n * 4 + 63) / 64 * 64;
    }
}

const attn_layer *attn_model_layer(const attn_model *m, int l, attn_pool *pool) {
    struct attn_lazy *z = m->lazy;
    if (!z) return &m->layers[l];
    pthread_mutex_lock(&z->mu);
    if (l == 0 && !z->made[0]) z->passes++;
    if (!z->made[l] && z->passes > 1 && l < z->n_res && !(z->mem[l] = attn_big_alloc(z->bytes[l])))
        z->n_res = l; // no room to keep it (an address-space limit): this one and those after it stay made per pass
    if (!z->made[l]) {
        if (z->passes > 1 && l < z->n_res) make_layer(m, l, z->mem[l], pool), z->made[l] = 1;
        else if (z->in_slot != l) make_layer(m, l, z->slot, pool), z->in_slot = l;
    }
    pthread_mutex_unlock(&z->mu);
    return &m->layers[l];
}

// Row v (D floats) of a random model's token embedding (first = emb_first)
// or output head (out_first): N(0, INIT_STD), numbers first + v D ... of the stream.
static void rand_row(const struct attn_lazy *z, uint64_t first, int v, int D, float *out) {
    attn_k->normals(z->seed, first + (uint64_t)v * D, (size_t)D, INIT_STD, out);
}

void attn_model_out_row(const attn_model *m, int v, float *row) {
    int D = m->cfg.n_embd;
    if (!m->output.data) rand_row(m->lazy, m->lazy->out_first, v, D, row);
    else attn_k->dequant_row((const uint8_t *)m->output.data + attn_type_row_bytes(m->output.type, D) * v, m->output.type, row, D);
}

static int lazy_tied(const struct attn_lazy *z) { return z->out_first == z->emb_first; }

static void lazy_free(struct attn_lazy *z) {
    if (!z) return;
    pthread_mutex_destroy(&z->mu);
    for (int l = 0; z->mem && l < z->n_res; l++)
        if (z->mem[l]) attn_big_free(z->mem[l], z->bytes[l]);
    free(z->first), free(z->std), free(z->mem), free(z->bytes), free(z->made), free(z);
}

// A random F32 tensor shaped like `like` (absent stays absent): value =
// std * the next normals of the stream (r->next counts those taken), or the
// constant `fill` when std == 0.
typedef struct { attn_model *m; attn_pool *pool; uint64_t seed, next; } rand_src;

static int rand_tensor(rand_src *r, const attn_tensor *like, double std, float fill, attn_tensor *t) {
    memset(t, 0, sizeof *t);
    if (!like->data) return 0;
    size_t n = (size_t)like->rows * like->cols;
    float *w = own(r->m, n * sizeof(float));
    if (!w) return attn_err(ATTN_EFAIL, "out of memory for a random model");
    if (std) {
        normals_pool(r->pool, r->seed, r->next, n, std, w);
        r->next += n;
    } else {
        for (size_t i = 0; i < n; i++) w[i] = fill;
    }
    *t = (attn_tensor){ w, ATTN_F32, like->rows, like->cols };
    return 0;
}

// Bytes of layer l's random matrices, each from a 64-byte boundary.
static size_t layer_rand_bytes(const attn_model *like, int l, const double *std) {
    size_t b = 0;
    for (int i = 0; i < attn_n_layer_tensors; i++) {
        const attn_tensor *t = layer_tensor(&like->layers[l], i);
        if (t->data && std[attn_layer_tensors[i].init]) b += ((size_t)t->rows * t->cols * 4 + 63) / 64 * 64;
    }
    return b;
}

// The layers: constants filled now; each random matrix's place in the stream
// noted; the shared slot mapped (a layer's own memory when it is kept).
static int rand_layers(rand_src *r, const attn_model *like, const double *std, size_t resident) {
    attn_model *m = r->m;
    int L = like->cfg.n_layer, NT = attn_n_layer_tensors;
    struct attn_lazy *z = m->lazy;
    if (!(z->first = malloc((size_t)L * NT * sizeof *z->first)) || !(z->std = calloc((size_t)NT, sizeof *z->std)) ||
        !(z->made = calloc((size_t)L, 1)) || !(z->mem = calloc((size_t)L, sizeof *z->mem)) ||
        !(z->bytes = calloc((size_t)L, sizeof *z->bytes)))
        return attn_err(ATTN_EFAIL, "out of memory");
    z->in_slot = -1;
    size_t per = 0, total = 0;
    for (int l = 0; l < L; l++) {
        size_t b = z->bytes[l] = layer_rand_bytes(like, l, std);
        per = b > per ? b : per, total += b;
    }
    z->n_res = total <= resident ? L : per ? (int)(resident / per) : L;
    if (!(z->slot = own(m, per))) return attn_err(ATTN_EFAIL, "out of memory for a random model's layer (%zu MB)", per >> 20);
    for (int l = 0; l < L; l++)
        for (int i = 0; i < NT; i++) {
            const attn_tensor *lt = layer_tensor(&like->layers[l], i);
            attn_tensor *t = layer_tensor(&m->layers[l], i);
            double sd = std[attn_layer_tensors[i].init];
            z->first[(size_t)l * NT + i] = NO_NORMALS;
            z->std[i] = sd;
            if (!lt->data || !sd) {
                int rc = rand_tensor(r, lt, 0, attn_layer_tensors[i].init == ATTN_INIT_ONE, t);
                if (rc) return rc;
                continue;
            }
            *t = (attn_tensor){ z->slot, ATTN_F32, lt->rows, lt->cols }; // (made before use: attn_model_layer)
            z->first[(size_t)l * NT + i] = r->next;
            r->next += (size_t)lt->rows * lt->cols;
        }
    return 0;
}

// A number from the first line of a file, or `dflt` where it is missing or
// not a number ("max": no limit).
static unsigned long long file_number(const char *path, unsigned long long dflt) {
    FILE *f = fopen(path, "r");
    unsigned long long v;
    int ok = f && fscanf(f, "%llu", &v) == 1;
    if (f) fclose(f);
    return ok ? v : dflt;
}

// The value of `key` in a memory.stat file ("key value" lines), 0 where absent.
static unsigned long long stat_number(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    char line[256];
    unsigned long long v = 0;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ' ' && sscanf(line + n, "%llu", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

// Bytes this process's memory cgroup still lets it take: the least, over its
// cgroup and those above it, of limit - (usage - inactive file cache) (v1:
// memory.limit_in_bytes, memory.usage_in_bytes and memory.stat's
// total_inactive_file; v2: memory.max, memory.current and memory.stat's
// inactive_file). Usage counts the page cache of files read or written in
// the cgroup, which the kernel takes back before it runs out: the "working
// set" container tools show. A container's limit is one /proc/meminfo does
// not show. ULLONG_MAX: no limit found.
static unsigned long long cgroup_room(void) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[512], dir[1024] = "", *mount = NULL;
    const char *lim = NULL, *use = NULL, *cache = NULL;
    while (f && fgets(line, sizeof line, f)) { // "id:controllers:path"
        char *c = strchr(line, ':'), *p = c ? strchr(c + 1, ':') : NULL;
        if (!p) continue;
        *c = 0, *p++ = 0;
        p[strcspn(p, "\n")] = 0;
        int v1 = strstr(c + 1, "memory") != NULL, v2 = !strcmp(line, "0") && c[1] == 0;
        if (v1 || (v2 && !mount)) {
            mount = v1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup";
            lim = v1 ? "memory.limit_in_bytes" : "memory.max";
            use = v1 ? "memory.usage_in_bytes" : "memory.current";
            cache = v1 ? "total_inactive_file" : "inactive_file";
            snprintf(dir, sizeof dir, "%s%s", mount, p);
        }
    }
    if (f) fclose(f);
    if (!mount) return ULLONG_MAX;
    if (access(dir, R_OK) != 0) snprintf(dir, sizeof dir, "%s", mount); // a container's own root
    unsigned long long room = ULLONG_MAX;
    for (;;) {
        char fp[1100];
        snprintf(fp, sizeof fp, "%s/%s", dir, lim);
        unsigned long long l = file_number(fp, ULLONG_MAX);
        if (l != ULLONG_MAX) {
            snprintf(fp, sizeof fp, "%s/%s", dir, use);
            unsigned long long u = file_number(fp, 0);
            snprintf(fp, sizeof fp, "%s/memory.stat", dir);
            unsigned long long c = stat_number(fp, cache);
            u = u > c ? u - c : 0;
            room = l > u ? (l - u < room ? l - u : room) : 0;
        }
        char *slash = strrchr(dir, '/');
        if (strlen(dir) <= strlen(mount) || !slash) break;
        *slash = 0;
    }
    return room;
}

// Half of what this process may still take: /proc/meminfo's MemAvailable,
// or less where a memory cgroup (a container) says so. SIZE_MAX where
// neither says anything.
static size_t resident_default(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    unsigned long long kb = 0, room = cgroup_room();
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    if (f) fclose(f);
    if (kb && kb * 1024 < room) room = kb * 1024;
    return room == ULLONG_MAX ? SIZE_MAX : (size_t)(room / 2);
}

int attn_model_random(attn_model **out, const attn_model *like, uint64_t seed, attn_pool *pool) {
    return attn_model_random_budget(out, like, seed, pool, resident_default());
}

int attn_model_random_budget(attn_model **out, const attn_model *like, uint64_t seed, attn_pool *pool,
                             size_t resident) {
    attn_model *m = calloc(1, sizeof *m);
    if (!m) return attn_err(ATTN_EFAIL, "out of memory");
    m->cfg = like->cfg;
    m->tok = like->tok; // borrowed: m->file stays empty, so free() leaves it alone
    m->n_params = like->n_params;
    snprintf(m->name, sizeof m->name, "random init (seed %llu)", (unsigned long long)seed);
    snprintf(m->path, sizeof m->path, "%s", like->path);
    rand_src r = { m, pool, seed, 0 };
    const double s = INIT_STD, sp = INIT_STD / sqrt(2.0 * like->cfg.n_layer); // GPT-2 init
    const double std[] = { [ATTN_INIT_NORMAL] = s, [ATTN_INIT_RESID] = sp, [ATTN_INIT_ONE] = 0, [ATTN_INIT_ZERO] = 0 };
    size_t VD = (size_t)like->cfg.n_vocab * like->cfg.n_embd;
    struct attn_lazy *z = m->lazy = calloc(1, sizeof *z);
    if (!z || !(z->head_buf = own(m, (size_t)HEAD_CHUNK * like->cfg.n_embd * sizeof(float)))) {
        attn_model_free(m);
        return attn_err(ATTN_EFAIL, "out of memory");
    }
    pthread_mutex_init(&z->mu, NULL);
    z->seed = seed;
    // the stream's order: token embedding (rows made when read: rand_row),
    // positions, final norm, output head (made when used: rand_head_rows), layers
    z->emb_first = z->out_first = r.next, r.next += VD;
    m->tok_embd = m->output = (attn_tensor){ NULL, ATTN_F32, like->cfg.n_vocab, like->cfg.n_embd };
    int rc = rand_tensor(&r, &like->pos_embd, s, 0, &m->pos_embd) ||
             rand_tensor(&r, &like->out_norm, 0, 1, &m->out_norm) ||
             rand_tensor(&r, &like->out_norm_b, 0, 0, &m->out_norm_b);
    if (!attn_model_tied_head(like)) z->out_first = r.next, r.next += VD;
    m->layers = calloc((size_t)like->cfg.n_layer, sizeof *m->layers);
    if (!rc && !m->layers) rc = attn_err(ATTN_EFAIL, "out of memory");
    if (!rc) rc = rand_layers(&r, like, std, resident);
    if (!rc) rc = rand_tensor(&r, &like->output_b, 0, 0, &m->output_b);
    m->rope_freqs = like->rope_freqs; // a property of the positions, not a learned weight
    return finish_load(m, rc ? ATTN_EFAIL : 0, out);
}

// ---------------------------------------------------------------- forward

// Session memory: one anonymous mapping, zero-filled, in 2 MB pages where the
// OS gives them (a first touch then faults once per 2 MB, not per 4 KB). The
// kernel uses 2 MB pages only for whole 2 MB-aligned blocks, so a mapping of
// 2 MB or more is placed on a 2 MB boundary and rounded up to whole blocks.
#define BIG_PAGE ((size_t)2 << 20)
static size_t big_size(size_t n) {
    return n < BIG_PAGE ? (n ? n : 1) : (n + BIG_PAGE - 1) / BIG_PAGE * BIG_PAGE;
}

void *attn_big_alloc(size_t n) {
    size_t len = big_size(n), extra = len < BIG_PAGE ? 0 : BIG_PAGE;
    char *p = mmap(NULL, len + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    if (!extra) return p;
    char *a = (char *)(((uintptr_t)p + BIG_PAGE - 1) & ~(uintptr_t)(BIG_PAGE - 1));
    if (a > p) munmap(p, (size_t)(a - p)); // the unaligned head and tail back
    if (a + len < p + len + extra) munmap(a + len, (size_t)(p + len + extra - (a + len)));
#ifdef MADV_HUGEPAGE
    madvise(a, len, MADV_HUGEPAGE);
#endif
    return a;
}

void attn_big_free(void *p, size_t n) {
    if (p) munmap(p, big_size(n));
}

struct attn_session {
    const attn_model *m;
    attn_pool *pool;
    int max_t, pos;       // positions of a run: at most, fed
    int runs;             // independent runs in the rows (attn_session_run_from), 1 otherwise
    size_t kv_rows;       // rows of each layer's KV cache: max_t x the most runs
    int cap_rows;         // rows the scratch below holds
    void *scratch;        // one big_alloc of scratch_bytes holding x .. probs
    size_t scratch_bytes, kv_bytes;
    float *k_cache, *v_cache; // (L, kv_rows, kv_dim), one big_alloc of kv_bytes
    float *x, *xn, *ao;   // (rows, D) residual, normed, attention block output
    float *qkv;           // (rows, q_dim + 2 kv_dim)
    float *att;           // (rows, q_dim) attention output
    float *ff1, *ff2;     // (rows, F or 2F), (rows, max(F, D))
    float *probs;         // (runs x H, rows / runs, nk <= max_t) attention probabilities of the new rows
    float *freqs;         // (rope_dims / 2)
};

int attn_session_new(attn_session **out, const attn_model *m, int max_t, attn_pool *pool) {
    return attn_session_new_runs(out, m, max_t, 1, pool);
}

int attn_session_new_runs(attn_session **out, const attn_model *m, int max_t, int max_runs, attn_pool *pool) {
    const attn_config *c = &m->cfg;
    *out = NULL;
    if (max_t < 1 || max_t > c->n_ctx)
        return attn_err(ATTN_EINPUT, "session of %d positions: the model's context is %d", max_t, c->n_ctx);
    if (max_runs < 1 || (int64_t)max_t * max_runs > INT32_MAX / 2)
        return attn_err(ATTN_EINPUT, "session of %d runs of %d positions: too many", max_runs, max_t);
    attn_session *s = calloc(1, sizeof *s);
    if (!s) return attn_err(ATTN_EFAIL, "out of memory");
    s->m = m;
    s->pool = pool;
    s->max_t = max_t;
    s->runs = 1;
    s->kv_rows = (size_t)max_t * max_runs;
    size_t kv = (size_t)c->n_layer * s->kv_rows * c->n_head_kv * c->head_dim;
    s->kv_bytes = 2 * kv * sizeof(float);
    s->k_cache = attn_big_alloc(s->kv_bytes);
    s->v_cache = s->k_cache ? s->k_cache + kv : NULL;
    s->freqs = malloc((size_t)(c->rope_dims / 2 + 1) * sizeof(float));
    attn_gguf_prefault(&m->file); // a forward reads every weight
    if (!s->k_cache || !s->v_cache || !s->freqs) {
        attn_session_free(s);
        return attn_err(ATTN_EFAIL, "out of memory for the KV cache (%zu MB)", 2 * kv * 4 >> 20);
    }
    const float *ff = m->rope_freqs.data; // Llama 3: per-frequency divisors
    for (int i = 0; i < c->rope_dims / 2; i++)
        s->freqs[i] = (float)(pow(c->rope_theta, -2.0 * i / c->rope_dims) * c->rope_scale / (ff ? ff[i] : 1.0f));
    *out = s;
    return 0;
}

static void free_scratch(attn_session *s) {
    attn_big_free(s->scratch, s->scratch_bytes);
    s->scratch = NULL;
    s->x = s->xn = s->ao = s->qkv = s->att = s->ff1 = s->ff2 = s->probs = NULL;
    s->cap_rows = 0;
}

void attn_session_free(attn_session *s) {
    if (!s) return;
    free_scratch(s);
    attn_big_free(s->k_cache, s->kv_bytes);
    free(s->freqs);
    free(s);
}

int attn_session_pos(const attn_session *s) { return s->pos; }
void attn_session_reset(attn_session *s) { s->pos = 0; }

// Scratch for n rows (grown on demand, never shrunk).
static int ensure_rows(attn_session *s, int n) {
    if (n <= s->cap_rows) return 0;
    const attn_config *c = &s->m->cfg;
    free_scratch(s);
    size_t D = c->n_embd, qd = (size_t)c->n_head * c->head_dim, kvd = (size_t)c->n_head_kv * c->head_dim;
    size_t F = c->n_ff, rows = (size_t)n;
    size_t sz[8] = { rows * D, rows * D, rows * D, rows * (qd + 2 * kvd), rows * qd,
                     rows * (size_t)attn_dim(c, ATTN_DIM_UP), rows * (F > D ? F : D),
                     (size_t)c->n_head * rows * s->max_t };
    float **dst[8] = { &s->x, &s->xn, &s->ao, &s->qkv, &s->att, &s->ff1, &s->ff2, &s->probs };
    size_t total = 0;
    for (int i = 0; i < 8; i++) total += (sz[i] * 4 + 63) / 64 * 64; // each 64-byte aligned
    if (!(s->scratch = attn_big_alloc(total)))
        return attn_err(ATTN_EFAIL, "out of memory for activations of %d positions", n);
    s->scratch_bytes = total;
    char *p = s->scratch;
    for (int i = 0; i < 8; i++) {
        *dst[i] = (float *)p;
        p += (sz[i] * 4 + 63) / 64 * 64;
    }
    s->cap_rows = n;
    return 0;
}

// Work below this many multiply-adds runs on the calling thread. Which thread
// computes an element never changes its value, so this is only about speed.
#define PARALLEL_MIN_FLOPS (1 << 17)
#define PARALLEL_MIN_ATTN (1 << 15) // query rows x keys x q_dim
#define PARALLEL_MIN_ROWS (1 << 15) // rows x floats per row of a row-wise operation (norms, activations)

// A row-wise operation on rows r0..r1-1 (each row's bits the same on any thread).
typedef void (*rows_fn)(void *ctx, int r0, int r1);
typedef struct { rows_fn fn; void *ctx; int n, block; } rows_job;
static void rows_item(void *ctx, int i) {
    const rows_job *j = ctx;
    int r1 = (i + 1) * j->block;
    j->fn(j->ctx, i * j->block, r1 < j->n ? r1 : j->n);
}

// fn on n rows of width floats, in blocks across the pool where that pays
// for the dispatch: not on the calling thread alone while the others wait
// (a layer's norms and adds, the logits' check: ~3 ms of the cold-start
// shape's forward, tools/bench.sh). Not from the pool's own threads.
static void rows_run(const attn_session *s, int n, int width, rows_fn fn, void *ctx) {
    int nt = s->pool ? attn_pool_size(s->pool) : 1;
    if (nt == 1 || n < 2 || (double)n * width < PARALLEL_MIN_ROWS) {
        fn(ctx, 0, n);
        return;
    }
    int items = n < 4 * nt ? n : 4 * nt;
    rows_job j = { fn, ctx, n, (n + items - 1) / items };
    attn_pool_run(s->pool, (n + j.block - 1) / j.block, rows_item, &j);
}

// C (M, n1-n0 of N) = A (M, K) x W^T (+ bias), the columns split across the pool.
typedef struct {
    const float *A; int lda;
    const attn_tensor *W; const float *bias;
    float *C; int ldc; int M, nt; // columns split for nt threads (attn_col_range)
    uint64_t mark; // attn_kernels_set_mark: A does not change during the dispatch
} matmul_job;

static void matmul_item(void *ctx, int i) {
    const matmul_job *j = ctx;
    int n0, n1;
    attn_col_range(j->W->rows, j->nt, i, &n0, &n1);
    attn_kernels_set_mark(j->mark);
    attn_k->matmul(j->A, j->lda, j->W->data, j->W->type, j->bias, j->C, j->ldc, j->M, j->W->cols, n0, n1);
    attn_kernels_set_mark(0);
}

// The job of one product (returns its item count).
static int matmul_plan(const attn_session *s, const float *A, int lda, const attn_tensor *W, const attn_tensor *b,
                       float *C, int ldc, int M, matmul_job *j) {
    int nt = s->pool ? attn_pool_size(s->pool) : 1;
    *j = (matmul_job){ A, lda, W, b && b->data ? (const float *)b->data : NULL, C, ldc, M, nt, 0 };
    return attn_col_items(W->rows, nt);
}

// Up to 3 products in one pool dispatch (q, k, v; gate, up): a decode step
// hands the pool one job per layer stage, not one per weight matrix.
// side: run on the calling thread while the pool's other threads start (attn_pool_run_beside).
typedef struct {
    matmul_job part[3];
    int items[3], n, total;
    double flops;
    void (*side)(void *);
    void *side_ctx;
} matmul_group;

static void group_add(const attn_session *s, matmul_group *g, const float *A, int lda, const attn_tensor *W,
                      const attn_tensor *b, float *C, int ldc, int M) {
    g->items[g->n] = matmul_plan(s, A, lda, W, b, C, ldc, M, &g->part[g->n]);
    g->total += g->items[g->n++];
    g->flops += (double)M * W->rows * W->cols;
}

static void group_item(void *ctx, int i) {
    matmul_group *g = ctx;
    int p = 0;
    while (i >= g->items[p]) i -= g->items[p++];
    matmul_item(&g->part[p], i);
}

static void group_run(attn_session *s, matmul_group *g) {
    uint64_t mark = attn_kernels_new_mark();
    for (int p = 0; p < g->n; p++) g->part[p].mark = mark;
    // small products are faster on the calling thread (no pool) than handed to the pool
    attn_pool *pool = g->flops >= PARALLEL_MIN_FLOPS ? s->pool : NULL;
    attn_pool_run_beside(pool, g->total, group_item, g, g->side, g->side_ctx);
}

static void matmul(attn_session *s, const float *A, int lda, const attn_tensor *W, const attn_tensor *b,
                   float *C, int ldc, int M) {
    matmul_group g = { 0 };
    group_add(s, &g, A, lda, W, b, C, ldc, M);
    group_run(s, &g);
}

typedef struct { const attn_config *c; float *out; const float *x; const attn_tensor *w, *b; } norm_job;
static void norm_part(void *ctx, int r0, int r1) {
    const norm_job *j = ctx;
    const attn_config *c = j->c;
    size_t D = (size_t)c->n_embd;
    for (int i = r0; i < r1; i++) {
        if (c->norm == ATTN_NORM_RMS) attn_k->rmsnorm(j->out + i * D, j->x + i * D, j->w->data, (int)D, c->norm_eps);
        else attn_k->layernorm(j->out + i * D, j->x + i * D, j->w->data, j->b->data, (int)D, c->norm_eps);
    }
}

static void norm_rows(const attn_session *s, float *out, const float *x, const attn_tensor *w, const attn_tensor *b, int n) {
    norm_job j = { &s->m->cfg, out, x, w, b };
    rows_run(s, n, s->m->cfg.n_embd, norm_part, &j);
}

typedef struct {
    attn_session *s;
    int l, p, qkv_w; // p: new rows of each run
    int window;      // keys j > i - window only (0: all earlier keys)
} attn_job;

int attn_layer_window(const attn_config *c, int l) {
    return c->swa_window > 0 && (c->swa_every == 1 || l % c->swa_every == 0) ? c->swa_window : 0;
}

// Causal attention of one head with a sliding window and/or a soft-cap on
// the scores (cap tanh(s / cap), cap 0: none); arguments as the attention
// kernel's. Keys outside the window get probability 0.
static void attention_capped(const float *q, int qs, const float *k, int ks, const float *v, int vs, int nq,
                             int q0, int hd, float scale, float cap, int window, float *probs, float *out, int os) {
    int nk = q0 + nq;
    for (int i = 0; i < nq; i++) {
        const float *qi = q + (size_t)i * qs;
        float *p = probs + (size_t)i * nk, *o = out + (size_t)i * os;
        int last = q0 + i, first = window && last - window + 1 > 0 ? last - window + 1 : 0;
        for (int j = 0; j < nk; j++) p[j] = 0.0f;
        for (int j = first; j <= last; j++) {
            const float *kj = k + (size_t)j * ks;
            float sc = 0.0f;
            for (int d = 0; d < hd; d++) sc += qi[d] * kj[d];
            sc *= scale;
            p[j] = cap > 0 ? tanhf(sc * (1.0f / cap)) * cap : sc;
        }
        attn_k->softmax(p + first, last - first + 1);
        for (int d = 0; d < hd; d++) o[d] = 0.0f;
        for (int j = first; j <= last; j++) {
            const float *vj = v + (size_t)j * vs;
            for (int d = 0; d < hd; d++) o[d] += p[j] * vj[d];
        }
    }
}

// Item i = run b, head h (i = b H + h): that head's attention for the run's
// p new rows (rows b p ..): probs (p, pos+p) and output columns. A run's
// keys are its own rows of the cache (one run: all of them).
static void attention_item(void *ctx, int i) {
    const attn_job *j = ctx;
    attn_session *s = j->s;
    const attn_config *c = &s->m->cfg;
    int H = c->n_head, h = i % H, hd = c->head_dim, kvd = c->n_head_kv * hd, kvh = h / (H / c->n_head_kv);
    size_t r0 = (size_t)(i / H) * j->p, layer_off = (size_t)j->l * s->kv_rows * kvd + r0 * kvd;
    int nk = s->pos + j->p;
    const float *q = s->qkv + r0 * j->qkv_w + (size_t)h * hd, *k = s->k_cache + layer_off + (size_t)kvh * hd;
    const float *v = s->v_cache + layer_off + (size_t)kvh * hd;
    float *p = s->probs + (size_t)i * j->p * nk, *o = s->att + r0 * H * hd + (size_t)h * hd;
    float scale = 1.0f / sqrtf((float)hd);
    if (c->attn_softcap > 0 || (j->window && j->window < nk))
        attention_capped(q, j->qkv_w, k, kvd, v, kvd, j->p, s->pos, hd, scale, c->attn_softcap, j->window, p, o, H * hd);
    else attn_k->attention(q, j->qkv_w, k, kvd, v, kvd, j->p, s->pos, hd, scale, p, o, H * hd);
}

static void embed(attn_session *s, const int32_t *ids, int n) {
    const attn_model *m = s->m;
    int D = m->cfg.n_embd;
    size_t erow = attn_type_row_bytes(m->tok_embd.type, D);
    for (int i = 0; i < n; i++) {
        float *x = s->x + (size_t)i * D;
        if (!m->tok_embd.data) rand_row(m->lazy, m->lazy->emb_first, ids[i], D, x); // a random model's
        else attn_k->dequant_row((const uint8_t *)m->tok_embd.data + erow * ids[i], m->tok_embd.type, x, D);
        if (m->cfg.embd_scale != 1.0f)
            for (int d = 0; d < D; d++) x[d] *= m->cfg.embd_scale;
        if (m->cfg.pos == ATTN_POS_LEARNED) {
            float *p = s->xn; // scratch row
            size_t prow = attn_type_row_bytes(m->pos_embd.type, D);
            attn_k->dequant_row((const uint8_t *)m->pos_embd.data + prow * (s->pos + i), m->pos_embd.type, p, D);
            attn_k->add(x, p, D);
        }
    }
}

// q, k = xn W^T (+b) into s->qkv (n, qd | kvd | kvd); QK-norm; RoPE; K, V
// appended to the cache of layer l (runs: row i is position pos + i % (n / runs)).
static void qkv_forward(attn_session *s, int l, const float *in, int n) {
    const attn_config *c = &s->m->cfg;
    const attn_layer *ly = &s->m->layers[l]; // (made by layer_forward)
    int D = c->n_embd, hd = c->head_dim, qd = c->n_head * hd, kvd = c->n_head_kv * hd, qkv_w = qd + 2 * kvd;
    if (c->fused_qkv) matmul(s, in, D, &ly->wqkv, &ly->bqkv, s->qkv, qkv_w, n);
    else {
        matmul_group g = { 0 };
        group_add(s, &g, in, D, &ly->wq, &ly->bq, s->qkv, qkv_w, n);
        group_add(s, &g, in, D, &ly->wk, &ly->bk, s->qkv + qd, qkv_w, n);
        group_add(s, &g, in, D, &ly->wv, &ly->bv, s->qkv + qd + kvd, qkv_w, n);
        group_run(s, &g);
    }
    float *kc = s->k_cache + (size_t)l * s->kv_rows * kvd, *vc = s->v_cache + (size_t)l * s->kv_rows * kvd;
    int p = n / s->runs;
    for (int i = 0; i < n; i++) {
        float *q = s->qkv + (size_t)i * qkv_w, *k = q + qd;
        if (c->qk_norm) { // OLMo-2: over all heads at once
            attn_k->rmsnorm(q, q, ly->q_norm.data, qd, c->norm_eps);
            attn_k->rmsnorm(k, k, ly->k_norm.data, kvd, c->norm_eps);
        }
        if (c->pos == ATTN_POS_ROPE_PAIRS || c->pos == ATTN_POS_ROPE_HALVES) {
            int halves = c->pos == ATTN_POS_ROPE_HALVES;
            attn_k->rope(q, c->n_head, hd, c->rope_dims, s->pos + i % p, s->freqs, halves);
            attn_k->rope(k, c->n_head_kv, hd, c->rope_dims, s->pos + i % p, s->freqs, halves);
        }
        memcpy(kc + (size_t)(s->pos + i) * kvd, k, (size_t)kvd * 4);
        memcpy(vc + (size_t)(s->pos + i) * kvd, k + kvd, (size_t)kvd * 4);
    }
}

// The MLP's activation on rows r0..r1-1 of ff1 (row stride lda; gated kinds
// take the up half from ff2, fused SwiGLU from the right half of ff1).
typedef struct { const attn_session *s; int lda; } act_job;
static void act_part(void *ctx, int r0, int r1) {
    const act_job *j = ctx;
    const attn_config *c = &j->s->m->cfg;
    int F = c->n_ff;
    for (int i = r0; i < r1; i++) {
        float *g = j->s->ff1 + (size_t)i * j->lda;
        const float *u = c->mlp == ATTN_MLP_SWIGLU_FUSED ? g + F : j->s->ff2 + (size_t)i * F;
        if (c->mlp == ATTN_MLP_SWIGLU || c->mlp == ATTN_MLP_SWIGLU_FUSED) attn_k->swiglu(g, u, F);
        else if (c->mlp == ATTN_MLP_GELU_ERF) attn_k->gelu_erf(g, F);
        else attn_k->gelu_tanh(g, F);
        if (c->mlp == ATTN_MLP_GEGLU)
            for (int k = 0; k < F; k++) g[k] *= u[k];
    }
}

static void activation(attn_session *s, int lda, int n) {
    act_job j = { s, lda };
    rows_run(s, n, s->m->cfg.n_ff, act_part, &j);
}

// s->ff2 (n, D) = down(act(up(in))) for the layer's MLP kind.
static void mlp_forward(attn_session *s, const attn_layer *ly, const float *in, int n) {
    const attn_config *c = &s->m->cfg;
    int D = c->n_embd, F = c->n_ff, lda = F;
    if (c->mlp == ATTN_MLP_SWIGLU || c->mlp == ATTN_MLP_GEGLU) {
        matmul_group g = { 0 };
        group_add(s, &g, in, D, &ly->w_gate, NULL, s->ff1, F, n);
        group_add(s, &g, in, D, &ly->w_up, &ly->b_up, s->ff2, F, n);
        group_run(s, &g);
    } else if (c->mlp == ATTN_MLP_SWIGLU_FUSED) { // rows [gate | up], the product left in the gate half
        lda = 2 * F;
        matmul(s, in, D, &ly->w_up, &ly->b_up, s->ff1, lda, n);
    } else matmul(s, in, D, &ly->w_up, &ly->b_up, s->ff1, F, n);
    activation(s, lda, n);
    matmul(s, s->ff1, lda, &ly->w_down, &ly->b_down, s->ff2, D, n);
}

typedef struct { float *x; const float *y; int D; } add_job;
static void add_part(void *ctx, int r0, int r1) {
    const add_job *j = ctx;
    for (int i = r0; i < r1; i++) attn_k->add(j->x + (size_t)i * j->D, j->y + (size_t)i * j->D, j->D);
}

// x += y, n rows of D
static void add_rows(const attn_session *s, float *x, const float *y, int n, int D) {
    add_job j = { x, y, D };
    rows_run(s, n, D, add_part, &j);
}

// caps: the captures of the session's runs (s->runs of them), or NULL.
// Whether one of them has the callback `what` (layer l for those filtered by layer).
enum { WANT_ATTN, WANT_ACT };
static int caps_want(const attn_session *s, const attn_capture *caps, int what, int l) {
    for (int b = 0; caps && b < s->runs; b++) {
        const attn_capture *c = &caps[b];
        int in_l = !c->layers || c->layers[l];
        if (what == WANT_ATTN ? c->on_attn && in_l : c->on_act != NULL) return 1;
    }
    return 0;
}

// Each run's on_act on its rows of x (n rows of width floats in all).
static void act_each(const attn_session *s, const attn_capture *caps, int kind, int l, int n, float *x, int width) {
    int p = n / s->runs;
    for (int b = 0; caps && b < s->runs; b++)
        if (caps[b].on_act) caps[b].on_act(caps[b].ctx, kind, l, s->pos, p, x + (size_t)b * p * width);
}

// Each run's on_qk of layer l: its queries and its keys.
static void qk_each(const attn_session *s, const attn_capture *caps, int l, int n) {
    const attn_config *c = &s->m->cfg;
    int qd = c->n_head * c->head_dim, kvd = c->n_head_kv * c->head_dim, p = n / s->runs;
    for (int b = 0; caps && b < s->runs; b++)
        if (caps[b].on_qk && (!caps[b].layers || caps[b].layers[l]))
            caps[b].on_qk(caps[b].ctx, l, s->pos, p, s->pos + p, s->qkv + (size_t)b * p * (qd + 2 * kvd), qd + 2 * kvd,
                          s->k_cache + ((size_t)l * s->kv_rows + (size_t)b * p) * kvd, kvd);
}

// A layer's attention probabilities (s->probs) to each run's on_attn.
typedef struct { const attn_session *s; const attn_capture *caps; int l, n; } layer_cap;

static void layer_on_attn(void *ctx) {
    const layer_cap *lc = ctx;
    const attn_session *s = lc->s;
    int H = s->m->cfg.n_head, p = lc->n / s->runs, nk = s->pos + p;
    for (int b = 0; b < s->runs; b++) {
        const attn_capture *cap = &lc->caps[b];
        if (!cap->on_attn || (cap->layers && !cap->layers[lc->l])) continue;
        for (int h = 0; h < H; h++)
            if (!cap->heads || cap->heads[h])
                cap->on_attn(cap->ctx, lc->l, h, s->pos, p, nk, s->probs + (size_t)(b * H + h) * p * nk);
    }
}

// Layer l on the n rows in s->x (s->runs runs of n / runs rows); caps as caps_want's.
static void layer_forward(attn_session *s, int l, int n, const attn_capture *caps) {
    const attn_model *m = s->m;
    const attn_config *c = &m->cfg;
    const attn_layer *ly = attn_model_layer(m, l, s->pool);
    static const attn_tensor none;
    int D = c->n_embd, qd = c->n_head * c->head_dim, kvd = c->n_head_kv * c->head_dim;
    act_each(s, caps, ATTN_ACT_RESID_PRE, l, n, s->x, D);

    // attention block: ao = attn(norm(x)) W_o^T (+b), normed again with post-norms
    const float *in = s->x;
    if (c->pre_norm) norm_rows(s, s->xn, s->x, &ly->attn_norm, &ly->attn_norm_b, n), in = s->xn;
    qkv_forward(s, l, in, n);
    qk_each(s, caps, l, n);
    int p = n / s->runs, items = s->runs * c->n_head;
    attn_job aj = { s, l, p, qd + 2 * kvd, attn_layer_window(c, l) };
    if (s->pool && (double)n * (s->pos + p) * qd >= PARALLEL_MIN_ATTN) attn_pool_run(s->pool, items, attention_item, &aj);
    else for (int i = 0; i < items; i++) attention_item(&aj, i);
    // The probabilities to on_attn. With no on_act to keep in order with it,
    // while the pool's other threads start on the output projection (which
    // reads s->att, not s->probs), so that the other cores do not wait on a
    // capture's writing: `attn run --export npy` of the cold-start shape
    // (tools/bench.sh), medians of 7 runs 108.0-108.5 -> 106.1-107.5 ms.
    layer_cap lc = { s, caps, l, n };
    int want = caps_want(s, caps, WANT_ATTN, l), beside = want && !caps_want(s, caps, WANT_ACT, l);
    if (want && !beside) layer_on_attn(&lc);
    act_each(s, caps, ATTN_ACT_Z, l, n, s->att, qd);
    matmul_group g = { .side = beside ? layer_on_attn : NULL, .side_ctx = &lc };
    group_add(s, &g, s->att, qd, &ly->wo, &ly->bo, s->ao, D, n);
    group_run(s, &g);
    if (c->post_norm) norm_rows(s, s->ao, s->ao, &ly->post_attn_norm, &none, n);
    if (c->parallel == ATTN_PAR_NONE) add_rows(s, s->x, s->ao, n, D);

    // MLP block: x += mlp(norm(x)) (parallel: of the layer's input, plus ao)
    if (c->parallel == ATTN_PAR_SHARED) in = s->xn; // the attention's normed input
    else if (c->pre_norm) norm_rows(s, s->xn, s->x, &ly->ffn_norm, &ly->ffn_norm_b, n), in = s->xn;
    else in = s->x;
    mlp_forward(s, ly, in, n);
    if (c->post_norm) norm_rows(s, s->ff2, s->ff2, &ly->post_ffn_norm, &none, n);
    act_each(s, caps, ATTN_ACT_MLP_OUT, l, n, s->ff2, D);
    if (c->parallel == ATTN_PAR_SHARED) add_rows(s, s->ao, s->ff2, n, D), add_rows(s, s->x, s->ao, n, D);
    else {
        add_rows(s, s->x, s->ff2, n, D);
        if (c->parallel == ATTN_PAR_TWO) add_rows(s, s->x, s->ao, n, D);
    }
}

// head_rows of a random model: its head made HEAD_CHUNK rows at a time (each
// logit the same bits as from the whole matrix: kernels.h's matmul).
static void rand_head_rows(const attn_session *s, const float *xn, float *logits, int rows, int pooled) {
    const attn_model *m = s->m;
    struct attn_lazy *z = m->lazy;
    int V = m->cfg.n_vocab, D = m->cfg.n_embd;
    const float *ob = m->output_b.data;
    pthread_mutex_lock(&z->mu); // (one head_buf)
    for (int v0 = 0; v0 < V; v0 += HEAD_CHUNK) {
        int nv = V - v0 < HEAD_CHUNK ? V - v0 : HEAD_CHUNK;
        attn_tensor w = { z->head_buf, ATTN_F32, nv, D }, b = { ob ? ob + v0 : NULL, ATTN_F32, 1, nv };
        normals_pool(pooled ? s->pool : NULL, z->seed, z->out_first + (uint64_t)v0 * D, (size_t)nv * D, INIT_STD, z->head_buf);
        if (pooled) matmul((attn_session *)s, xn, D, &w, &b, logits + v0, V, rows);
        else attn_k->matmul(xn, D, z->head_buf, ATTN_F32, b.data, logits + v0, V, 1, D, 0, nv);
    }
    pthread_mutex_unlock(&z->mu);
}

// logits (rows, V) of normed rows xn: the output head (+ bias), soft-capped.
// pooled = 0 from attn_unembed, which may itself run on the pool's threads.
static void head_rows(const attn_session *s, const float *xn, float *logits, int rows, int pooled) {
    const attn_model *m = s->m;
    int V = m->cfg.n_vocab;
    const float *b = m->output_b.data;
    if (!m->output.data) rand_head_rows(s, xn, logits, rows, pooled);
    else if (pooled) matmul((attn_session *)s, xn, m->cfg.n_embd, &m->output, &m->output_b, logits, V, rows);
    else attn_k->matmul(xn, m->cfg.n_embd, m->output.data, m->output.type, b, logits, V, 1, m->cfg.n_embd, 0, V);
    float cap = m->cfg.logit_softcap;
    if (cap > 0)
        for (size_t i = 0; i < (size_t)rows * V; i++) logits[i] = tanhf(logits[i] * (1.0f / cap)) * cap;
}

// ---- non-finite activations: where they first appeared in this process
static atomic_int nf_seen, nf_ready;
static char nf_where[96];

// 1 if one of the d floats of x is a NaN or an inf: all exponent bits set,
// so (bits & exponent) + 1 ulp of exponent reaches bit 31. Integer and/add/or
// in 8 lanes (vectorized at -O2), not a chain of float adds.
static int row_nonfinite(const float *x, int d) {
    uint32_t acc[8] = { 0 }, u[8];
    int j = 0;
    for (; j + 8 <= d; j += 8) {
        memcpy(u, x + j, sizeof u);
        for (int k = 0; k < 8; k++) acc[k] |= (u[k] & 0x7f800000u) + 0x00800000u;
    }
    for (; j < d; j++) {
        memcpy(u, x + j, 4);
        acc[0] |= (u[0] & 0x7f800000u) + 0x00800000u;
    }
    uint32_t all = 0;
    for (int k = 0; k < 8; k++) all |= acc[k];
    return all >> 31;
}

// The first of rows r0..r1-1 holding a NaN or inf, kept in first if lower.
typedef struct { const float *x; int d; atomic_int first; } finite_job;
static void finite_part(void *ctx, int r0, int r1) {
    finite_job *j = ctx;
    for (int i = r0; i < r1 && i < atomic_load_explicit(&j->first, memory_order_relaxed); i++) {
        if (!row_nonfinite(j->x + (size_t)i * j->d, j->d)) continue;
        int cur = atomic_load(&j->first);
        while (i < cur && !atomic_compare_exchange_weak(&j->first, &cur, i)) {}
        return;
    }
}

// Record the first row of x (n rows of d, s->runs runs of them) holding a NaN
// or inf: after the embeddings (layer -1), a layer, or in the logits (layer
// n_layer); row i of a run is position pos0 + i.
static void check_finite(const attn_session *s, const float *x, int n, int d, int layer, int pos0) {
    if (atomic_load_explicit(&nf_seen, memory_order_relaxed)) return;
    finite_job j = { x, d, n };
    rows_run(s, n, d, finite_part, &j);
    int i = atomic_load(&j.first), expect = 0, n_layer = s->m->cfg.n_layer;
    if (i >= n || !atomic_compare_exchange_strong(&nf_seen, &expect, 1)) return;
    i %= n / s->runs;
    if (layer < 0) snprintf(nf_where, sizeof nf_where, "the embeddings, position %d", pos0 + i);
    else if (layer < n_layer) snprintf(nf_where, sizeof nf_where, "the output of layer %d, position %d", layer, pos0 + i);
    else snprintf(nf_where, sizeof nf_where, "the logits, position %d", pos0 + i);
    atomic_store(&nf_ready, 1);
}

const char *attn_nonfinite(void) { return atomic_load(&nf_ready) ? nf_where : NULL; }

// Layers from..L-1 on the n rows in s->x (s->runs runs of p = n / runs rows,
// positions pos..pos+p-1), logits (last_only: each run's last row), pos += p.
// caps as caps_want's.
static void run_layers(attn_session *s, int from, int n, float *logits, int last_only, const attn_capture *caps) {
    const attn_model *m = s->m;
    const attn_config *c = &m->cfg;
    int D = c->n_embd, p = n / s->runs;
    for (int l = from; l < c->n_layer; l++) {
        layer_forward(s, l, n, caps);
        check_finite(s, s->x, n, D, l, s->pos);
        for (int b = 0; caps && b < s->runs; b++)
            if (caps[b].on_resid) caps[b].on_resid(caps[b].ctx, l, s->pos, p, s->x + (size_t)b * p * D);
    }
    if (logits) {
        int rows = last_only ? s->runs : n;
        if (!last_only) norm_rows(s, s->xn, s->x, &m->out_norm, &m->out_norm_b, n);
        else
            for (int b = 0; b < s->runs; b++)
                norm_rows(s, s->xn + (size_t)b * D, s->x + ((size_t)b * p + p - 1) * D, &m->out_norm, &m->out_norm_b, 1);
        head_rows(s, s->xn, logits, rows, 1);
        check_finite(s, logits, rows, c->n_vocab, c->n_layer, s->pos + (last_only ? p - 1 : 0));
    }
    s->pos += p;
}

int attn_session_feed(attn_session *s, const int32_t *ids, int n, float *logits, int last_only,
                      const attn_capture *cap) {
    const attn_model *m = s->m;
    const attn_config *c = &m->cfg;
    if (n < 1) return attn_err(ATTN_EINPUT, "no tokens to feed");
    if (n > s->max_t - s->pos)
        return attn_err(ATTN_EINPUT, "%d positions exceed the session's %d (model context %d)",
                        s->pos + n, s->max_t, c->n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->n_vocab)
            return attn_err(ATTN_EINPUT, "token id %d is out of range (vocabulary of %d)", ids[i], c->n_vocab);
    if (ensure_rows(s, n)) return ATTN_EFAIL;
    embed(s, ids, n);
    check_finite(s, s->x, n, c->n_embd, -1, s->pos);
    if (cap && cap->on_resid) cap->on_resid(cap->ctx, -1, s->pos, n, s->x);
    run_layers(s, 0, n, logits, last_only, cap);
    return 0;
}

int attn_session_refeed(attn_session *s, int from, const float *x, int n, float *logits, int last_only,
                        const attn_capture *cap) {
    const attn_config *c = &s->m->cfg;
    if (n < 1 || n > s->pos || n > s->cap_rows || from < 0 || from > c->n_layer)
        return attn_err(ATTN_EINPUT, "refeed of %d positions from layer %d: the session fed %d", n, from, s->pos);
    s->pos -= n;
    memcpy(s->x, x, (size_t)n * c->n_embd * sizeof(float));
    run_layers(s, from, n, logits, last_only, cap);
    return 0;
}

int attn_session_run_from(attn_session *s, int from, const float *x, int n, int runs, float *logits, int last_only,
                          const attn_capture *caps) {
    const attn_config *c = &s->m->cfg;
    if (n < 1 || n > s->max_t || runs < 1 || (size_t)n * runs > s->kv_rows || from < 0 || from > c->n_layer)
        return attn_err(ATTN_EINPUT, "%d runs of %d positions from layer %d: the session holds %zu rows, %d a run",
                        runs, n, from, s->kv_rows, s->max_t);
    if (ensure_rows(s, n * runs)) return ATTN_EFAIL;
    memcpy(s->x, x, (size_t)n * runs * c->n_embd * sizeof(float));
    s->pos = 0;
    s->runs = runs;
    run_layers(s, from, n * runs, logits, last_only, caps);
    s->runs = 1;
    s->pos = 0; // (the cache holds the runs' rows, not one sequence)
    return 0;
}

int attn_runs_per_pass(int n, int most) {
    int r = 512 / (n > 0 ? n : 1);
    return r > most ? (most > 1 ? most : 1) : r > 1 ? r : 1;
}

void attn_unembed(const attn_session *s, const float *x, float *logits) {
    const attn_model *m = s->m;
    int D = m->cfg.n_embd;
    float *xn = malloc((size_t)D * 4);
    if (!xn) return;
    norm_rows(s, xn, x, &m->out_norm, &m->out_norm_b, 1);
    head_rows(s, xn, logits, 1, 0);
    free(xn);
}

// attn_forward: scatter captured rows into a dense [L][H][T][T] array.
typedef struct { float *attn; int H, T; } dense_ctx;

static void dense_attn(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p) {
    dense_ctx *d = ctx;
    float *dst = d->attn + ((size_t)layer * d->H + head) * d->T * d->T;
    for (int i = 0; i < nq; i++) {
        memcpy(dst + (size_t)(q0 + i) * d->T, p + (size_t)i * nk, (size_t)nk * 4);
        memset(dst + (size_t)(q0 + i) * d->T + nk, 0, (size_t)(d->T - nk) * 4);
    }
}

int attn_forward(const attn_model *m, attn_pool *pool, const int32_t *ids, int T, float *logits, float *attn) {
    attn_session *s;
    int rc = attn_session_new(&s, m, T, pool);
    if (rc) return rc;
    dense_ctx d = { attn, m->cfg.n_head, T };
    attn_capture cap = { .on_attn = attn ? dense_attn : NULL, .ctx = &d };
    rc = attn_session_feed(s, ids, T, logits, 0, &cap);
    attn_session_free(s);
    return rc;
}
