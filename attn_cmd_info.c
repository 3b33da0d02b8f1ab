// attn_cmd_info.c - `attn info`: what a model is (architecture, switches,
// parameters, tensor types, tokenizer) and the SIMD path this machine uses.
#include "attn.h"
#include "attn_cli.h"
#include "simd/kernels.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

// ---------------------------------------------------------------- info

static const char *arch_name(attn_arch a) { return attn_arch_get(a)->gguf; }
static const char *norm_name(attn_norm n) { return n == ATTN_NORM_RMS ? "RMSNorm" : "LayerNorm"; }
static const char *pos_name(attn_pos p) {
    static const char *n[] = { "learned", "RoPE (interleaved pairs)", "RoPE (split halves)", "none" };
    return n[p];
}
static const char *mlp_name(attn_mlp m) {
    static const char *n[] = { "GELU (tanh)", "GELU (erf)", "SwiGLU", "GeGLU (tanh)", "SwiGLU (fused up)" };
    return n[m];
}
static const char *tok_name(attn_tok_kind k) {
    static const char *n[] = { "none (ids only)", "GPT-2 byte-level BPE", "SentencePiece BPE", "characters" };
    return n[k];
}

// The switches beyond norm/positions/MLP that are in force, comma-separated
// ("" when none): what the architecture row and the keys turned on.
static void extra_switches(const attn_model *m, char *buf, size_t n) {
    const attn_config *c = &m->cfg;
    const attn_layer *l0 = &m->layers[0];
    size_t k = 0;
    buf[0] = 0;
#define ADD(...) (k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s", k ? ", " : ""), \
                  k += (size_t)snprintf(buf + (k < n ? k : n), k < n ? n - k : 0, __VA_ARGS__))
    static const char *par[] = { "", "parallel attention+MLP (two norms)", "parallel attention+MLP (one norm)" };
    if (c->parallel) ADD("%s", par[c->parallel]);
    if (!c->pre_norm) ADD("no pre-norms");
    if (c->post_norm) ADD("post-norms");
    if (c->qk_norm) ADD("QK-norm");
    if ((l0->bq.data || l0->bqkv.data) && !l0->bo.data) ADD("QKV bias only");
    if (c->head_dim * c->n_head != c->n_embd) ADD("head size %d (not d_model/heads)", c->head_dim);
    if (c->embd_scale != 1.0f) ADD("embeddings x %g", c->embd_scale);
    if (c->attn_softcap > 0) ADD("attention soft-cap %g", c->attn_softcap);
    if (c->logit_softcap > 0) ADD("logit soft-cap %g", c->logit_softcap);
    if (c->swa_window > 0)
        ADD("sliding window %d keys (%s)", c->swa_window, c->swa_every == 1 ? "every layer" : "layers 0, 2, 4..");
    if (c->rope_scale != 1.0f) ADD("rope positions x %g", c->rope_scale);
    if (c->rope_freqs) ADD("rope_freqs.weight");
    if (m->output_b.data) ADD("output bias");
#undef ADD
    if (k >= n) buf[n - 1] = 0;
}

// "Q4_K x154 71%, Q6_K x25 18%, ...": tensor count and share of the tensor
// bytes of each type, largest share first (shares rounded to whole percent;
// "<1%" when under half a percent).
static void type_shares(const attn_gguf_file *f, char *out, size_t len) {
    uint64_t count[64] = { 0 }, bytes[64] = { 0 }, total = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        uint32_t t = f->tensors[i].type < 64 ? f->tensors[i].type : 63; // (types attn reads are < 64)
        count[t]++;
        bytes[t] += f->tensors[i].nbytes;
        total += f->tensors[i].nbytes;
    }
    out[0] = 0;
    for (;;) {
        int best = -1;
        for (int t = 0; t < 64; t++)
            if (count[t] && (best < 0 || bytes[t] > bytes[best])) best = t;
        if (best < 0) break;
        double pct = total ? 100.0 * (double)bytes[best] / (double)total : 0;
        size_t l = strlen(out);
        char share[16];
        if (pct < 0.5) snprintf(share, sizeof share, "<1%%");
        else snprintf(share, sizeof share, "%.0f%%", pct);
        snprintf(out + l, len - l, "%s%s x%llu %s", l ? ", " : "", attn_type_name((uint32_t)best),
                 (unsigned long long)count[best], share);
        count[best] = 0;
    }
}

static const char INFO_HELP[] =
    "usage: attn info [-m FILE.gguf] [--format table|json]\n\n"
    "Describes a model: architecture, the family it is, and the switches\n"
    "derived from its GGUF keys and tensors (norm, positions, MLP, heads, KV\n"
    "heads, tied head; then any of parallel blocks, post-norms, QK-norm,\n"
    "soft-caps, sliding window, rope scaling...), parameter count,\n"
    "tensor types (TYPE xCOUNT SHARE: tensors of that type and their share\n"
    "of the tensor bytes, largest first), tokenizer, training notes of the\n"
    "built-in model, and the SIMD path and thread count this machine uses.\n"
    "Without -m: the model built into the binary.\n";

// ---- options -> result -> print
typedef struct {
    cli_opts o;
    const char *fmt; // table or json
} info_opts;

typedef struct {
    attn_model *m;
    char types[512];  // tensor types and their shares (type_shares)
    char extra[512];  // switches beyond norm/positions/MLP (extra_switches)
    attn_gguf_str corpus, descr; // training notes ("" when absent)
    int64_t steps;    // -1 when absent
    float heldout;    // NAN when absent
    int threads;      // -t, else the online cores
} info_result;

