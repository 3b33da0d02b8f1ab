// attn.c - attn: look inside transformer language models on a CPU.
//
// Table of contents (the library is split by section into files beside this
// one; attn.c itself holds the CLI):
//   errors ............ attn_gguf.c   attn_err, attn_errmsg
//   GGUF reader ....... attn_gguf.c   gguf_open, typed getters, tensor directory
//   tokenizers ........ attn_tok.c    GPT-2 byte-level BPE, SentencePiece BPE, char; labels
//   model, forward .... attn_model.c  config switches, tensor views, random init, sessions/KV cache
//   threads ........... attn_pool.c   the pthread pool
//   kernels ........... simd/         scalar reference, AVX2, AVX-512, NEON, chosen at start-up
//   capture ........... attn_model.c  attn_capture callbacks (attention rows, residual rows)
//   analysis .......... attn_analysis.c  head-type scores, baselines, induction test, logit lens
//   rendering ......... attn_render.c heatmaps, grids, colormaps, font, SVG, terminal
//   writers ........... attn_write.c  atomic files, .npy, JSON; attn_report.c: the HTML report
//   built-in model .... attn_builtin.c
//   CLI ............... attn.c (this file: main, shared helpers, info, run)
//                       attn_cmd_*.c (tokenize, maps, trace, compare, heads, report, bench)
#include "attn.h"
#include "attn_cli.h"
#include "simd/kernels.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// ---------------------------------------------------------------- CLI helpers

void cli_opts_init(cli_opts *o) { memset(o, 0, sizeof *o); }

void cli_error(const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fputs("attn: ", stderr);
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p == '\n') fputs("\\n", stderr);
        else if (*p == '\t') fputs("\\t", stderr);
        else if (*p < 0x20 || *p == 0x7f) fprintf(stderr, "\\x%02x", *p);
        else fputc(*p, stderr);
    }
    fputc('\n', stderr);
}

int cli_fail_rc(int rc) {
    cli_error("%s", attn_errmsg());
    return rc == ATTN_EFAIL ? 1 : 2;
}

int cli_bad_opt(const char *cmd, const char *opt) {
    cli_error("%s: unknown option '%s' (see attn %s --help)", cmd, opt, cmd);
    return 2;
}

const char *cli_val(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_error("option '%s' needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_int(const char *opt, const char *val, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi) {
        cli_error("%s: '%s' is not an integer in [%ld, %ld]", opt, val, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_common_opt(cli_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    long n;
#define VAL() do { if (!(v = cli_val(argc, argv, i))) return -1; } while (0)
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { o->help = 1; return 1; }
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        VAL();
        if (o->n_models == CLI_MAX_MODELS) {
            fprintf(stderr, "attn: at most %d models\n", CLI_MAX_MODELS);
            return -1;
        }
        o->models[o->n_models++] = v;
        return 1;
    }
    if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { VAL(); o->prompt = v; return 1; }
    if (!strcmp(a, "-f") || !strcmp(a, "--file")) { VAL(); o->prompt_file = v; return 1; }
    if (!strcmp(a, "--ids")) { VAL(); o->ids = v; return 1; }
    if (!strcmp(a, "--no-bos")) { o->no_bos = 1; return 1; }
    if (!strcmp(a, "-o") || !strcmp(a, "--out")) { VAL(); o->out_dir = v; return 1; }
    if (!strcmp(a, "--format")) { VAL(); o->format = v; return 1; }
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        VAL();
        if (cli_int(a, v, 1, 1024, &n)) return -1;
        o->threads = (int)n;
        return 1;
    }
#undef VAL
    return 0;
}

int cli_format(const cli_opts *o, const char *allowed, const char **fmt) {
    const char *f = o->format ? o->format : "table";
    size_t n = strlen(f);
    for (const char *p = allowed; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, f, n)) { *fmt = f; return 0; }
        p += l + (e ? 1 : 0);
    }
    return attn_err(ATTN_EINPUT, "--format %s: expected one of %s", f, allowed);
}

int cli_load_model(const cli_opts *o, int k, attn_model **out) {
    if (k < o->n_models) return attn_model_load(out, o->models[k]);
    size_t n;
    const void *data = attn_builtin_data(&n);
    if (!data) return attn_err(ATTN_EINPUT, "no model: this build has no built-in model; give one with -m FILE.gguf");
    return attn_model_load_mem(out, data, n, "built-in");
}

