// attn_cmd_explain.c - `attn explain`: the arithmetic of one attention row,
// step by step (seed 002's worked example of softmax(Q K^T / sqrt(d))): the
// query vector, each key's dot product, the scaled score, the causal mask,
// the softmax and the keys attended to most.
#include "attn.h"
#include "attn_cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EXPLAIN_SHORT 8 // q values shown without --full

static const char EXPLAIN_HELP[] =
    "usage: attn explain [-m FILE] (-p TEXT | -f FILE | --ids 1,2,3)\n"
    "                    --layer L --head H [--query I] [--full] [--top N]\n"
    "                    [--format table|json]\n\n"
    "One attention row worked out by hand: for the query at position I of layer\n"
    "L, head H (0-based; `last` allowed for all three; default query: the last\n"
    "position) prints\n"
    "  q        the query vector of the head after RoPE (head_dim values; the\n"
    "           first 8 unless --full)\n"
    "  dot      q . k_j for every key position j (k after RoPE)\n"
    "  score    dot / sqrt(head_dim), the pre-softmax attention score\n"
    "  masked   keys after the query (j > I): score -inf, probability 0\n"
    "  softmax  exp(score_j - max) / sum over j <= I of the same: the attention\n"
    "           probability (0..1), computed here in double precision\n"
    "and the N keys with the highest probability (--top N, default 5).\n"
    "JSON: {\"model\", \"layer\", \"head\", \"query\", \"token\", \"head_dim\",\n"
    "  \"scale\" (1/sqrt(head_dim)), \"q\": [all values], \"keys\": [{\"pos\",\n"
    "  \"token\", \"k\": [...], \"dot\", \"score\", \"softmax\"} or {\"pos\", \"token\",\n"
    "  \"masked\": true}], \"top\": [{\"pos\", \"token\", \"softmax\"}]}\n"
    "Display labels: a space is shown as '\xc2\xb7', newline as '\\n', tab as '\\t'.\n"
    "  -t N          threads\n";

// What the forward pass hands over for one layer: the head's q row and every key.
typedef struct {
    int layer, head, query, hd, kv_head;
    float *q;  // (hd)
    float *k;  // (T, hd)
    int got;
} explain_cap;

static void explain_on_qk(void *ctx, int layer, int q0, int nq, int nk, const float *q, int qs, const float *k,
                          int ks) {
    explain_cap *c = ctx;
    if (layer != c->layer || c->query < q0 || c->query >= q0 + nq) return;
    memcpy(c->q, q + (size_t)(c->query - q0) * qs + (size_t)c->head * c->hd, (size_t)c->hd * sizeof(float));
    for (int j = 0; j < nk; j++)
        memcpy(c->k + (size_t)j * c->hd, k + (size_t)j * ks + (size_t)c->kv_head * c->hd, (size_t)c->hd * sizeof(float));
    c->got = 1;
}

// dot, score and softmax of keys 0..I (doubles); the rest are masked.
static void explain_row(const explain_cap *c, double *dot, double *score, double *prob) {
    double scale = 1.0 / sqrt((double)c->hd), mx = -INFINITY, sum = 0;
    for (int j = 0; j <= c->query; j++) {
        double d = 0;
        for (int e = 0; e < c->hd; e++) d += (double)c->q[e] * c->k[(size_t)j * c->hd + e];
        dot[j] = d;
        score[j] = d * scale;
        if (score[j] > mx) mx = score[j];
    }
    for (int j = 0; j <= c->query; j++) sum += prob[j] = exp(score[j] - mx);
    for (int j = 0; j <= c->query; j++) prob[j] /= sum;
}

// ---- options -> result -> print

typedef struct {
    cli_opts o;
    const char *fmt;            // table or json
    const char *ls, *hs, *qs;   // --layer, --head, --query (default "last")
    int full;                   // --full: every q value
    long ntop;                  // --top N
} explain_opts;

typedef struct {
    attn_model *m;
    attn_pool *pool;
    attn_session *s;
    int32_t *ids;
    char **labels;              // (T) display labels
    int T;
    explain_cap c;              // the head's q row and every key
    double *dot, *score, *prob; // (T): keys 0..query only
    int *top, ntop;             // keys by probability, highest first
} explain_result;

