// attn_cmd_run.c - `attn run`: one forward pass, the top-k next-token table
// (--per-token: every position, with the most-attended earlier tokens), the
// logit lens, and --export of attention, scores, logits, tokens, activations.
// (--loss and the activation export live in attn_cmd_run_causal.c.)
#include "attn.h"
#include "attn_cli.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    attn_outfile snpy; // --export scores: scores.npy, streamed layer by layer
    int export_scores, H_kv, hd;
    uint8_t *lmask, *hmask; // --layers/--heads of --per-token
    cli_acts *acts;  // --export resid,z,mlp, or NULL
} run_ctx;

// Pre-softmax scores q.k/sqrt(head_dim) of every head of one layer, rows
// streamed into scores.npy; keys after the query are -1e30 (no -inf, no NaN).
#define RUN_MASKED (-1e30f)
static void run_on_qk(void *ctx, int layer, int q0, int nq, int nk, const float *q, int qs, const float *k, int ks) {
    run_ctx *r = ctx;
    (void)layer;
    float *row = malloc((size_t)nk * sizeof *row);
    if (!row) { r->write_err = ENOMEM; return; }
    double scale = 1.0 / sqrt((double)r->hd);
    for (int h = 0; h < r->H && !r->write_err; h++) {
        const float *kh = k + (size_t)(h / (r->H / r->H_kv)) * r->hd;
        for (int i = 0; i < nq; i++) {
            const float *qi = q + (size_t)i * qs + (size_t)h * r->hd;
            for (int j = 0; j < nk; j++) {
                double d = 0;
                for (int e = 0; j <= q0 + i && e < r->hd; e++) d += (double)qi[e] * kh[(size_t)j * ks + e];
                row[j] = j <= q0 + i ? (float)(d * scale) : RUN_MASKED;
            }
            if (fwrite(row, sizeof(float), (size_t)nk, r->snpy.fp) != (size_t)nk) r->write_err = errno ? errno : EIO;
        }
    }
    free(row);
}

static void run_on_resid(void *ctx, int layer, int q0, int nq, const float *x) {
    run_ctx *r = ctx;
    if (r->lens) attn_lens_on_resid(r->lens, layer, q0, nq, x);
    if (r->acts) cli_acts_on_resid(r->acts, layer, q0, nq, x);
}

static void run_on_act(void *ctx, int kind, int layer, int q0, int nq, float *x) {
    cli_acts_on_act(((run_ctx *)ctx)->acts, kind, layer, q0, nq, x);
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
        attn_gguf_str p = attn_token_piece(m->tok, ids[i]);
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
            char qa[200], qb[200];
            cli_quote(qa, sizeof qa, labels[t]);
            cli_quote(qb, sizeof qb, fin[0]);
            printf("\nposition %d %s -> final %s\n  %-6s %8s  top tokens (probability)\n", t, qa, qb, "layer", "P(final)");
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
                printf("%s{\"layer\": %d, \"final_prob\": ", r ? ", " : "", r - 1);
                attn_json_numf(stdout, "%.6g", pf);
                printf(", \"top\": [");
                for (int j = 0; j < k; j++) {
                    printf("%s{\"id\": %d, \"text\": ", j ? ", " : "", l->top_id[b + j]);
                    attn_json_str(stdout, cand[j]);
                    cli_json_num("prob", "%.6g", l->top_prob[b + j]);
                    printf("}");
                }
                printf("]}");
            } else if (tsv) {
                for (int j = 0; j < k; j++)
                    printf("%d\t%s\t%d\t%.6g\t%d\t%d\t%s\t%.6g\n", t, labels[t], r - 1, pf, j + 1, l->top_id[b + j], cand[j], l->top_prob[b + j]);
            } else {
                printf("  %-6s %8.4f ", lname, pf);
                for (int j = 0; j < k; j++) {
                    char q[200];
                    cli_quote(q, sizeof q, cand[j]);
                    printf(" %s (%.3f)", q, l->top_prob[b + j]);
                }
                printf("\n");
            }
            attn_labels_free(cand, k);
        }
        if (json) printf("]}");
    }
    if (json) printf("]");
    return 0;
}