// Whole file (or stdin for "-") into a malloc'ed NUL-terminated buffer. A
// prompt stops at PROMPT_MAX bytes: no model's context holds more (and an
// endless input such as /dev/zero must not take all memory).
#define PROMPT_MAX ((size_t)256 << 20)
static int read_all(const char *path, char **buf, size_t *len) {
    FILE *fp = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!fp) return attn_err(ATTN_EINPUT, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n - 1, fp)) > 0;) {
        n += r;
        if (n > PROMPT_MAX) {
            free(b);
            if (fp != stdin) fclose(fp);
            return attn_err(ATTN_EINPUT, "%s: a prompt of more than %zu MB is longer than any model's context",
                            path, PROMPT_MAX >> 20);
        }
        if (cap - n - 1 == 0) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) { free(b); b = NULL; }
            b = nb;
        }
    }
    int bad = ferror(fp);
    if (fp != stdin) fclose(fp);
    if (!b) return attn_err(ATTN_EFAIL, "%s: out of memory", path);
    if (bad) { free(b); return attn_err(ATTN_EINPUT, "%s: read error: %s", path, strerror(errno)); }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

static int parse_ids(const char *s, int32_t **ids, int *n) {
    int cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return attn_err(ATTN_EFAIL, "out of memory");
    for (const char *p = s; *p;) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX) {
            free(v);
            return attn_err(ATTN_EINPUT, "--ids: '%s' is not a comma-separated list of token ids", s);
        }
        if (k == cap) {
            int32_t *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) { free(v); return attn_err(ATTN_EFAIL, "out of memory"); }
            v = nv;
        }
        v[k++] = (int32_t)x;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    *ids = v;
    *n = k;
    return 0;
}

int cli_prompt_ids(const cli_opts *o, const attn_model *m, int32_t **ids, int *n) {
    int given = !!o->prompt + !!o->prompt_file + !!o->ids, rc;
    *ids = NULL;
    if (given != 1)
        return attn_err(ATTN_EINPUT, given ? "give only one of -p TEXT, -f FILE, --ids 1,2,3" : "no prompt: give -p TEXT, -f FILE or --ids 1,2,3");
    if (o->ids) rc = parse_ids(o->ids, ids, n);
    else {
        if (attn_tokenizer_kind(m->tok) == ATTN_TOK_NONE)
            return attn_err(ATTN_EINPUT, "%s has no tokenizer (ids-only model): give the prompt as --ids 1,2,3", m->name);
        char *text = (char *)o->prompt;
        size_t len = text ? strlen(text) : 0;
        if (o->prompt_file) {
            if ((rc = read_all(o->prompt_file, &text, &len))) return rc;
            if (len && text[len - 1] == '\n') len--; // a file's final newline is not part of the prompt
        }
        rc = attn_tokenize(m->tok, text, len, !o->no_bos, ids, n);
        if (o->prompt_file) free(text);
    }
    if (rc) return rc;
    if (*n == 0) rc = attn_err(ATTN_EINPUT, "the prompt is empty");
    else if (*n > m->cfg.n_ctx)
        rc = attn_err(ATTN_EINPUT, "the prompt is %d tokens, longer than the model's context of %d", *n, m->cfg.n_ctx);
    for (int i = 0; !rc && i < *n; i++)
        if ((*ids)[i] < 0 || (*ids)[i] >= m->cfg.n_vocab)
            rc = attn_err(ATTN_EINPUT, "token id %d is out of range (the vocabulary has %d ids: 0..%d)",
                          (*ids)[i], m->cfg.n_vocab, m->cfg.n_vocab - 1);
    if (rc) { free(*ids); *ids = NULL; }
    return rc;
}

int cli_pool(const cli_opts *o, attn_pool **out) { return attn_pool_new(out, o->threads); }

int cli_out_dir(const cli_opts *o, const char *dflt, char *dir, size_t n) {
    const char *d = o->out_dir ? o->out_dir : dflt;
    if (!d) return attn_err(ATTN_EINPUT, "no output directory: give -o DIR");
    if (strlen(d) >= n) return attn_err(ATTN_EINPUT, "%s: path too long", d);
    snprintf(dir, n, "%s", d);
    return attn_mkdirs(dir);
}