static int info_parse(int argc, char **argv, info_opts *io) {
    if (cli_parse_opts(&io->o, argc, argv, NULL, io)) return CLI_PRINTED;
    return io->o.help ? 0 : cli_format(&io->o, "table,json", &io->fmt);
}

static int info_compute(const info_opts *io, info_result *r) {
    memset(r, 0, sizeof *r);
    int rc = cli_load_model(&io->o, 0, &r->m);
    if (rc) return rc;
    type_shares(&r->m->file, r->types, sizeof r->types);
    r->corpus = r->descr = (attn_gguf_str){ "", 0 };
    r->steps = -1;
    r->heldout = NAN;
    attn_gguf_get_str(&r->m->file, "attn.training.corpus", &r->corpus);
    attn_gguf_get_str(&r->m->file, "attn.training.description", &r->descr);
    attn_gguf_get_i64(&r->m->file, "attn.training.steps", &r->steps);
    attn_gguf_get_f32(&r->m->file, "attn.training.heldout_loss", &r->heldout);
    r->threads = io->o.threads ? io->o.threads : attn_online_cores();
    extra_switches(r->m, r->extra, sizeof r->extra);
    return 0;
}

// A record, not rows: the table is one "key value" line per field, JSON one object.
static int print_info(const info_result *r, const info_opts *io) {
    const char *fmt = io->fmt;
    const attn_config *c = &r->m->cfg;
    if (!strcmp(fmt, "json")) {
        cli_json_open_model(r->m->name);
        printf(", \"path\": ");
        attn_json_str(stdout, r->m->path);
        printf(", \"arch\": \"%s\", \"n_layer\": %d, \"n_embd\": %d, \"n_head\": %d, \"n_head_kv\": %d, "
               "\"head_dim\": %d, \"n_ff\": %d, \"n_vocab\": %d, \"n_ctx\": %d, \"norm\": \"%s\", \"norm_eps\": %g, "
               "\"positions\": \"%s\", \"rope_theta\": %g, \"rope_dims\": %d, \"mlp\": \"%s\", \"tied_head\": %s, "
               "\"fused_qkv\": %s, \"family\": \"%s\", \"switches\": \"%s\", \"n_params\": %lld, "
               "\"tensor_types\": \"%s\", \"tokenizer\": \"%s\", \"simd\": \"%s\", \"threads\": %d}\n",
               arch_name(c->arch), c->n_layer, c->n_embd, c->n_head, c->n_head_kv, c->head_dim, c->n_ff, c->n_vocab,
               c->n_ctx, norm_name(c->norm), c->norm_eps, pos_name(c->pos), c->rope_theta, c->rope_dims,
               mlp_name(c->mlp), attn_model_tied_head(r->m) ? "true" : "false", c->fused_qkv ? "true" : "false",
               attn_arch_get(c->arch)->models, r->extra, (long long)r->m->n_params, r->types,
               tok_name(attn_tokenizer_kind(r->m->tok)), attn_k->name, r->threads);
    } else {
        char path[1024], corp[512], note[1024];
        attn_escape(path, sizeof path, r->m->path, strlen(r->m->path));
        attn_escape(corp, sizeof corp, r->corpus.s, r->corpus.len);
        attn_escape(note, sizeof note, r->descr.s, r->descr.len);
        printf("model        %s (%s)\n", r->m->name, path);
        printf("architecture %s: %d layers, d_model %d, %d heads of %d dims, %d KV heads%s, MLP %d\n",
               arch_name(c->arch), c->n_layer, c->n_embd, c->n_head, c->head_dim, c->n_head_kv,
               c->n_head_kv < c->n_head ? " (grouped-query)" : "", c->n_ff);
        printf("switches     %s (eps %g), positions %s", norm_name(c->norm), c->norm_eps, pos_name(c->pos));
        if (c->pos == ATTN_POS_ROPE_PAIRS || c->pos == ATTN_POS_ROPE_HALVES)
            printf(" (theta %g, %d of %d dims)", c->rope_theta, c->rope_dims, c->head_dim);
        printf(", %s, %s Q/K/V, %s output head\n", mlp_name(c->mlp), c->fused_qkv ? "fused" : "separate",
               attn_model_tied_head(r->m) ? "tied" : "separate");
        if (r->extra[0]) printf("             %s\n", r->extra);
        printf("family       %s\n", attn_arch_get(c->arch)->models);
        printf("context      %d positions\n", c->n_ctx);
        printf("parameters   %lld (%.2f M)\n", (long long)r->m->n_params, r->m->n_params / 1e6);
        printf("tensors      %llu: %s\n", (unsigned long long)r->m->file.n_tensors, r->types);
        printf("tokenizer    %s, %d ids\n", tok_name(attn_tokenizer_kind(r->m->tok)), c->n_vocab);
        if (r->corpus.len) printf("trained on   %s\n", corp);
        if (r->steps >= 0) printf("train steps  %lld\n", (long long)r->steps);
        if (r->heldout == r->heldout) printf("held-out     %.3f nats/token\n", r->heldout);
        if (r->descr.len) printf("notes        %s\n", note);
        printf("simd         %s\n", attn_k->name);
        printf("threads      %d\n", r->threads);
    }
    return 0;
}

static void info_result_free(info_result *r) { attn_model_free(r->m); }

CLI_COMMAND(info, info, "model: arch, dims, parameters, tensor types, tokenizer, SIMD path", INFO_HELP);
