// attn_cmd_run_causal.c - the causal parts of `attn run`: --export
// resid,z,mlp (activations as .npy under TransformerLens's hook names) and
// --loss (per-token next-token loss and perplexity, one prompt or a corpus).
#include "attn.h"
#include "attn_cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- activations

struct cli_acts {
    int T, D, hd, H, L;
    int n_l, n_h, *lsel, *hsel; // selected layers and heads, in order
    int *lrow;                  // [L] row of layer l in the arrays, -1 if not selected
    float *resid, *z, *mlp;     // [n_l + 1, T, D], [n_l, T, n_h, hd], [n_l, T, D] (NULL: not wanted)
};

static int *sel_list(const uint8_t *mask, int n, int *k) {
    int *v = malloc((size_t)n * sizeof *v);
    *k = 0;
    for (int i = 0; v && i < n; i++)
        if (!mask || mask[i]) v[(*k)++] = i;
    return v;
}

int cli_acts_new(cli_acts **out, const attn_model *m, int T, const uint8_t *layers, const uint8_t *heads, int resid,
                 int z, int mlp) {
    const attn_config *c = &m->cfg;
    cli_acts *a = calloc(1, sizeof *a);
    if (!a) return attn_err(ATTN_EFAIL, "out of memory");
    *out = a;
    a->T = T, a->D = c->n_embd, a->hd = c->head_dim, a->H = c->n_head, a->L = c->n_layer;
    a->lsel = sel_list(layers, a->L, &a->n_l);
    a->hsel = sel_list(heads, a->H, &a->n_h);
    a->lrow = malloc((size_t)a->L * sizeof *a->lrow);
    if (!a->lsel || !a->hsel || !a->lrow) return attn_err(ATTN_EFAIL, "out of memory");
    for (int l = 0; l < a->L; l++) a->lrow[l] = -1;
    for (int k = 0; k < a->n_l; k++) a->lrow[a->lsel[k]] = k;
    size_t td = (size_t)T * a->D;
    if (resid && !(a->resid = malloc((a->n_l + 1) * td * 4))) return attn_err(ATTN_EFAIL, "out of memory for resid_pre");
    if (z && !(a->z = malloc((size_t)a->n_l * T * a->n_h * a->hd * 4))) return attn_err(ATTN_EFAIL, "out of memory for z");
    if (mlp && !(a->mlp = malloc(a->n_l * td * 4))) return attn_err(ATTN_EFAIL, "out of memory for mlp_out");
    return 0;
}

void cli_acts_free(cli_acts *a) {
    if (!a) return;
    free(a->lsel); free(a->hsel); free(a->lrow); free(a->resid); free(a->z); free(a->mlp);
    free(a);
}

void cli_acts_on_act(void *ctx, int kind, int layer, int q0, int nq, float *x) {
    cli_acts *a = ctx;
    int r = a->lrow[layer], D = a->D, qd = a->H * a->hd;
    if (r < 0) return;
    if (kind == ATTN_ACT_RESID_PRE && a->resid)
        memcpy(a->resid + ((size_t)r * a->T + q0) * D, x, (size_t)nq * D * 4);
    if (kind == ATTN_ACT_MLP_OUT && a->mlp) memcpy(a->mlp + ((size_t)r * a->T + q0) * D, x, (size_t)nq * D * 4);
    if (kind == ATTN_ACT_Z && a->z)
        for (int i = 0; i < nq; i++)
            for (int k = 0; k < a->n_h; k++)
                memcpy(a->z + (((size_t)r * a->T + q0 + i) * a->n_h + k) * a->hd,
                       x + (size_t)i * qd + (size_t)a->hsel[k] * a->hd, (size_t)a->hd * 4);
}

void cli_acts_on_resid(void *ctx, int layer, int q0, int nq, const float *x) {
    cli_acts *a = ctx;
    if (layer == a->L - 1 && a->resid) // the final residual, before the final norm
        memcpy(a->resid + ((size_t)a->n_l * a->T + q0) * a->D, x, (size_t)nq * a->D * 4);
}

int cli_acts_write(const cli_acts *a, const char *dir, char *names, size_t n) {
    char path[1100];
    int rc = 0;
    if (a->resid) {
        int64_t d[3] = { a->n_l + 1, a->T, a->D };
        snprintf(path, sizeof path, "%s/resid_pre.npy", dir);
        rc = attn_write_npy_f32(path, a->resid, d, 3);
        if (!rc) strncat(names, " resid_pre.npy", n - strlen(names) - 1);
    }
    if (!rc && a->z) {
        int64_t d[4] = { a->n_l, a->T, a->n_h, a->hd };
        snprintf(path, sizeof path, "%s/z.npy", dir);
        rc = attn_write_npy_f32(path, a->z, d, 4);
        if (!rc) strncat(names, " z.npy", n - strlen(names) - 1);
    }
    if (!rc && a->mlp) {
        int64_t d[3] = { a->n_l, a->T, a->D };
        snprintf(path, sizeof path, "%s/mlp_out.npy", dir);
        rc = attn_write_npy_f32(path, a->mlp, d, 3);
        if (!rc) strncat(names, " mlp_out.npy", n - strlen(names) - 1);
    }
    return rc;
}

// ---------------------------------------------------------------- loss

int cli_loss_check(const cli_opts *o, int each_line, const char **fmt) {
    if (cli_format(o, "table,tsv,json", fmt)) return ATTN_EINPUT;
    if (each_line && (!o->prompt_file || o->prompt || o->ids)) {
        cli_error("run: --each-line takes its prompts from -f FILE only");
        return CLI_PRINTED;
    }
    return 0;
}