void cli_progress(const char *what, long done, long total) {
    static time_t start;
    static int shown;
    static int enabled = -1;
    if (enabled < 0) {
        const char *e = getenv("ATTN_PROGRESS");
        enabled = e ? atoi(e) != 0 : isatty(2);
    }
    if (!enabled) return;
    time_t now = time(NULL);
    if (done == 0) { start = now; shown = 0; }
    if (now - start < 1 && done < total) return;
    if (done >= total) {
        if (shown) fprintf(stderr, "\r%s: %ld/%ld done\n", what, done, total);
        return;
    }
    shown = 1;
    fprintf(stderr, "\r%s: %ld/%ld", what, done, total);
}

// ---------------------------------------------------------------- info

static const char *arch_name(attn_arch a) { return a == ATTN_ARCH_LLAMA ? "llama" : "gpt2"; }
static const char *norm_name(attn_norm n) { return n == ATTN_NORM_RMS ? "RMSNorm" : "LayerNorm"; }
static const char *pos_name(attn_pos p) {
    static const char *n[] = { "learned", "RoPE (interleaved pairs)", "RoPE (split halves)", "none" };
    return n[p];
}
static const char *mlp_name(attn_mlp m) {
    static const char *n[] = { "GELU (tanh)", "GELU (erf)", "SwiGLU" };
    return n[m];
}
static const char *tok_name(attn_tok_kind k) {
    static const char *n[] = { "none (ids only)", "GPT-2 byte-level BPE", "SentencePiece BPE", "characters" };
    return n[k];
}

static int cmd_info(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r == 0) return cli_bad_opt("info", argv[i]);
    }
    if (o.help) {
        puts("usage: attn info [-m FILE.gguf] [--format table|json]\n\n"
             "Describes a model: architecture and the switches derived from its GGUF\n"
             "keys (norm, positions, MLP, heads, KV heads, tied head), parameter count,\n"
             "tensor types, tokenizer, training notes of the built-in model, and the\n"
             "SIMD path and thread count this machine uses.\n"
             "Without -m: the model built into the binary.");
        return 0;
    }
    const char *fmt;
    attn_model *m;
    if (cli_format(&o, "table,json", &fmt) || cli_load_model(&o, 0, &m)) return cli_fail();
    const attn_config *c = &m->cfg;
    // tensor types by count
    uint64_t by_type[31] = { 0 };
    for (uint64_t i = 0; i < m->file.n_tensors; i++) by_type[m->file.tensors[i].type]++;
    char types[128] = "";
    for (int t = 0; t < 31; t++)
        if (by_type[t]) {
            size_t l = strlen(types);
            snprintf(types + l, sizeof types - l, "%s%s x%llu", l ? ", " : "", attn_type_name(t), (unsigned long long)by_type[t]);
        }
    gguf_str corpus = { "", 0 }, descr = { "", 0 };
    int64_t steps = -1;
    float heldout = NAN;
    gguf_get_str(&m->file, "attn.training.corpus", &corpus);
    gguf_get_str(&m->file, "attn.training.description", &descr);
    gguf_get_i64(&m->file, "attn.training.steps", &steps);
    gguf_get_f32(&m->file, "attn.training.heldout_loss", &heldout);
    int threads = o.threads ? o.threads : attn_online_cores();
    if (!strcmp(fmt, "json")) {
        printf("{\"model\": ");
        attn_json_str(stdout, m->name);
        printf(", \"path\": ");
        attn_json_str(stdout, m->path);
        printf(", \"arch\": \"%s\", \"n_layer\": %d, \"n_embd\": %d, \"n_head\": %d, \"n_head_kv\": %d, "
               "\"head_dim\": %d, \"n_ff\": %d, \"n_vocab\": %d, \"n_ctx\": %d, \"norm\": \"%s\", \"norm_eps\": %g, "
               "\"positions\": \"%s\", \"rope_theta\": %g, \"rope_dims\": %d, \"mlp\": \"%s\", \"tied_head\": %s, "
               "\"fused_qkv\": %s, \"n_params\": %lld, \"tensor_types\": \"%s\", \"tokenizer\": \"%s\", "
               "\"simd\": \"%s\", \"threads\": %d}\n",
               arch_name(c->arch), c->n_layer, c->n_embd, c->n_head, c->n_head_kv, c->head_dim, c->n_ff, c->n_vocab,
               c->n_ctx, norm_name(c->norm), c->norm_eps, pos_name(c->pos), c->rope_theta, c->rope_dims,
               mlp_name(c->mlp), c->tied_head ? "true" : "false", c->fused_qkv ? "true" : "false",
               (long long)m->n_params, types, tok_name(attn_tokenizer_kind(m->tok)), attn_k->name, threads);
    } else {
        printf("model        %s (%s)\n", m->name, m->path);
        printf("architecture %s: %d layers, d_model %d, %d heads of %d dims, %d KV heads%s, MLP %d\n",
               arch_name(c->arch), c->n_layer, c->n_embd, c->n_head, c->head_dim, c->n_head_kv,
               c->n_head_kv < c->n_head ? " (grouped-query)" : "", c->n_ff);
        printf("switches     %s (eps %g), positions %s", norm_name(c->norm), c->norm_eps, pos_name(c->pos));
        if (c->pos == ATTN_POS_ROPE_PAIRS || c->pos == ATTN_POS_ROPE_HALVES)
            printf(" (theta %g, %d of %d dims)", c->rope_theta, c->rope_dims, c->head_dim);
        printf(", %s, %s Q/K/V, %s output head\n", mlp_name(c->mlp), c->fused_qkv ? "fused" : "separate",
               c->tied_head ? "tied" : "separate");
        printf("context      %d positions\n", c->n_ctx);
        printf("parameters   %lld (%.2f M)\n", (long long)m->n_params, m->n_params / 1e6);
        printf("tensors      %llu: %s\n", (unsigned long long)m->file.n_tensors, types);
        printf("tokenizer    %s, %d ids\n", tok_name(attn_tokenizer_kind(m->tok)), c->n_vocab);
        if (corpus.len) printf("trained on   %.*s\n", (int)corpus.len, corpus.s);
        if (steps >= 0) printf("train steps  %lld\n", (long long)steps);
        if (heldout == heldout) printf("held-out     %.3f nats/token\n", heldout);
        if (descr.len) printf("notes        %.*s\n", (int)descr.len, descr.s);
        printf("simd         %s\n", attn_k->name);
        printf("threads      %d\n", threads);
    }
    attn_model_free(m);
    return 0;
}