static int explain_opt(void *p, const char *a, int argc, char **argv, int *i) {
    explain_opts *eo = p;
    if (!strcmp(a, "--full")) return eo->full = 1;
    if (!strcmp(a, "--layer")) return cli_opt_str(argc, argv, i, &eo->ls);
    if (!strcmp(a, "--head")) return cli_opt_str(argc, argv, i, &eo->hs);
    if (!strcmp(a, "--query")) return cli_opt_str(argc, argv, i, &eo->qs);
    if (!strcmp(a, "--top")) return cli_opt_int(argc, argv, i, 1, 1 << 20, &eo->ntop);
    return 0;
}

static int explain_parse(int argc, char **argv, explain_opts *eo) {
    eo->qs = "last", eo->ntop = 5;
    if (cli_parse_opts(&eo->o, argc, argv, explain_opt, eo)) return CLI_PRINTED;
    if (eo->o.help) return 0;
    if (cli_format(&eo->o, "table,json", &eo->fmt)) return ATTN_EINPUT;
    if (!eo->ls || !eo->hs) {
        cli_error("explain: give the row with --layer L --head H (and --query I, default the last)");
        return CLI_PRINTED;
    }
    return 0;
}

// One index option: a number in 0..n-1 or last; -1 (message printed) if bad.
static int one_index(const char *opt, const char *v, int n) {
    char *end;
    long x = cli_index(v, n, &end);
    if (end == v || *end || x < 0 || x >= n) {
        cli_error("explain: %s %s: expected 0..%d or last", opt, v, n - 1);
        return -1;
    }
    return (int)x;
}

// The forward pass with the capture, the row's arithmetic and its top keys.
static int explain_forward(const explain_opts *eo, explain_result *r) {
    explain_cap *c = &r->c;
    int T = r->T;
    c->q = malloc((size_t)c->hd * sizeof(float));
    c->k = malloc((size_t)T * c->hd * sizeof(float));
    r->dot = malloc((size_t)T * sizeof *r->dot), r->score = malloc((size_t)T * sizeof *r->score);
    r->prob = malloc((size_t)T * sizeof *r->prob), r->top = malloc((size_t)T * sizeof *r->top);
    if (!c->q || !c->k || !r->dot || !r->score || !r->prob || !r->top) return attn_err(ATTN_EFAIL, "out of memory");
    attn_capture cap = {.on_qk = explain_on_qk, .ctx = c};
    int rc = attn_session_new(&r->s, r->m, T, r->pool);
    if (!rc) rc = attn_session_feed(r->s, r->ids, T, NULL, 1, &cap);
    if (rc) return rc;
    explain_row(c, r->dot, r->score, r->prob);
    double *prob = r->prob;
    int *top = r->top, n = 0; // keys 0..I by probability, highest first (ties: earlier key)
    for (int j = 0; j <= c->query; j++) {
        int t;
        if (n < eo->ntop) t = n++;
        else if (prob[j] > prob[top[n - 1]]) t = n - 1;
        else continue;
        while (t > 0 && prob[j] > prob[top[t - 1]]) top[t] = top[t - 1], t--;
        top[t] = j;
    }
    r->ntop = n;
    return 0;
}

static int explain_compute(const explain_opts *eo, explain_result *r) {
    int rc = cli_setup(&eo->o, &r->m, &r->pool, &r->ids, &r->T, &r->labels);
    if (rc) return rc;
    const attn_config *cf = &r->m->cfg;
    explain_cap *c = &r->c;
    if ((c->layer = one_index("--layer", eo->ls, cf->n_layer)) < 0 ||
        (c->head = one_index("--head", eo->hs, cf->n_head)) < 0 || (c->query = one_index("--query", eo->qs, r->T)) < 0)
        return CLI_PRINTED;
    if (cf->attn_softcap > 0 || attn_layer_window(cf, c->layer)) // explain_row is q.k / sqrt(hd), causal
        return attn_err(ATTN_EINPUT, "explain: layer %d has an attention soft-cap or a sliding window, which explain "
                                     "does not show yet", c->layer);
    c->hd = cf->head_dim;
    c->kv_head = c->head / (cf->n_head / cf->n_head_kv);
    return explain_forward(eo, r);
}

static void json_floats(const float *v, int n) {
    printf("[");
    for (int i = 0; i < n; i++) {
        printf(i ? ", " : "");
        attn_json_numf(stdout, "%.9g", v[i]);
    }
    printf("]");
}