static const char RUN_HELP[] =
    "usage: attn run [-m FILE] (-p TEXT | -f FILE | --ids 1,2,3) [-k N]\n"
    "                [--per-token] [--lens]\n"
    "                [--export npy,json,scores,resid,z,mlp -o DIR]\n"
    "                [--layers LIST] [--heads LIST] [--format table|tsv|json]\n"
    "                [-t N]\n"
    "       attn run [-m FILE] (-p TEXT | -f FILE [--each-line] | --ids ..) --loss\n\n"
    "One forward pass. Prints the top-k next-token table for the last position:\n"
    "rank, id, token (display label, quoted), probability (softmax of the logits,\n"
    "0..1) and raw logit.\n"
    "  -k N           candidates per position (default 10)\n"
    "  --per-token    the table for every position, and for each layer and head\n"
    "                 the three earlier tokens it attends to most (attention\n"
    "                 probability in parentheses, 0..1); TSV: one column per\n"
    "                 layer and head, L<l>H<h> = \"pos:prob pos:prob pos:prob\"\n"
    "  --export LIST  npy: DIR/attention.npy (float32 [L,H,T,T], row = query\n"
    "                 position, column = key position, rows sum to 1, zero above\n"
    "                 the diagonal) and DIR/logits.npy (float32 [T,V]);\n"
    "                 json: DIR/tokens.json (ids, display labels, raw pieces);\n"
    "                 scores: DIR/scores.npy (float32 [L,H,T,T]), the scores\n"
    "                 before the softmax, q.k/sqrt(head_dim); keys after the\n"
    "                 query (masked) hold -1e30, never -inf or NaN\n"
    "                 resid, z, mlp: activations as float32 .npy named after\n"
    "                 TransformerLens's hooks: DIR/resid_pre.npy [L+1,T,D] (the\n"
    "                 residual entering each layer, last row the final residual\n"
    "                 before the final norm), DIR/z.npy [L,T,H,head_dim] (each\n"
    "                 head's attention-weighted sum of values, value bias\n"
    "                 included, before the output projection), DIR/mlp_out.npy\n"
    "                 [L,T,D] (MLP output, its bias included)\n"
    "  --layers LIST  with --per-token or resid/z/mlp: only these layers (all,\n"
    "                 0,3,5-7, last; the final residual stays the last row of\n"
    "                 resid_pre)\n"
    "  --heads LIST   with --per-token or z: only these heads\n"
    "  --loss         instead of the table: each token's next-token loss\n"
    "                 -log p(token | tokens before it) in nats, their mean (nats\n"
    "                 per token) and the perplexity exp(mean)\n"
    "  --each-line    with --loss -f FILE: every non-empty line is a prompt; the\n"
    "                 mean loss over all the file's predicted tokens and its\n"
    "                 perplexity\n"
    "  --lens         logit lens: for every position and layer (emb = the\n"
    "                 embeddings), the top-3 tokens of the residual stream after\n"
    "                 that layer through the final norm and unembedding, and\n"
    "                 P(final) = the probability there of the token the model\n"
    "                 finally ranks first (0..1); with -o DIR also DIR/lens.png,\n"
    "                 a heatmap of P(final), layers x positions, fixed 0..1\n"
    "  --no-bos       do not add the BOS token the model would add\n"
    "  --no-special   text such as <|endoftext|> stays text (default: the token)\n"
    "Display labels: a space is shown as '·', newline as '\\n', tab as '\\t'.\n";

// ---- options -> result -> print

typedef struct {
    cli_opts o;
    const char *fmt; // table, tsv or json
    long k;          // -k: candidates per position
    int per_token, lens, loss, each_line;
    int exp_npy, exp_json, exp_scores, exp_resid, exp_z, exp_mlp; // --export kinds
    int exp_act, exp_lens_png, exp_any; // derived: resid/z/mlp; --lens with -o; any file
} run_opts;