// ---------------------------------------------------------------- run

// Streams the captured attention of a full forward into attention.npy and
// keeps, for --per-token, each head's three most-attended earlier keys.
typedef struct {
    attn_outfile npy;
    int export_attn, write_err;
    int T, H;
    int32_t *top3; // (L, H, T, 3) key indices (-1: fewer keys), or NULL
    float *top3p;
    attn_lens *lens; // --lens, or NULL
} run_ctx;

static void run_on_resid(void *ctx, int layer, int q0, int nq, const float *x) {
    attn_lens_on_resid(((run_ctx *)ctx)->lens, layer, q0, nq, x);
}

static void run_on_attn(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p) {
    run_ctx *r = ctx;
    (void)q0;
    if (r->export_attn && !r->write_err && fwrite(p, sizeof(float), (size_t)nq * nk, r->npy.fp) != (size_t)nq * nk)
        r->write_err = errno ? errno : EIO;
    if (r->top3)
        for (int i = 0; i < nq; i++) {
            size_t o = (((size_t)layer * r->H + head) * r->T + i) * 3;
            int keys = i + 1 < 3 ? i + 1 : 3;
            attn_top_k(p + (size_t)i * nk, i + 1, keys, r->top3 + o, r->top3p + o);
            for (int j = keys; j < 3; j++) r->top3[o + j] = -1;
        }
}

static int write_tokens_json(const char *path, const attn_model *m, const int32_t *ids, char **labels, int T) {
    attn_outfile o;
    int rc = attn_out_open(&o, path);
    if (rc) return rc;
    fprintf(o.fp, "{\"model\": ");
    attn_json_str(o.fp, m->name);
    fprintf(o.fp, ", \"ids\": [");
    for (int i = 0; i < T; i++) fprintf(o.fp, "%s%d", i ? ", " : "", ids[i]);
    fprintf(o.fp, "], \"labels\": [");
    for (int i = 0; i < T; i++) {
        if (i) fprintf(o.fp, ", ");
        attn_json_str(o.fp, labels[i]);
    }
    fprintf(o.fp, "], \"pieces\": [");
    for (int i = 0; i < T; i++) {
        gguf_str p = attn_token_piece(m->tok, ids[i]);
        char buf[256];
        snprintf(buf, sizeof buf, "%.*s", (int)(p.len > 255 ? 255 : p.len), p.s ? p.s : "");
        if (i) fprintf(o.fp, ", ");
        attn_json_str(o.fp, buf);
    }
    fprintf(o.fp, "], \"n_layer\": %d, \"n_head\": %d, \"n_vocab\": %d}\n", m->cfg.n_layer, m->cfg.n_head, m->cfg.n_vocab);
    return attn_out_close(&o);
}

