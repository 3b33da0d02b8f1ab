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
                    printf(", \"prob\": ");
                    attn_json_numf(stdout, "%.6g", l->top_prob[b + j]);
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

static const char *RUN_HELP =
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

int cmd_run(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    long k = 10;
    int per_token = 0, exp_npy = 0, exp_json = 0, exp_scores = 0, lens = 0, exp_lens_png = 0;
    int exp_resid = 0, exp_z = 0, exp_mlp = 0, loss = 0, each_line = 0;
    const char *layers_s = NULL, *heads_s = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *v;
        if (!strcmp(argv[i], "-k")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_int("-k", v, 1, 1000, &k)) return 2;
        } else if (!strcmp(argv[i], "--per-token")) per_token = 1;
        else if (!strcmp(argv[i], "--lens")) lens = 1;
        else if (!strcmp(argv[i], "--loss")) loss = 1;
        else if (!strcmp(argv[i], "--each-line")) each_line = 1;
        else if (!strcmp(argv[i], "--layers")) { if (!(layers_s = cli_val(argc, argv, &i))) return 2; }
        else if (!strcmp(argv[i], "--heads")) { if (!(heads_s = cli_val(argc, argv, &i))) return 2; }
        else if (!strcmp(argv[i], "--export")) {
            if (!(v = cli_val(argc, argv, &i))) return 2;
            for (const char *p = v; *p;) {
                size_t l = strcspn(p, ",");
                if (l == 3 && !strncmp(p, "npy", 3)) exp_npy = 1;
                else if (l == 4 && !strncmp(p, "json", 4)) exp_json = 1;
                else if (l == 6 && !strncmp(p, "scores", 6)) exp_scores = 1;
                else if (l == 5 && !strncmp(p, "resid", 5)) exp_resid = 1;
                else if (l == 1 && !strncmp(p, "z", 1)) exp_z = 1;
                else if (l == 3 && !strncmp(p, "mlp", 3)) exp_mlp = 1;
                else {
                    cli_error("--export: unknown kind '%.*s' (npy, json, scores, resid, z, mlp)", (int)l, p);
                    return 2;
                }
                p += l + (p[l] == ',');
            }
        } else return cli_bad_opt("run", argv[i]);
    }
    if (o.help) { fputs(RUN_HELP, stdout); return 0; }
    if (loss) return cli_run_loss(&o, each_line);
    if (each_line) { cli_error("run: --each-line goes with --loss"); return 2; }
    int exp_act = exp_resid || exp_z || exp_mlp;
    const char *fmt;
    if (cli_format(&o, "table,tsv,json", &fmt)) return cli_fail();
    if (lens && o.out_dir) exp_lens_png = 1;
    if ((layers_s || heads_s) && !per_token && !exp_act) {
        fprintf(stderr, "attn: run: --layers/--heads choose what --per-token or --export resid,z,mlp shows\n");
        return 2;
    }
    if ((exp_npy || exp_json || exp_scores || exp_act) && !o.out_dir) {
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
    if (!rc && (exp_npy || exp_json || exp_scores || exp_lens_png || exp_act)) rc = cli_out_dir(&o, NULL, dir, sizeof dir);
    if (rc) goto done;
    const attn_config *c = &m->cfg;
    if (exp_act) {
        uint8_t *lm = calloc((size_t)c->n_layer + c->n_head, 1);
        if (!lm) { rc = attn_err(ATTN_EFAIL, "out of memory"); goto done; }
        if ((layers_s && cli_index_list("--layers", layers_s, c->n_layer, lm) < 0) ||
            (heads_s && cli_index_list("--heads", heads_s, c->n_head, lm + c->n_layer) < 0)) {
            free(lm);
            rc = ATTN_EINPUT;
            goto done_quiet;
        }
        rc = cli_acts_new(&rc_.acts, m, T, layers_s ? lm : NULL, heads_s ? lm + c->n_layer : NULL, exp_resid, exp_z, exp_mlp);
        free(lm);
        if (rc) goto done;
    }
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
    if (exp_scores && (c->attn_softcap > 0 || c->swa_window > 0)) { // (scores are q.k / sqrt(hd) here)
        rc = attn_err(ATTN_EINPUT, "--export scores: not yet for a model with attention soft-caps or sliding "
                                   "windows (%s)", attn_arch_get(c->arch)->gguf);
        goto done;
    }
    if (exp_scores) {
        int64_t dims[4] = { c->n_layer, c->n_head, T, T };
        snprintf(path, sizeof path, "%s/scores.npy", dir);
        if ((rc = attn_npy_open(&rc_.snpy, path, dims, 4))) goto done;
        rc_.export_scores = 1;
        rc_.H_kv = c->n_head_kv;
        rc_.hd = c->head_dim;
    }
    if (per_token) {
        rc_.lmask = malloc((size_t)c->n_layer);
        rc_.hmask = malloc((size_t)c->n_head);
        if (!rc_.lmask || !rc_.hmask) { rc = attn_err(ATTN_EFAIL, "out of memory"); goto done; }
        if (cli_index_list("--layers", layers_s ? layers_s : "all", c->n_layer, rc_.lmask) ||
            cli_index_list("--heads", heads_s ? heads_s : "all", c->n_head, rc_.hmask)) { rc = -1; goto done; }
    }
    if (lens && (rc = attn_lens_new(&rc_.lens, m, T, 3))) goto done;
    attn_session *s;
    if ((rc = attn_session_new(&s, m, T, pool))) goto done;
    attn_capture cap = { .on_attn = (exp_npy || per_token) ? run_on_attn : NULL,
                         .on_resid = lens || exp_act ? run_on_resid : NULL, .on_act = exp_act ? run_on_act : NULL,
                         .on_qk = exp_scores ? run_on_qk : NULL,
                         .ctx = &rc_ };
    rc = attn_session_feed(s, ids, T, logits, 0, &cap);
    if (!rc && lens) rc = attn_lens_compute(rc_.lens, s, pool);
    attn_session_free(s);
    if (rc) goto done;
    if (exp_scores) {
        snprintf(path, sizeof path, "%s/scores.npy", dir);
        if (rc_.write_err) {
            rc = attn_err(ATTN_EFAIL, "%s: write failed: %s", path, strerror(rc_.write_err));
            goto done;
        }
        rc_.export_scores = 0;
        if ((rc = attn_out_close(&rc_.snpy))) goto done;
    }
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
    char act_names[64] = "";
    if (exp_act && (rc = cli_acts_write(rc_.acts, dir, act_names, sizeof act_names))) goto done;
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
    } else if (tsv) {
        printf("position\ttoken\trank\tid\tcandidate\tprob\tlogit");
        for (int l = 0; per_token && l < c->n_layer; l++)
            for (int h = 0; h < c->n_head; h++)
                if (rc_.lmask[l] && rc_.hmask[h]) printf("\tL%dH%d", l, h);
        printf("\n");
    }
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
                printf(", \"prob\": ");
                attn_json_numf(stdout, "%.6g", probs[idx[j]]);
                printf(", \"logit\": ");
                attn_json_numf(stdout, "%.6g", lg[idx[j]]);
                printf("}");
            }
            printf("]");
            if (per_token) {
                printf(", \"attends\": [");
                int nsel = 0;
                for (int l = 0; l < c->n_layer; l++)
                    for (int h = 0; h < c->n_head; h++) {
                        if (!rc_.lmask[l] || !rc_.hmask[h]) continue;
                        size_t b = (((size_t)l * c->n_head + h) * T + t) * 3;
                        printf("%s{\"layer\": %d, \"head\": %d, \"keys\": [", nsel++ ? ", " : "", l, h);
                        for (int j = 0; j < 3 && rc_.top3[b + j] >= 0; j++) {
                            printf("%s{\"position\": %d, \"prob\": ", j ? ", " : "", rc_.top3[b + j]);
                            attn_json_numf(stdout, "%.6g", rc_.top3p[b + j]);
                            printf("}");
                        }
                        printf("]}");
                    }
                printf("]");
            }
            printf("}");
        } else if (tsv) {
            for (int j = 0; j < k; j++) {
                printf("%d\t%s\t%d\t%d\t%s\t%.6g\t%.6g", t, labels[t], j + 1, idx[j], cand[j], probs[idx[j]], lg[idx[j]]);
                for (int l = 0; per_token && l < c->n_layer; l++)
                    for (int h = 0; h < c->n_head; h++) {
                        if (!rc_.lmask[l] || !rc_.hmask[h]) continue;
                        size_t b = (((size_t)l * c->n_head + h) * T + t) * 3;
                        printf("\t");
                        for (int e = 0; e < 3 && rc_.top3[b + e] >= 0; e++)
                            printf("%s%d:%.4g", e ? " " : "", rc_.top3[b + e], rc_.top3p[b + e]);
                    }
                printf("\n");
            }
        } else {
            char qt[200];
            cli_quote(qt, sizeof qt, labels[t]);
            printf("%sposition %d %s -> next token\n", first ? "" : "\n", t, qt);
            printf("  rank  %6s  %-20s  %8s  %9s\n", "id", "token", "prob", "logit");
            for (int j = 0; j < k; j++) {
                char q[200];
                cli_quote(q, sizeof q, cand[j]);
                printf("  %4d  %6d  ", j + 1, idx[j]);
                cli_print_padded(q, 20);
                printf("  %8.4f  %9.4f\n", probs[idx[j]], lg[idx[j]]);
            }
            if (per_token) {
                printf("  most-attended earlier tokens (attention probability):\n");
                for (int l = 0; l < c->n_layer; l++)
                    for (int h = 0; h < c->n_head; h++) {
                        if (!rc_.lmask[l] || !rc_.hmask[h]) continue;
                        size_t b = (((size_t)l * c->n_head + h) * T + t) * 3;
                        printf("    L%d H%-3d", l, h);
                        for (int j = 0; j < 3 && rc_.top3[b + j] >= 0; j++) {
                            cli_quote(qt, sizeof qt, labels[rc_.top3[b + j]]);
                            printf("  %d %s (%.2f)", rc_.top3[b + j], qt, rc_.top3p[b + j]);
                        }
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
    if (exp_npy || exp_json || exp_scores || exp_lens_png || exp_act)
        fprintf(stderr, "attn: wrote to %s:%s%s%s%s%s\n", dir, exp_npy ? " attention.npy logits.npy" : "",
                exp_json ? " tokens.json" : "", exp_scores ? " scores.npy" : "", exp_lens_png ? " lens.png" : "", act_names);
done:
    if (rc_.export_attn) attn_out_abort(&rc_.npy);
    if (rc_.export_scores) attn_out_abort(&rc_.snpy);
    free(rc_.lmask);
    free(rc_.hmask);
    free(rc_.top3);
    free(rc_.top3p);
    attn_lens_free(rc_.lens);
    cli_acts_free(rc_.acts);
    free(logits);
    free(probs);
    free(topv);
    if (labels) attn_labels_free(labels, T);
    free(ids);
    attn_pool_free(pool);
    attn_model_free(m);
    return rc ? cli_fail_rc(rc) : 0;
done_quiet: // the message is printed
    free(ids);
    if (labels) attn_labels_free(labels, T);
    attn_pool_free(pool);
    attn_model_free(m);
    return 2;
}