typedef struct {
    attn_model *m;
    attn_pool *pool;
    int32_t *ids;
    char **labels; // (T) display labels of ids
    int T, k;      // positions; candidates (-k, at most V)
    float *logits; // (T, V)
    run_ctx cap;   // what the capture kept: top3 (--per-token), lens, masks, files
    // the table: positions t0..T-1 (t0 = 0 with --per-token, else T-1)
    int t0;
    int32_t *top_id;   // (T - t0, k)
    double *top_p;     // (T - t0, k) softmax probability
    float *top_logit;  // (T - t0, k) raw logit
    char **top_label;  // (T - t0, k) display labels
    char dir[1024];    // -o DIR ("" without)
    char act_names[64]; // " resid_pre.npy ..." of --export resid,z,mlp
    cli_loss loss;      // --loss instead of all the above
} run_result;

// "npy,json,..." of --export into the flags; CLI_PRINTED on an unknown kind.
static int run_parse_export(run_opts *ro, const char *v) {
    for (const char *p = v; *p;) {
        size_t l = strcspn(p, ",");
        if (l == 3 && !strncmp(p, "npy", 3)) ro->exp_npy = 1;
        else if (l == 4 && !strncmp(p, "json", 4)) ro->exp_json = 1;
        else if (l == 6 && !strncmp(p, "scores", 6)) ro->exp_scores = 1;
        else if (l == 5 && !strncmp(p, "resid", 5)) ro->exp_resid = 1;
        else if (l == 1 && !strncmp(p, "z", 1)) ro->exp_z = 1;
        else if (l == 3 && !strncmp(p, "mlp", 3)) ro->exp_mlp = 1;
        else {
            cli_error("--export: unknown kind '%.*s' (npy, json, scores, resid, z, mlp)", (int)l, p);
            return CLI_PRINTED;
        }
        p += l + (p[l] == ',');
    }
    return 0;
}

// One of run's own options.
static int run_opt(void *p, const char *a, int argc, char **argv, int *i) {
    run_opts *ro = p;
    const char *v;
    if (!strcmp(a, "-k")) return cli_opt_int(argc, argv, i, 1, 1000, &ro->k);
    if (!strcmp(a, "--per-token")) return ro->per_token = 1;
    if (!strcmp(a, "--lens")) return ro->lens = 1;
    if (!strcmp(a, "--loss")) return ro->loss = 1;
    if (!strcmp(a, "--each-line")) return ro->each_line = 1;
    if (strcmp(a, "--export")) return 0;
    return (v = cli_val(argc, argv, i)) && !run_parse_export(ro, v) ? 1 : CLI_PRINTED;
}

// The options; the checks that need no model (--loss: cli_loss_check).
static int run_parse(int argc, char **argv, run_opts *ro) {
    ro->k = 10, ro->o.select = 1;
    if (cli_parse_opts(&ro->o, argc, argv, run_opt, ro)) return CLI_PRINTED;
    if (ro->o.help) return 0;
    if (ro->loss) return cli_loss_check(&ro->o, ro->each_line, &ro->fmt);
    if (ro->each_line) { cli_error("run: --each-line goes with --loss"); return CLI_PRINTED; }
    ro->exp_act = ro->exp_resid || ro->exp_z || ro->exp_mlp;
    if (cli_format(&ro->o, "table,tsv,json", &ro->fmt)) return ATTN_EINPUT;
    ro->exp_lens_png = ro->lens && ro->o.out_dir;
    ro->exp_any = ro->exp_npy || ro->exp_json || ro->exp_scores || ro->exp_lens_png || ro->exp_act;
    if ((ro->o.layers || ro->o.heads) && !ro->per_token && !ro->exp_act) {
        cli_error("run: --layers/--heads choose what --per-token or --export resid,z,mlp shows");
        return CLI_PRINTED;
    }
    if ((ro->exp_npy || ro->exp_json || ro->exp_scores || ro->exp_act) && !ro->o.out_dir) {
        cli_error("run: --export needs -o DIR");
        return CLI_PRINTED;
    }
    return 0;
}