// The logit lens table: per position, per layer the top tokens of the
// residual stream and the probability of the token the model finally picks.
static int print_lens(const attn_lens *l, const attn_model *m, char **labels, const char *fmt) {
    int json = !strcmp(fmt, "json"), tsv = !strcmp(fmt, "tsv"), k = l->k;
    char **cand;
    if (json) printf(", \"lens\": [");
    else if (tsv) printf("position\ttoken\tlayer\tfinal_prob\trank\tid\tcandidate\tprob\n");
    else printf("\nlogit lens: the residual stream after each layer through the final norm and\n"
                "unembedding; P(final) = probability of the token the model finally ranks first\n");
    for (int t = 0; t < l->T; t++) {
        if (json) printf("%s{\"position\": %d, \"final_id\": %d, \"layers\": [", t ? ", " : "", t, l->final_id[t]);
        else if (!tsv) {
            char **fin;
            if (attn_token_labels(m->tok, &l->final_id[t], 1, &fin)) return ATTN_EFAIL;
            printf("\nposition %d \"%s\" -> final \"%s\"\n  %-6s %8s  top tokens (probability)\n", t, labels[t], fin[0], "layer", "P(final)");
            attn_labels_free(fin, 1);
        }
        for (int r = 0; r <= l->n_layer; r++) {
            size_t b = ((size_t)r * l->T + t) * k;
            float pf = l->final_prob[(size_t)r * l->T + t];
            if (attn_token_labels(m->tok, l->top_id + b, k, &cand)) return ATTN_EFAIL;
            char lname[16];
            if (r == 0) snprintf(lname, sizeof lname, "emb");
            else snprintf(lname, sizeof lname, "L%d", r - 1);
            if (json) {
                printf("%s{\"layer\": %d, \"final_prob\": %.6g, \"top\": [", r ? ", " : "", r - 1, pf);
                for (int j = 0; j < k; j++) {
                    printf("%s{\"id\": %d, \"text\": ", j ? ", " : "", l->top_id[b + j]);
                    attn_json_str(stdout, cand[j]);
                    printf(", \"prob\": %.6g}", l->top_prob[b + j]);
                }
                printf("]}");
            } else if (tsv) {
                for (int j = 0; j < k; j++)
                    printf("%d\t%s\t%d\t%.6g\t%d\t%d\t%s\t%.6g\n", t, labels[t], r - 1, pf, j + 1, l->top_id[b + j], cand[j], l->top_prob[b + j]);
            } else {
                printf("  %-6s %8.4f ", lname, pf);
                for (int j = 0; j < k; j++) printf(" \"%s\" (%.3f)", cand[j], l->top_prob[b + j]);
                printf("\n");
            }
            attn_labels_free(cand, k);
        }
        if (json) printf("]}");
    }
    if (json) printf("]");
    return 0;
}

static const char *RUN_HELP =
    "usage: attn run [-m FILE] (-p TEXT | -f FILE | --ids 1,2,3) [-k N] [--per-token] [--lens]\n"
    "                [--export npy,json -o DIR] [--format table|tsv|json] [-t N]\n\n"
    "One forward pass. Prints the top-k next-token table for the last position:\n"
    "rank, id, token (display label, quoted), probability (softmax of the logits,\n"
    "0..1) and raw logit.\n"
    "  -k N           candidates per position (default 10)\n"
    "  --per-token    the table for every position, and for each layer and head\n"
    "                 the three earlier tokens it attends to most (attention\n"
    "                 probability in parentheses, 0..1)\n"
    "  --export LIST  npy: DIR/attention.npy (float32 [L,H,T,T], row = query\n"
    "                 position, column = key position, rows sum to 1, zero above\n"
    "                 the diagonal) and DIR/logits.npy (float32 [T,V]);\n"
    "                 json: DIR/tokens.json (ids, display labels, raw pieces)\n"
    "  --lens         logit lens: for every position and layer (emb = the\n"
    "                 embeddings), the top-3 tokens of the residual stream after\n"
    "                 that layer through the final norm and unembedding, and\n"
    "                 P(final) = the probability there of the token the model\n"
    "                 finally ranks first (0..1); with -o DIR also DIR/lens.png,\n"
    "                 a heatmap of P(final), layers x positions, fixed 0..1\n"
    "  --no-bos       do not add the BOS token the model would add\n"
    "Display labels: a space is shown as '·', newline as '\\n', tab as '\\t'.\n";

