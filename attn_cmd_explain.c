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

static const char *EXPLAIN_HELP =
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

static void json_floats(const float *v, int n) {
    printf("[");
    for (int i = 0; i < n; i++) {
        printf(i ? ", " : "");
        attn_json_numf(stdout, "%.9g", v[i]);
    }
    printf("]");
}

static void print_explain(const attn_model *m, const explain_cap *c, char **labels, int T, const double *dot,
                          const double *score, const double *prob, const int *top, int ntop, int full, int json) {
    int I = c->query, hd = c->hd;
    if (json) {
        printf("{\"model\": ");
        attn_json_str(stdout, m->name);
        printf(", \"layer\": %d, \"head\": %d, \"query\": %d, \"token\": ", c->layer, c->head, I);
        attn_json_str(stdout, labels[I]);
        printf(", \"head_dim\": %d, \"scale\": ", hd);
        attn_json_numf(stdout, "%.9g", 1.0 / sqrt((double)hd));
        printf(", \"q\": ");
        json_floats(c->q, hd);
        printf(", \"keys\": [");
        for (int j = 0; j < T; j++) {
            printf("%s{\"pos\": %d, \"token\": ", j ? ", " : "", j);
            attn_json_str(stdout, labels[j]);
            if (j > I) { printf(", \"masked\": true}"); continue; }
            printf(", \"k\": ");
            json_floats(c->k + (size_t)j * hd, hd);
            cli_json_num("dot", "%.9g", dot[j]);
            cli_json_num("score", "%.9g", score[j]);
            cli_json_num("softmax", "%.9g", prob[j]);
            printf("}");
        }
        printf("], \"top\": [");
        for (int t = 0; t < ntop; t++) {
            printf("%s{\"pos\": %d, \"token\": ", t ? ", " : "", top[t]);
            attn_json_str(stdout, labels[top[t]]);
            cli_json_num("softmax", "%.9g", prob[top[t]]);
            printf("}");
        }
        printf("]}\n");
        return;
    }
    char q[200];
    cli_quote(q, sizeof q, labels[I]);
    printf("model %s, layer %d, head %d, query position %d %s\n", m->name, c->layer, c->head, I, q);
    printf("score = q . k / sqrt(%d) = dot x %.6f; softmax over keys 0..%d; keys after %d are masked\n\n", hd,
           1.0 / sqrt((double)hd), I, I);
    int n = full || hd <= EXPLAIN_SHORT ? hd : EXPLAIN_SHORT;
    printf("q (%d values%s):", hd, n < hd ? ", first 8; --full for all" : "");
    for (int e = 0; e < n; e++) printf("%s%.4f", e % 8 ? " " : "\n  ", c->q[e]);
    printf("%s\n\n", n < hd ? " ..." : "");
    printf("  key  %-16s %10s %10s %9s\n", "token", "dot", "score", "softmax");
    for (int j = 0; j < T; j++) {
        cli_quote(q, sizeof q, labels[j]);
        printf("  %3d  ", j);
        cli_print_padded(q, 16);
        if (j > I) printf(" %10s %10s %9s\n", "masked", "-inf", "0");
        else printf(" %10.4f %10.4f %9.4f\n", dot[j], score[j], prob[j]);
    }
    printf("\ntop attended:");
    for (int t = 0; t < ntop; t++) {
        cli_quote(q, sizeof q, labels[top[t]]);
        printf("  %d %s %.4f", top[t], q, prob[top[t]]);
    }
    printf("\n");
}

static int parse_explain(int argc, char **argv, cli_opts *o, const char **ls, const char **hs, const char **qs,
                         int *full, long *ntop) {
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(o, argc, argv, &i);
        if (r < 0) return cli_exit(CLI_PRINTED);
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (!strcmp(a, "--full")) *full = 1;
        else if (!strcmp(a, "--layer") || !strcmp(a, "--head") || !strcmp(a, "--query")) {
            if (!(v = cli_val(argc, argv, &i))) return cli_exit(CLI_PRINTED);
            *(a[2] == 'l' ? ls : a[2] == 'h' ? hs : qs) = v;
        } else if (!strcmp(a, "--top")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_int(a, v, 1, 1 << 20, ntop)) return cli_exit(CLI_PRINTED);
        } else return cli_bad_opt("explain", a);
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