// --export resid,z,mlp: the activation recorder for the chosen layers/heads.
static int run_setup_acts(const run_opts *ro, run_result *r) {
    const attn_config *c = &r->m->cfg;
    uint8_t *lm = calloc((size_t)c->n_layer + c->n_head, 1);
    if (!lm) return attn_err(ATTN_EFAIL, "out of memory");
    int rc = cli_select(&ro->o, c->n_layer, c->n_head, lm, lm + c->n_layer);
    if (!rc)
        rc = cli_acts_new(&r->cap.acts, r->m, r->T, lm, lm + c->n_layer, ro->exp_resid, ro->exp_z, ro->exp_mlp);
    free(lm);
    return rc;
}

// attention.npy and scores.npy opened for streaming, as the capture fills them.
static int run_open_npys(const run_opts *ro, run_result *r) {
    const attn_config *c = &r->m->cfg;
    int64_t dims[4] = { c->n_layer, c->n_head, r->T, r->T };
    char path[1100];
    int rc;
    if (ro->exp_npy) {
        snprintf(path, sizeof path, "%s/attention.npy", r->dir);
        if ((rc = attn_npy_open(&r->cap.npy, path, dims, 4))) return rc;
        r->cap.export_attn = 1;
    }
    if (ro->exp_scores && (c->attn_softcap > 0 || c->swa_window > 0)) // (scores are q.k / sqrt(hd) here)
        return attn_err(ATTN_EINPUT, "--export scores: not yet for a model with attention soft-caps or sliding "
                                     "windows (%s)", attn_arch_get(c->arch)->gguf);
    if (ro->exp_scores) {
        snprintf(path, sizeof path, "%s/scores.npy", r->dir);
        if ((rc = attn_npy_open(&r->cap.snpy, path, dims, 4))) return rc;
        r->cap.export_scores = 1;
        r->cap.H_kv = c->n_head_kv;
        r->cap.hd = c->head_dim;
    }
    return 0;
}

// Model, prompt, pool, labels, output dir, and what the capture fills.
static int run_setup(const run_opts *ro, run_result *r) {
    int rc = cli_setup(&ro->o, &r->m, &r->pool, &r->ids, &r->T, &r->labels);
    if (!rc && ro->exp_any) rc = cli_out_dir(&ro->o, NULL, r->dir, sizeof r->dir);
    if (!rc && ro->exp_act) rc = run_setup_acts(ro, r);
    if (rc) return rc;
    const attn_config *c = &r->m->cfg;
    int T = r->T, V = c->n_vocab;
    r->k = ro->k > V ? V : (int)ro->k;
    r->t0 = ro->per_token ? 0 : T - 1;
    size_t nk = (size_t)(T - r->t0) * r->k;
    r->logits = attn_big_alloc((size_t)T * V * sizeof(float)); // 8 MB at T=256, V=8192: 2 MB pages
    r->top_id = malloc(nk * sizeof *r->top_id);
    r->top_p = malloc(nk * sizeof *r->top_p);
    r->top_logit = malloc(nk * sizeof *r->top_logit);
    r->top_label = calloc(nk, sizeof *r->top_label);
    if (!r->logits || !r->top_id || !r->top_p || !r->top_logit || !r->top_label)
        return attn_err(ATTN_EFAIL, "out of memory for %d x %d logits", T, V);
    r->cap.T = T;
    r->cap.H = c->n_head;
    if (ro->per_token) {
        size_t n = (size_t)c->n_layer * c->n_head * T * 3;
        r->cap.top3 = malloc(n * sizeof(int32_t));
        r->cap.top3p = malloc(n * sizeof(float));
        if (!r->cap.top3 || !r->cap.top3p) return attn_err(ATTN_EFAIL, "out of memory");
    }
    if ((rc = run_open_npys(ro, r))) return rc;
    if (ro->per_token) {
        r->cap.lmask = malloc((size_t)c->n_layer);
        r->cap.hmask = malloc((size_t)c->n_head);
        if (!r->cap.lmask || !r->cap.hmask) return attn_err(ATTN_EFAIL, "out of memory");
        if (cli_select(&ro->o, c->n_layer, c->n_head, r->cap.lmask, r->cap.hmask)) return CLI_PRINTED;
    }
    if (ro->lens && (rc = attn_lens_new(&r->cap.lens, r->m, T, 3))) return rc;
    return 0;
}