static int cmd_run(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    long k = 10;
    int per_token = 0, exp_npy = 0, exp_json = 0, lens = 0, exp_lens_png = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *v;
        if (!strcmp(argv[i], "-k")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_int("-k", v, 1, 1000, &k)) return 2;
        } else if (!strcmp(argv[i], "--per-token")) per_token = 1;
        else if (!strcmp(argv[i], "--lens")) lens = 1;
        else if (!strcmp(argv[i], "--export")) {
            if (!(v = cli_val(argc, argv, &i))) return 2;
            for (const char *p = v; *p;) {
                size_t l = strcspn(p, ",");
                if (l == 3 && !strncmp(p, "npy", 3)) exp_npy = 1;
                else if (l == 4 && !strncmp(p, "json", 4)) exp_json = 1;
                else {
                    cli_error("--export: unknown kind '%.*s' (npy, json)", (int)l, p);
                    return 2;
                }
                p += l + (p[l] == ',');
            }
        } else return cli_bad_opt("run", argv[i]);
    }
    if (o.help) { fputs(RUN_HELP, stdout); return 0; }
    const char *fmt;
    if (cli_format(&o, "table,tsv,json", &fmt)) return cli_fail();
    if (lens && o.out_dir) exp_lens_png = 1;
    if ((exp_npy || exp_json) && !o.out_dir) {
        fprintf(stderr, "attn: run: --export needs -o DIR\n");
        return 2;
    }
    attn_model *m = NULL;
    attn_pool *pool = NULL;
    int32_t *ids = NULL;
    char **labels = NULL;
    float *logits = NULL, *topv = NULL;
    double *probs = NULL;
    run_ctx rc_ = { 0 };
    int rc = cli_load_model(&o, 0, &m);
    int T = 0;
    if (!rc) rc = cli_prompt_ids(&o, m, &ids, &T);
    if (!rc) rc = cli_pool(&o, &pool);
    if (!rc) rc = attn_token_labels(m->tok, ids, T, &labels);
    char dir[1024] = "", path[1100];
    if (!rc && (exp_npy || exp_json || exp_lens_png)) rc = cli_out_dir(&o, NULL, dir, sizeof dir);
    if (rc) goto done;
    const attn_config *c = &m->cfg;
    int V = c->n_vocab;
    logits = malloc((size_t)T * V * sizeof(float));
    probs = malloc((size_t)V * sizeof *probs);
    topv = malloc((size_t)k * sizeof *topv);
    if (!logits || !probs || !topv) { rc = attn_err(ATTN_EFAIL, "out of memory for %d x %d logits", T, V); goto done; }
    rc_.T = T;
    rc_.H = c->n_head;
    if (per_token) {
        size_t n = (size_t)c->n_layer * c->n_head * T * 3;
        rc_.top3 = malloc(n * sizeof(int32_t));
        rc_.top3p = malloc(n * sizeof(float));
        if (!rc_.top3 || !rc_.top3p) { rc = attn_err(ATTN_EFAIL, "out of memory"); goto done; }
    }
    if (exp_npy) {
        int64_t dims[4] = { c->n_layer, c->n_head, T, T };
        snprintf(path, sizeof path, "%s/attention.npy", dir);
        if ((rc = attn_npy_open(&rc_.npy, path, dims, 4))) goto done;
        rc_.export_attn = 1;
    }
    if (lens && (rc = attn_lens_new(&rc_.lens, m, T, 3))) goto done;
    attn_session *s;
    if ((rc = attn_session_new(&s, m, T, pool))) goto done;
    attn_capture cap = { .on_attn = (exp_npy || per_token) ? run_on_attn : NULL,
                         .on_resid = lens ? run_on_resid : NULL, .ctx = &rc_ };
    rc = attn_session_feed(s, ids, T, logits, 0, &cap);
    if (!rc && lens) rc = attn_lens_compute(rc_.lens, s, pool);
    attn_session_free(s);
    if (rc) goto done;
    if (exp_npy) {
        if (rc_.write_err) {
            attn_out_abort(&rc_.npy);
            rc = attn_err(ATTN_EFAIL, "%s: write failed: %s", path, strerror(rc_.write_err));
            goto done;
        }
        rc_.export_attn = 0;
        if ((rc = attn_out_close(&rc_.npy))) goto done;
        int64_t dims[2] = { T, V };
        snprintf(path, sizeof path, "%s/logits.npy", dir);
        if ((rc = attn_write_npy_f32(path, logits, dims, 2))) goto done;
    }
    if (exp_json) {
        snprintf(path, sizeof path, "%s/tokens.json", dir);
        if ((rc = write_tokens_json(path, m, ids, labels, T))) goto done;
    }
    if (exp_lens_png) {
        attn_image im;
        char title[200];
        snprintf(title, sizeof title, "%.120s - logit lens: P(final token) after each layer", m->name);
        snprintf(path, sizeof path, "%s/lens.png", dir);
        if ((rc = attn_lens_image(rc_.lens, m->tok, ids, title, &im))) goto done;
        rc = attn_write_png(path, &im);
        attn_image_free(&im);
        if (rc) goto done;
    }
    // the table(s)
    if (k > V) k = V;
    int32_t *idx = malloc((size_t)k * sizeof *idx);
    if (!idx) { rc = attn_err(ATTN_EFAIL, "out of memory"); goto done; }
    int json = !strcmp(fmt, "json"), tsv = !strcmp(fmt, "tsv");
    if (json) {
        printf("{\"model\": ");
        attn_json_str(stdout, m->name);
        printf(", \"ids\": [");
        for (int i = 0; i < T; i++) printf("%s%d", i ? ", " : "", ids[i]);
        printf("], \"positions\": [");
    } else if (tsv) printf("position\ttoken\trank\tid\tcandidate\tprob\tlogit\n");
    for (int t = per_token ? 0 : T - 1, first = 1; t < T; t++, first = 0) {
        const float *lg = logits + (size_t)t * V;
        attn_softmax_bits(lg, V, 1, probs);
        attn_top_k(lg, V, (int)k, idx, topv);
        char **cand;
        if ((rc = attn_token_labels(m->tok, idx, (int)k, &cand))) { free(idx); goto done; }
        if (json) {
            printf("%s{\"position\": %d, \"token\": ", first ? "" : ", ", t);
            attn_json_str(stdout, labels[t]);
            printf(", \"top\": [");
            for (int j = 0; j < k; j++) {
                printf("%s{\"id\": %d, \"text\": ", j ? ", " : "", idx[j]);
                attn_json_str(stdout, cand[j]);
                printf(", \"prob\": %.6g, \"logit\": %.6g}", probs[idx[j]], lg[idx[j]]);
            }
            printf("]");
            if (per_token) {
                printf(", \"attends\": [");
                for (int l = 0; l < c->n_layer; l++)
                    for (int h = 0; h < c->n_head; h++) {
                        size_t b = (((size_t)l * c->n_head + h) * T + t) * 3;
                        printf("%s{\"layer\": %d, \"head\": %d, \"keys\": [", l + h ? ", " : "", l, h);
                        for (int j = 0; j < 3 && rc_.top3[b + j] >= 0; j++)
                            printf("%s{\"position\": %d, \"prob\": %.6g}", j ? ", " : "", rc_.top3[b + j], rc_.top3p[b + j]);
                        printf("]}");
                    }
                printf("]");
            }
            printf("}");
        } else if (tsv) {
            for (int j = 0; j < k; j++)
                printf("%d\t%s\t%d\t%d\t%s\t%.6g\t%.6g\n", t, labels[t], j + 1, idx[j], cand[j], probs[idx[j]], lg[idx[j]]);
        } else {
            printf("%sposition %d \"%s\" -> next token\n", first ? "" : "\n", t, labels[t]);
            printf("  rank  %6s  %-20s  %8s  %9s\n", "id", "token", "prob", "logit");
            for (int j = 0; j < k; j++) {
                char q[96];
                snprintf(q, sizeof q, "\"%s\"", cand[j]);
                printf("  %4d  %6d  %-20s  %8.4f  %9.4f\n", j + 1, idx[j], q, probs[idx[j]], lg[idx[j]]);
            }
            if (per_token) {
                printf("  most-attended earlier tokens (attention probability):\n");
                for (int l = 0; l < c->n_layer; l++)
                    for (int h = 0; h < c->n_head; h++) {
                        size_t b = (((size_t)l * c->n_head + h) * T + t) * 3;
                        printf("    L%d H%-3d", l, h);
                        for (int j = 0; j < 3 && rc_.top3[b + j] >= 0; j++)
                            printf("  %d \"%s\" (%.2f)", rc_.top3[b + j], labels[rc_.top3[b + j]], rc_.top3p[b + j]);
                        printf("\n");
                    }
            }
        }
        attn_labels_free(cand, (int)k);
    }
    if (json) printf("]");
    if (lens && (rc = print_lens(rc_.lens, m, labels, fmt))) { free(idx); goto done; }
    if (json) printf("}\n");
    free(idx);
    if (exp_npy || exp_json || exp_lens_png)
        fprintf(stderr, "attn: wrote to %s:%s%s%s\n", dir, exp_npy ? " attention.npy logits.npy" : "",
                exp_json ? " tokens.json" : "", exp_lens_png ? " lens.png" : "");