int cmd_explain(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    const char *ls = NULL, *hs = NULL, *qs = "last", *fmt;
    int full = 0;
    long ntop = 5;
    int r = parse_explain(argc, argv, &o, &ls, &hs, &qs, &full, &ntop);
    if (r) return r;
    if (o.help) { fputs(EXPLAIN_HELP, stdout); return 0; }
    if (cli_format(&o, "table,json", &fmt)) return cli_exit(ATTN_EINPUT);
    if (!ls || !hs) {
        cli_error("explain: give the row with --layer L --head H (and --query I, default the last)");
        return cli_exit(CLI_PRINTED);
    }
    attn_model *m = NULL;
    attn_pool *pool = NULL;
    attn_session *s = NULL;
    int32_t *ids = NULL;
    char **labels = NULL;
    explain_cap c = {0};
    double *dot = NULL, *score = NULL, *prob = NULL;
    int *top = NULL, T = 0, rc = cli_load_model(&o, 0, &m);
    if (!rc) rc = cli_prompt_ids(&o, m, &ids, &T);
    if (!rc) rc = cli_pool(&o, &pool);
    if (!rc) rc = attn_token_labels(m->tok, ids, T, &labels);
    if (rc) goto done;
    const attn_config *cf = &m->cfg;
    if ((c.layer = one_index("--layer", ls, cf->n_layer)) < 0 || (c.head = one_index("--head", hs, cf->n_head)) < 0 ||
        (c.query = one_index("--query", qs, T)) < 0) {
        rc = CLI_PRINTED;
        goto done;
    }
    if (cf->attn_softcap > 0 || attn_layer_window(cf, c.layer)) { // explain_row is q.k / sqrt(hd), causal
        rc = attn_err(ATTN_EINPUT, "explain: layer %d has an attention soft-cap or a sliding window, which explain "
                                   "does not show yet", c.layer);
        goto done;
    }
    c.hd = cf->head_dim;
    c.kv_head = c.head / (cf->n_head / cf->n_head_kv);
    c.q = malloc((size_t)c.hd * sizeof(float));
    c.k = malloc((size_t)T * c.hd * sizeof(float));
    dot = malloc((size_t)T * sizeof *dot), score = malloc((size_t)T * sizeof *score);
    prob = malloc((size_t)T * sizeof *prob), top = malloc((size_t)T * sizeof *top);
    if (!c.q || !c.k || !dot || !score || !prob || !top) { rc = attn_err(ATTN_EFAIL, "out of memory"); goto done; }
    attn_capture cap = {.on_qk = explain_on_qk, .ctx = &c};
    if ((rc = attn_session_new(&s, m, T, pool)) || (rc = attn_session_feed(s, ids, T, NULL, 1, &cap))) goto done;
    explain_row(&c, dot, score, prob);
    int ntop_ = 0; // keys 0..I by probability, highest first (ties: earlier key)
    for (int j = 0; j <= c.query; j++) {
        int t;
        if (ntop_ < ntop) t = ntop_++;
        else if (prob[j] > prob[top[ntop_ - 1]]) t = ntop_ - 1;
        else continue;
        while (t > 0 && prob[j] > prob[top[t - 1]]) top[t] = top[t - 1], t--;
        top[t] = j;
    }
    print_explain(m, &c, labels, T, dot, score, prob, top, ntop_, full, !strcmp(fmt, "json"));
done:
    if (labels) attn_labels_free(labels, T);
    free(c.q), free(c.k), free(dot), free(score), free(prob), free(top), free(ids);
    attn_session_free(s);
    attn_pool_free(pool);
    attn_model_free(m);
    return cli_exit(rc);
}