// The one forward pass with what the options capture; the logit lens after it.
static int run_forward(const run_opts *ro, run_result *r) {
    attn_session *s;
    int rc = attn_session_new(&s, r->m, r->T, r->pool);
    if (rc) return rc;
    attn_capture cap = { .on_attn = (ro->exp_npy || ro->per_token) ? run_on_attn : NULL,
                         .on_resid = ro->lens || ro->exp_act ? run_on_resid : NULL,
                         .on_act = ro->exp_act ? run_on_act : NULL,
                         .on_qk = ro->exp_scores ? run_on_qk : NULL,
                         .ctx = &r->cap };
    rc = attn_session_feed(s, r->ids, r->T, r->logits, 0, &cap);
    if (!rc && ro->lens) rc = attn_lens_compute(r->cap.lens, s, r->pool);
    attn_session_free(s);
    return rc;
}

// A streamed .npy closed into place, or its write error.
static int run_close_npy(attn_outfile *f, int *open, int write_err, const char *dir, const char *name) {
    if (write_err) {
        attn_out_abort(f);
        *open = 0;
        return attn_err(ATTN_EFAIL, "%s/%s: write failed: %s", dir, name, strerror(write_err));
    }
    *open = 0;
    return attn_out_close(f);
}

// The files of --export and --lens -o, after the forward.
static int run_write_files(const run_opts *ro, run_result *r) {
    char path[1100];
    int rc;
    if (ro->exp_scores && (rc = run_close_npy(&r->cap.snpy, &r->cap.export_scores, r->cap.write_err, r->dir, "scores.npy")))
        return rc;
    if (ro->exp_npy) {
        if ((rc = run_close_npy(&r->cap.npy, &r->cap.export_attn, r->cap.write_err, r->dir, "attention.npy")))
            return rc;
        int64_t dims[2] = { r->T, r->m->cfg.n_vocab };
        snprintf(path, sizeof path, "%s/logits.npy", r->dir);
        if ((rc = attn_write_npy_f32(path, r->logits, dims, 2))) return rc;
    }
    if (ro->exp_act && (rc = cli_acts_write(r->cap.acts, r->dir, r->act_names, sizeof r->act_names))) return rc;
    if (ro->exp_json) {
        snprintf(path, sizeof path, "%s/tokens.json", r->dir);
        if ((rc = write_tokens_json(path, r->m, r->ids, r->labels, r->T))) return rc;
    }
    if (ro->exp_lens_png) {
        attn_image im;
        char title[200];
        snprintf(title, sizeof title, "%.120s - logit lens: P(final token) after each layer", r->m->name);
        snprintf(path, sizeof path, "%s/lens.png", r->dir);
        if ((rc = attn_lens_image(r->cap.lens, r->m->tok, r->ids, title, &im))) return rc;
        rc = attn_write_png(path, &im);
        attn_image_free(&im);
        if (rc) return rc;
    }
    return 0;
}