done:
    if (rc_.export_attn) attn_out_abort(&rc_.npy);
    free(rc_.top3);
    free(rc_.top3p);
    attn_lens_free(rc_.lens);
    free(logits);
    free(probs);
    free(topv);
    if (labels) attn_labels_free(labels, T);
    free(ids);
    attn_pool_free(pool);
    attn_model_free(m);
    return rc ? cli_fail_rc(rc) : 0;
}

// ---------------------------------------------------------------- main

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *what;
} command;

static const char *USAGE =
    "attn %s - look inside transformer language models on a CPU\n\n"
    "usage: attn <command> [options]      attn <command> --help for its options\n\n"
    "commands:\n";

static const char *COMMON =
    "\ncommon options\n"
    "  -m, --model FILE     a GGUF model (default: the model built into the binary)\n"
    "  -p, --prompt TEXT    or  -f FILE  or  --ids 1,2,3 (raw token ids, no BOS added)\n"
    "  -t, --threads N      default: all online cores\n"
    "  -o, --out DIR        where files go (created if missing)\n"
    "  --format table|tsv|json\n"
    "\nExit status: 0 success, 2 bad input, 1 anything else. Convert checkpoints\n"
    "with tools/convert.py (nanoGPT, Hugging Face, llama2.c -> GGUF).\n";