// Key j's row: position, token, and dot/score/softmax or masked.
static void explain_key_row(const explain_result *r, int json, int j) {
    const explain_cap *c = &r->c;
    if (json) {
        printf("%s{\"pos\": %d, \"token\": ", j ? ", " : "", j);
        attn_json_str(stdout, r->labels[j]);
        if (j > c->query) { printf(", \"masked\": true}"); return; }
        printf(", \"k\": ");
        json_floats(c->k + (size_t)j * c->hd, c->hd);
        cli_json_num("dot", "%.9g", r->dot[j]);
        cli_json_num("score", "%.9g", r->score[j]);
        cli_json_num("softmax", "%.9g", r->prob[j]);
        printf("}");
        return;
    }
    char q[200];
    cli_quote(q, sizeof q, r->labels[j]);
    printf("  %3d  ", j);
    cli_print_padded(q, 16);
    if (j > c->query) printf(" %10s %10s %9s\n", "masked", "-inf", "0");
    else printf(" %10.4f %10.4f %9.4f\n", r->dot[j], r->score[j], r->prob[j]);
}

// The t-th most attended key.
static void explain_top_row(const explain_result *r, int json, int t) {
    int j = r->top[t];
    if (json) {
        printf("%s{\"pos\": %d, \"token\": ", t ? ", " : "", j);
        attn_json_str(stdout, r->labels[j]);
        cli_json_num("softmax", "%.9g", r->prob[j]);
        printf("}");
        return;
    }
    char q[200];
    cli_quote(q, sizeof q, r->labels[j]);
    printf("  %d %s %.4f", j, q, r->prob[j]);
}

// Before the key rows: the row's identity, its scale and (table) the q values.
static void explain_head(const explain_result *r, const explain_opts *eo, int json) {
    const explain_cap *c = &r->c;
    int I = c->query, hd = c->hd;
    if (json) {
        cli_json_open_model(r->m->name);
        printf(", \"layer\": %d, \"head\": %d, \"query\": %d, \"token\": ", c->layer, c->head, I);
        attn_json_str(stdout, r->labels[I]);
        printf(", \"head_dim\": %d, \"scale\": ", hd);
        attn_json_numf(stdout, "%.9g", 1.0 / sqrt((double)hd));
        printf(", \"q\": ");
        json_floats(c->q, hd);
        printf(", \"keys\": [");
        return;
    }
    char q[200];
    cli_quote(q, sizeof q, r->labels[I]);
    printf("model %s, layer %d, head %d, query position %d %s\n", r->m->name, c->layer, c->head, I, q);
    printf("score = q . k / sqrt(%d) = dot x %.6f; softmax over keys 0..%d; keys after %d are masked\n\n", hd,
           1.0 / sqrt((double)hd), I, I);
    int n = eo->full || hd <= EXPLAIN_SHORT ? hd : EXPLAIN_SHORT;
    printf("q (%d values%s):", hd, n < hd ? ", first 8; --full for all" : "");
    for (int e = 0; e < n; e++) printf("%s%.4f", e % 8 ? " " : "\n  ", c->q[e]);
    printf("%s\n\n", n < hd ? " ..." : "");
    printf("  key  %-16s %10s %10s %9s\n", "token", "dot", "score", "softmax");
}

static int print_explain(const explain_result *r, const explain_opts *eo) {
    int json = !strcmp(eo->fmt, "json");
    explain_head(r, eo, json);
    for (int j = 0; j < r->T; j++) explain_key_row(r, json, j);
    printf(json ? "], \"top\": [" : "\ntop attended:");
    for (int t = 0; t < r->ntop; t++) explain_top_row(r, json, t);
    printf(json ? "]}\n" : "\n");
    return 0;
}

static void explain_result_free(explain_result *r) {
    if (r->labels) attn_labels_free(r->labels, r->T);
    free(r->c.q), free(r->c.k), free(r->dot), free(r->score), free(r->prob), free(r->top), free(r->ids);
    attn_session_free(r->s);
    attn_pool_free(r->pool);
    attn_model_free(r->m);
}

CLI_COMMAND(explain, explain, "one attention row worked out: q, q.k, scaled score, mask, softmax", EXPLAIN_HELP);