// The top-k candidates of every position the table shows.
static int run_topk(run_result *r) {
    int V = r->m->cfg.n_vocab, k = r->k;
    double *probs = malloc((size_t)V * sizeof *probs);
    float *topv = malloc((size_t)k * sizeof *topv);
    int rc = probs && topv ? 0 : attn_err(ATTN_EFAIL, "out of memory");
    for (int t = r->t0; !rc && t < r->T; t++) {
        const float *lg = r->logits + (size_t)t * V;
        size_t b = (size_t)(t - r->t0) * k;
        attn_softmax_bits(lg, V, 1, probs);
        attn_top_k(lg, V, k, r->top_id + b, topv);
        for (int j = 0; j < k; j++) {
            r->top_p[b + j] = probs[r->top_id[b + j]];
            r->top_logit[b + j] = lg[r->top_id[b + j]];
        }
        char **cand;
        if ((rc = attn_token_labels(r->m->tok, r->top_id + b, k, &cand))) break;
        memcpy(r->top_label + b, cand, (size_t)k * sizeof *cand);
        free(cand); // (the strings now belong to top_label)
    }
    free(probs);
    free(topv);
    return rc;
}

static int run_compute(const run_opts *ro, run_result *r) {
    if (ro->loss) return cli_loss_compute(&ro->o, ro->each_line, &r->loss);
    int rc = run_setup(ro, r);
    if (!rc) rc = run_forward(ro, r);
    if (!rc) rc = run_write_files(ro, r);
    if (!rc) rc = run_topk(r);
    return rc;
}

// Head (l, h) chosen by --layers/--heads for --per-token; its top-3 at b.
static int run_head_shown(const run_result *r, int l, int h, int t, size_t *b) {
    *b = (((size_t)l * r->m->cfg.n_head + h) * r->T + t) * 3;
    return r->cap.lmask[l] && r->cap.hmask[h];
}

// The row printer: candidate j of position t, one row of the table, the TSV
// (with the --per-token columns) or the JSON "top" list.
static void run_row(const run_result *r, const char *fmt, int t, int j) {
    size_t b = (size_t)(t - r->t0) * r->k + j, h3;
    int id = r->top_id[b];
    const char *cand = r->top_label[b];
    if (!strcmp(fmt, "json")) {
        cli_json_candidate(!j, id, cand, r->top_p[b], r->top_logit[b]);
    } else if (!strcmp(fmt, "tsv")) {
        printf("%d\t%s\t%d\t%d\t%s\t%.6g\t%.6g", t, r->labels[t], j + 1, id, cand, r->top_p[b], r->top_logit[b]);
        for (int l = 0; r->cap.top3 && l < r->m->cfg.n_layer; l++)
            for (int h = 0; h < r->m->cfg.n_head; h++) {
                if (!run_head_shown(r, l, h, t, &h3)) continue;
                printf("\t");
                for (int e = 0; e < 3 && r->cap.top3[h3 + e] >= 0; e++)
                    printf("%s%d:%.4g", e ? " " : "", r->cap.top3[h3 + e], r->cap.top3p[h3 + e]);
            }
        printf("\n");
    } else {
        char q[200];
        cli_quote(q, sizeof q, cand);
        printf("  %4d  %6d  ", j + 1, id);
        cli_print_padded(q, 20);
        printf("  %8.4f  %9.4f\n", r->top_p[b], r->top_logit[b]);
    }
}

// --per-token, table and JSON: each shown head's three most-attended earlier keys.
static void run_attends(const run_result *r, const char *fmt, int t) {
    int json = !strcmp(fmt, "json"), nsel = 0;
    size_t b;
    char qt[200];
    printf(json ? ", \"attends\": [" : "  most-attended earlier tokens (attention probability):\n");
    for (int l = 0; l < r->m->cfg.n_layer; l++)
        for (int h = 0; h < r->m->cfg.n_head; h++) {
            if (!run_head_shown(r, l, h, t, &b)) continue;
            if (json) printf("%s{\"layer\": %d, \"head\": %d, \"keys\": [", nsel++ ? ", " : "", l, h);
            else printf("    L%d H%-3d", l, h);
            for (int j = 0; j < 3 && r->cap.top3[b + j] >= 0; j++) {
                if (json) {
                    printf("%s{\"position\": %d, \"prob\": ", j ? ", " : "", r->cap.top3[b + j]);
                    attn_json_numf(stdout, "%.6g", r->cap.top3p[b + j]);
                    printf("}");
                } else {
                    cli_quote(qt, sizeof qt, r->labels[r->cap.top3[b + j]]);
                    printf("  %d %s (%.2f)", r->cap.top3[b + j], qt, r->cap.top3p[b + j]);
                }
            }
            printf(json ? "]}" : "\n");
        }
    if (json) printf("]");
}