static void on_signal(int sig) {
    attn_out_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int cli_main(int argc, char **argv) {
    command cmds[] = {
        { "info", cmd_info, "model: arch, dims, parameter count, tensor types, tokenizer, SIMD path" },
        { "tokenize", cmd_tokenize, "ids and readable pieces of a text" },
        { "run", cmd_run, "one forward pass: top-k table (--per-token: every position), --export" },
        { "maps", cmd_maps, "heatmap images of chosen layers/heads, and a layer x head grid" },
        { "trace", cmd_trace, "generate N tokens, top-k table per step" },
        { "heads", cmd_heads, "head-type scores for every head, against a random-init baseline" },
        { "compare", cmd_compare, "two models, or a model against its own random init" },
        { "report", cmd_report, "one self-contained offline HTML page of a prompt's attention" },
        { "bench", cmd_bench, "speed of this model on this machine" },
    };
    int n = (int)(sizeof cmds / sizeof cmds[0]);
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        printf(USAGE, ATTN_VERSION);
        for (int i = 0; i < n; i++)
            printf("  %-9s %s\n", cmds[i].name, cmds[i].what);
        fputs(COMMON, stdout);
        if (argc < 2) cli_error("no command given (see attn --help)");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("attn %s\n", ATTN_VERSION);
        return 0;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (attn_kernels_init()) return cli_fail();
    for (int i = 0; i < n; i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    cli_error("unknown command '%s' (see attn --help)", argv[1]);
    return 2;
}

int main(int argc, char **argv) {
    int rc = cli_main(argc, argv);
    // a table that could not be written (a full disk, /dev/full) is an error, not success
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (!rc) cli_error("standard output: write failed: %s", strerror(errno ? errno : EIO));
        return rc ? rc : 1;
    }
    return rc;
}