// nll[0..T-2] of one prompt and their mean.
static int loss_prompt(cli_loss *r, const int32_t *ids, int T, double *mean) {
    if (T < 2) return attn_err(ATTN_EINPUT, "the prompt is one token: nothing to predict");
    if (T > r->max_t) {
        attn_session_free(r->s);
        r->s = NULL;
        free(r->logits); free(r->nll);
        r->logits = malloc((size_t)T * r->m->cfg.n_vocab * 4);
        r->nll = malloc((size_t)T * sizeof *r->nll);
        r->max_t = T;
        if (!r->logits || !r->nll) return attn_err(ATTN_EFAIL, "out of memory for %d positions", T);
        int rc = attn_session_new(&r->s, r->m, T, r->pool);
        if (rc) return rc;
    }
    attn_session_reset(r->s);
    int rc = attn_session_feed(r->s, ids, T, r->logits, 0, NULL);
    if (!rc) *mean = attn_nll_rows(r->logits, r->m->cfg.n_vocab, ids, T, r->pool, r->nll);
    return rc;
}

// Every non-empty line of -f FILE: the mean over all predicted tokens.
static int loss_corpus(const cli_opts *o, cli_loss *r) {
    cli_lines it;
    int32_t *ids;
    int T, rc = cli_lines_open(&it, o, r->m, 0);
    double sum = 0;
    while (!rc && !(rc = cli_lines_next(&it, &ids, &T)) && ids) {
        double mean;
        if (T >= 2 && (rc = loss_prompt(r, ids, T, &mean))) rc = cli_lines_fail(&it, rc);
        else if (T >= 2) sum += mean * (T - 1), r->n_pred += T - 1;
        r->n_lines++;
        free(ids);
    }
    rc = cli_lines_close(&it, rc);
    if (!rc && !r->n_pred) rc = attn_err(ATTN_EINPUT, "%s: no line of two or more tokens", o->prompt_file);
    if (!rc) r->mean = sum / r->n_pred;
    return rc;
}

int cli_loss_compute(const cli_opts *o, int each_line, cli_loss *r) {
    r->each_line = each_line;
    int rc = cli_setup(o, &r->m, &r->pool, NULL, NULL, NULL);
    if (rc) return rc;
    if (each_line) return loss_corpus(o, r);
    rc = cli_prompt_ids(o, r->m, &r->ids, &r->T);
    if (!rc) rc = loss_prompt(r, r->ids, r->T, &r->mean);
    if (!rc) rc = attn_token_labels(r->m->tok, r->ids, r->T, &r->labels);
    return rc;
}

// Token t's loss given the tokens before it (t >= 1).
static void loss_row(const cli_loss *r, const char *fmt, int t) {
    if (!strcmp(fmt, "json")) {
        printf("%s{\"position\": %d, \"id\": %d, \"token\": ", t > 1 ? ", " : "", t, r->ids[t]);
        attn_json_str(stdout, r->labels[t]);
        cli_json_num("nll", "%.9g", r->nll[t - 1]);
        printf("}");
    } else if (!strcmp(fmt, "tsv")) printf("%d\t%s\t%.9g\n", t, r->labels[t], r->nll[t - 1]);
    else {
        char q[96];
        snprintf(q, sizeof q, "\"%s\"", r->labels[t]);
        printf("  %3d  %-16s %8.4f\n", t, q, r->nll[t - 1]);
    }
}

// A corpus: one record of lines, predicted tokens, mean loss and perplexity.
static void print_loss_corpus(const cli_loss *r, const char *fmt) {
    if (!strcmp(fmt, "json")) {
        cli_json_open_model(r->m->name);
        printf(", \"lines\": %ld, \"predicted\": %ld, \"loss\": ", r->n_lines, r->n_pred);
        attn_json_numf(stdout, "%.9g", r->mean);
        cli_json_num("perplexity", "%.9g", exp(r->mean));
        printf("}\n");
    } else if (!strcmp(fmt, "tsv"))
        printf("lines\tpredicted\tloss\tperplexity\n%ld\t%ld\t%.9g\t%.9g\n", r->n_lines, r->n_pred, r->mean,
               exp(r->mean));
    else printf("%s: %ld lines, %ld predicted tokens\nmean loss %.4f nats/token, perplexity %.3f\n", r->m->name,
                r->n_lines, r->n_pred, r->mean, exp(r->mean));
}

void print_cli_loss(const cli_loss *r, const char *fmt) {
    if (r->each_line) { print_loss_corpus(r, fmt); return; }
    int json = !strcmp(fmt, "json"), tsv = !strcmp(fmt, "tsv");
    if (json) {
        cli_json_open_model(r->m->name);
        printf(", \"tokens\": %d, \"loss\": ", r->T);
        attn_json_numf(stdout, "%.9g", r->mean);
        cli_json_num("perplexity", "%.9g", exp(r->mean));
        printf(", \"per_token\": [");
    } else if (tsv) printf("position\ttoken\tnll\n");
    else printf("%s: %d tokens; loss of each token given the ones before it (nats)\n  pos  %-16s %8s\n", r->m->name,
                r->T, "token", "nll");
    for (int t = 1; t < r->T; t++) loss_row(r, fmt, t);
    if (json) printf("]}\n");
    else if (!tsv)
        printf("mean loss %.4f nats/token over %d predicted tokens, perplexity %.3f\n", r->mean, r->T - 1, exp(r->mean));
}

void cli_loss_free(cli_loss *r) {
    attn_session_free(r->s);
    free(r->logits); free(r->nll);
    if (r->labels) attn_labels_free(r->labels, r->T);
    free(r->ids);
    attn_pool_free(r->pool);
    attn_model_free(r->m);
}