static int print_run(const run_result *r, const run_opts *ro) {
    const char *fmt = ro->fmt;
    if (ro->loss) { print_cli_loss(&r->loss, fmt); return 0; }
    int json = !strcmp(fmt, "json"), tsv = !strcmp(fmt, "tsv"), rc = 0;
    if (json) {
        cli_json_open_model(r->m->name);
        printf(", \"ids\": [");
        for (int i = 0; i < r->T; i++) printf("%s%d", i ? ", " : "", r->ids[i]);
        printf("], \"positions\": [");
    } else if (tsv) {
        printf("position\ttoken\trank\tid\tcandidate\tprob\tlogit");
        for (int l = 0; ro->per_token && l < r->m->cfg.n_layer; l++)
            for (int h = 0; h < r->m->cfg.n_head; h++)
                if (r->cap.lmask[l] && r->cap.hmask[h]) printf("\tL%dH%d", l, h);
        printf("\n");
    }
    for (int t = r->t0; t < r->T; t++) {
        if (json) {
            printf("%s{\"position\": %d, \"token\": ", t > r->t0 ? ", " : "", t);
            attn_json_str(stdout, r->labels[t]);
            printf(", \"top\": [");
        } else if (!tsv) {
            char qt[200];
            cli_quote(qt, sizeof qt, r->labels[t]);
            printf("%sposition %d %s -> next token\n", t > r->t0 ? "\n" : "", t, qt);
            printf("  rank  %6s  %-20s  %8s  %9s\n", "id", "token", "prob", "logit");
        }
        for (int j = 0; j < r->k; j++) run_row(r, fmt, t, j);
        if (json) printf("]");
        if (ro->per_token && !tsv) run_attends(r, fmt, t);
        if (json) printf("}");
    }
    if (json) printf("]");
    if (ro->lens) rc = print_lens(r->cap.lens, r->m, r->labels, fmt);
    if (!rc && json) printf("}\n");
    if (!rc && ro->exp_any)
        cli_note("wrote to %s:%s%s%s%s%s", r->dir, ro->exp_npy ? " attention.npy logits.npy" : "",
                 ro->exp_json ? " tokens.json" : "", ro->exp_scores ? " scores.npy" : "",
                 ro->exp_lens_png ? " lens.png" : "", r->act_names);
    return rc;
}

static void run_result_free(run_result *r) {
    cli_loss_free(&r->loss);
    if (r->cap.export_attn) attn_out_abort(&r->cap.npy);
    if (r->cap.export_scores) attn_out_abort(&r->cap.snpy);
    free(r->cap.lmask), free(r->cap.hmask), free(r->cap.top3), free(r->cap.top3p); // --per-token
    attn_lens_free(r->cap.lens);
    cli_acts_free(r->cap.acts);
    if (r->m) attn_big_free(r->logits, (size_t)r->T * r->m->cfg.n_vocab * sizeof(float));
    free(r->top_id), free(r->top_p), free(r->top_logit); // the top-k table
    if (r->top_label) attn_labels_free(r->top_label, (r->T - r->t0) * r->k);
    if (r->labels) attn_labels_free(r->labels, r->T);
    free(r->ids);
    attn_pool_free(r->pool);
    attn_model_free(r->m);
}

CLI_COMMAND(run, run, "one forward pass: top-k table (--per-token: each position), --export", RUN_HELP);
