// attn_cmd_heads.c - CLI command `attn heads`: head-type scores of every
// layer and head beside a random init of the same architecture and the
// uniform causal baseline; one prompt, a corpus (one prompt per line,
// streamed, mean and spread), or the induction test (random ids repeated).
#include "attn.h"
#include "attn_cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HEADS_SEED 1234 // default seed of the random-init baseline and the induction sequence
#define HEADS_LEN 50    // default ids per repeat of the induction test

static const char HEADS_HELP[] =
    "usage: attn heads [-m FILE] (-p TEXT | -f FILE | --ids 1,2,3) [options]\n"
    "       attn heads [-m FILE] -f FILE --each-line [options]\n"
    "       attn heads [-m FILE] --induction-test [--len N] [options]\n\n"
    "Head-type scores of every layer and head, each beside the same score of a\n"
    "random init of the same architecture (\"rand\") and of uniform causal\n"
    "attention over the same tokens (\"unif\"). A score is the mean, over the\n"
    "query rows i where it is defined, of the attention mass (a fraction, 0..1)\n"
    "that row i puts on its target keys:\n"
    "  previous      key i-1 (rows i >= 1)\n"
    "  first         key 0 (rows i >= 1)\n"
    "  self          key i (rows i >= 1)\n"
    "  induction     keys j+1 where token j equals token i and j+1 < i\n"
    "  duplicate     keys j < i whose token equals token i\n"
    "  offset        key i-k for the best k in 2..8 (k = 1 is `previous`); the\n"
    "                table shows mass@k, JSON \"offset\" (mass) and \"offset_k\"\n"
    "                (positions back)\n"
    "  entropy_bits  mean entropy of the rows, in bits (every row; row 0 is 0)\n"
    "A score with no defined row is shown as \"-\" (null in JSON, empty in TSV),\n"
    "never as 0: e.g. induction and duplicate on a prompt with no repeated token.\n"
    "A score whose rows held NaN or Inf attention (a broken model) is \"nan\"\n"
    "(null in JSON).\n\n"
    "options\n"
    "  --seed S          seed of the random-init baseline and of the induction\n"
    "                    sequence (default 1234, printed)\n"
    "  --by SCORE        sort heads by the model's SCORE, highest first\n"
    "                    (previous|first|self|induction|duplicate|offset|\n"
    "                    entropy_bits)\n"
    "  --asc             with --by: lowest first (--by entropy_bits --asc: the\n"
    "                    sparsest heads, attention on fewest keys, first)\n"
    "  --top N           keep the first N heads after sorting (needs --by)\n"
    "  --layers LIST     only these layers: all (default) or e.g. 0,3,5-7,last\n"
    "  --heads LIST      only these heads, same form\n"
    "  --wide            the full table: model, rand and unif for every score\n"
    "                    (the default table shows model/rand, within 100 columns)\n"
    "  --each-line       with -f FILE (\"-\" = stdin): every non-empty line is its\n"
    "                    own prompt; prints for each score the mean over the\n"
    "                    prompts where it is defined, its sample standard\n"
    "                    deviation (sd, same unit) and that number of prompts (n).\n"
    "                    Streams the file (memory does not grow with the number\n"
    "                    of lines); progress on stderr when it is a terminal or\n"
    "                    ATTN_PROGRESS=1\n"
    "  --induction-test  the prompt is [BOS] + N random distinct token ids, then the\n"
    "                    same N ids again; also prints the model's next-token loss\n"
    "                    on the first and on the second repeat, in nats per token\n"
    "                    (and the random init's)\n"
    "  --len N           ids per repeat for --induction-test (default 50, or as\n"
    "                    many as fit the context)\n"
    "  --no-bos          do not add the BOS token the model would add\n"
    "  --no-special      text such as <|endoftext|> stays text (default: the token)\n"
    "  --format table|tsv|json\n"
    "JSON: {\"model\", \"tokens\", \"ids\", \"baseline_seed\", \"heads\": [{\"layer\", \"head\",\n"
    "  \"scores\", \"baseline\" (random init), \"uniform\"}]}, each scores object\n"
    "  {\"previous\", \"first\", \"self\", \"induction\", \"duplicate\", \"offset\",\n"
    "  \"offset_k\", \"entropy_bits\"}. --each-line: \"n_prompts\", \"n_tokens\",\n"
    "  \"n_empty_lines\" instead of tokens/ids, and per head \"sd\" and \"n\" (prompts\n"
    "  where defined). --induction-test adds \"induction_len\", \"loss\" and\n"
    "  \"baseline_loss\": {\"first_repeat\", \"second_repeat\"} in nats per token.\n"
    "  -t N              threads\n";

// A model with its forward session, regrown when a longer prompt arrives.
// One prompt's forwards (the model's, then the random init's) show a
// progress line on stderr by layer: steps first + l of total (total 0: none).
typedef struct {
    const attn_model *m;
    attn_pool *pool;
    attn_session *s;
    int max_t;
    attn_heads_acc *acc;
    attn_head_scores *sc; // [L * H] scores of the last prompt
    long first, total;    // progress steps
} scorer;

static int scorer_init(scorer *c, const attn_model *m, attn_pool *pool) {
    memset(c, 0, sizeof *c);
    c->m = m;
    c->pool = pool;
    c->sc = malloc((size_t)m->cfg.n_layer * m->cfg.n_head * sizeof *c->sc);
    if (!c->sc) return attn_err(ATTN_EFAIL, "out of memory");
    return attn_heads_acc_new(&c->acc, m->cfg.n_layer, m->cfg.n_head);
}

static void scorer_free(scorer *c) {
    attn_session_free(c->s);
    attn_heads_acc_free(c->acc);
    free(c->sc);
}

static void scorer_on_attn(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p) {
    scorer *c = ctx;
    if (head == 0 && c->total) cli_progress("heads: layers", c->first + layer, c->total);
    attn_heads_acc_on_attn(c->acc, layer, head, q0, nq, nk, p);
}

static int scorer_run(scorer *c, const int32_t *ids, int T, float *logits) {
    if (T > c->max_t) {
        int t = c->max_t ? c->max_t : 64;
        while (t < T) t *= 2;
        if (t > c->m->cfg.n_ctx) t = c->m->cfg.n_ctx;
        attn_session_free(c->s);
        c->s = NULL;
        c->max_t = 0;
        int rc = attn_session_new(&c->s, c->m, t, c->pool);
        if (rc) return rc;
        c->max_t = t;
    }
    attn_heads_acc_reset(c->acc);
    c->acc->ids = ids;
    attn_capture cap = {.on_attn = scorer_on_attn, .ctx = c};
    attn_session_reset(c->s);
    int rc = attn_session_feed(c->s, ids, T, logits, 0, &cap);
    if (!rc) attn_heads_acc_get(c->acc, c->sc);
    if (!rc && c->total && c->first + c->m->cfg.n_layer == c->total) cli_progress("heads: layers", c->total, c->total);
    return rc;
}

// Progress by layer over one prompt's two forwards.
static void scorers_progress(scorer *sm, scorer *sr) {
    sm->total = sr->total = sm->m->cfg.n_layer + sr->m->cfg.n_layer;
    sr->first = sm->m->cfg.n_layer;
}

// What the printers show. Single prompt: model/rnd per head, unif[0] for all
// heads. Corpus: means, sd and n of the model, means of rnd and unif.
typedef struct {
    const attn_model *m;
    uint64_t seed;
    int L, H;
    attn_head_scores *model, *rnd, unif; // model, rnd: [L * H]
    attn_head_scores *sd;                // corpus: [L * H], else NULL
    long (*n)[ATTN_S_N];                 // corpus: [L * H]
    const int32_t *ids;                  // single prompt / induction test
    char **labels;
    int T;
    long n_prompts, n_tokens, n_empty;   // corpus
    int ind_len;                         // induction test: ids per repeat (0: not the test)
    double loss[2], loss_rnd[2];
} heads_out;

// ---------------------------------------------------------------- JSON

static void json_counts(const long *n) {
    printf("{");
    for (int s = 0; s < ATTN_S_N; s++) printf("%s\"%s\": %ld", s ? ", " : "", attn_score_names[s], n[s]);
    printf("}");
}

static void print_json(const heads_out *r, const int *order, int n_order) {
    cli_json_open_model(r->m->name);
    if (r->labels) {
        printf(", \"tokens\": [");
        for (int i = 0; i < r->T; i++) {
            if (i) printf(", ");
            attn_json_str(stdout, r->labels[i]);
        }
        printf("], \"ids\": [");
        for (int i = 0; i < r->T; i++) printf("%s%d", i ? ", " : "", r->ids[i]);
        printf("]");
    } else {
        printf(", \"n_prompts\": %ld, \"n_tokens\": %ld, \"n_empty_lines\": %ld", r->n_prompts, r->n_tokens,
               r->n_empty);
    }
    printf(", \"baseline_seed\": %llu", (unsigned long long)r->seed);
    if (r->ind_len) {
        printf(", \"induction_len\": %d, \"loss\": {\"first_repeat\": ", r->ind_len);
        attn_json_num(stdout, r->loss[0]);
        printf(", \"second_repeat\": ");
        attn_json_num(stdout, r->loss[1]);
        printf("}, \"baseline_loss\": {\"first_repeat\": ");
        attn_json_num(stdout, r->loss_rnd[0]);
        printf(", \"second_repeat\": ");
        attn_json_num(stdout, r->loss_rnd[1]);
        printf("}");
    }
    printf(", \"heads\": [");
    for (int k = 0; k < n_order; k++) {
        int i = order[k];
        printf("%s\n  {\"layer\": %d, \"head\": %d, \"scores\": ", k ? "," : "", i / r->H, i % r->H);
        attn_json_scores(stdout, &r->model[i]);
        if (r->sd) {
            printf(", \"sd\": ");
            attn_json_scores(stdout, &r->sd[i]);
            printf(", \"n\": ");
            json_counts(r->n[i]);
        }
        printf(", \"baseline\": ");
        attn_json_scores(stdout, &r->rnd[i]);
        printf(", \"uniform\": ");
        attn_json_scores(stdout, &r->unif);
        printf("}");
    }
    printf("\n]}\n");
}

// ---------------------------------------------------------------- TSV and table

// A score as text: "nan" when its rows held non-finite attention, "-" (table)
// or "" (TSV) when undefined; offset as mass@k in the table.
static void fmt_score(char *b, size_t n, const attn_head_scores *h, int s, int table) {
    double v = h->s[s];
    if (h->nonfinite >> s & 1) snprintf(b, n, "nan");
    else if (isnan(v)) snprintf(b, n, "%s", table ? "-" : "");
    else if (s == ATTN_S_OFFSET && table) snprintf(b, n, "%.3f@%d", v, h->offset_k);
    else snprintf(b, n, table ? "%.3f" : "%.6g", v);
}

static void print_tsv(const heads_out *r, const int *order, int n_order) {
    static const char *const col[3] = {"", "_random", "_uniform"};
    printf("layer\thead");
    for (int s = 0; s < ATTN_S_N; s++) {
        if (r->sd) printf("\t%s\t%s_sd\t%s_n", attn_score_names[s], attn_score_names[s], attn_score_names[s]);
        for (int c = r->sd ? 1 : 0; c < 3; c++) {
            printf("\t%s%s", attn_score_names[s], col[c]);
            if (s == ATTN_S_OFFSET) printf("\toffset_k%s", col[c]);
        }
        if (r->sd && s == ATTN_S_OFFSET) printf("\toffset_k"); // k of the mean
    }
    printf("\n");
    char b[64];
    for (int k = 0; k < n_order; k++) {
        int i = order[k];
        printf("%d\t%d", i / r->H, i % r->H);
        const attn_head_scores *hs[3] = {&r->model[i], &r->rnd[i], &r->unif};
        for (int s = 0; s < ATTN_S_N; s++) {
            if (r->sd) {
                fmt_score(b, sizeof b, hs[0], s, 0);
                printf("\t%s", b);
                fmt_score(b, sizeof b, &r->sd[i], s, 0);
                printf("\t%s\t%ld", b, r->n[i][s]);
            }
            for (int c = r->sd ? 1 : 0; c < 3; c++) {
                fmt_score(b, sizeof b, hs[c], s, 0);
                printf("\t%s", b);
                if (s == ATTN_S_OFFSET) {
                    if (hs[c]->offset_k) printf("\t%d", hs[c]->offset_k);
                    else printf("\t");
                }
            }
            if (r->sd && s == ATTN_S_OFFSET) {
                if (hs[0]->offset_k) printf("\t%d", hs[0]->offset_k);
                else printf("\t");
            }
        }
        printf("\n");
    }
}

// Print s right-aligned in w display columns (UTF-8 aware: "±").
static void pad(const char *s, int w) {
    int cols = 0;
    for (const char *p = s; *p; p++) cols += ((unsigned char)*p & 0xC0) != 0x80;
    printf("%*s%s", w > cols ? w - cols : 0, "", s);
}

static void print_preamble(const heads_out *r) {
    const attn_config *c = &r->m->cfg;
    printf("model \"%s\": %d layers x %d heads", r->m->name, c->n_layer, c->n_head);
    if (r->labels) printf(", %d tokens\n", r->T);
    else printf("; %ld prompts (non-empty lines), %ld tokens\n", r->n_prompts, r->n_tokens);
    if (r->ind_len) {
        printf("induction test: %d random ids (seed %llu) repeated twice%s\n", r->ind_len,
               (unsigned long long)r->seed, r->T > 2 * r->ind_len ? ", after BOS" : "");
        printf("loss, nats/token: model first repeat %.4f, second repeat %.4f; random init %.4f, %.4f\n",
               r->loss[0], r->loss[1], r->loss_rnd[0], r->loss_rnd[1]);
    }
    printf("rand = random init of the same architecture (seed %llu), unif = uniform causal attention\n",
           (unsigned long long)r->seed);
    printf("scores: attention mass on the target keys (0..1), mean over the rows where defined;\n"
           "offset as mass@k (key i-k, best k in 2..8); entropy in bits; - = no row where defined");
    int bad = 0;
    for (int i = 0; i < r->L * r->H; i++) bad |= r->model[i].nonfinite != 0 || r->rnd[i].nonfinite != 0;
    if (bad) printf(";\nnan = the head's attention held NaN or Inf (stderr says where it first appeared)");
    if (r->sd) printf(";\nmodel = mean ± sample sd over the prompts where defined; rand, unif = means");
    printf("\n\n");
}

// The default table (fits 100 columns): each cell model/rand, the random
// init's score with two decimals; --wide shows print_table.
static void print_compact(const heads_out *r, const int *order, int n_order) {
    print_preamble(r);
    printf("cells: model/rand (--wide: also unif%s)\n\nlayer head", r->sd ? " and the sd" : "");
    for (int s = 0; s < ATTN_S_N; s++) pad(s == ATTN_S_ENTROPY ? "entropy" : attn_score_names[s], s == ATTN_S_OFFSET ? 14 : 12);
    printf("\n");
    char b[64], cell[160];
    for (int k = 0; k < n_order; k++) {
        int i = order[k];
        printf("%5d %4d", i / r->H, i % r->H);
        for (int s = 0; s < ATTN_S_N; s++) {
            fmt_score(b, sizeof b, &r->model[i], s, 1);
            double x = r->rnd[i].s[s];
            snprintf(cell, sizeof cell, isnan(x) ? "%s/-" : "%s/%.2f", b, x);
            pad(cell, s == ATTN_S_OFFSET ? 14 : 12);
        }
        printf("\n");
    }
}

static void print_table(const heads_out *r, const int *order, int n_order) {
    print_preamble(r);
    int wm = r->sd ? 14 : 8, w = 8; // column widths: model, baselines
    printf("%10s", "");
    for (int s = 0; s < ATTN_S_N; s++) {
        char head[64];
        int gw = wm + 2 * w, n = (int)strlen(attn_score_names[s]);
        int left = (gw - n) / 2;
        snprintf(head, sizeof head, "%.*s%s%.*s", left - 1, "-------------------", attn_score_names[s],
                 gw - n - left - 1, "---------------------");
        printf("  %*s", gw, head);
    }
    printf("\nlayer head");
    for (int s = 0; s < ATTN_S_N; s++) {
        printf("  ");
        pad("model", wm);
        pad("rand", w);
        pad("unif", w);
    }
    printf("\n");
    char b[64], b2[64], cell[160];
    for (int k = 0; k < n_order; k++) {
        int i = order[k];
        printf("%5d %4d", i / r->H, i % r->H);
        for (int s = 0; s < ATTN_S_N; s++) {
            printf("  ");
            fmt_score(b, sizeof b, &r->model[i], s, 1);
            if (r->sd && !isnan(r->model[i].s[s])) {
                snprintf(b2, sizeof b2, "%.3f", r->sd[i].s[s]);
                snprintf(cell, sizeof cell, "%s±%s", b, b2);
                pad(cell, wm);
            } else pad(b, wm);
            fmt_score(b, sizeof b, &r->rnd[i], s, 1);
            pad(b, w);
            fmt_score(b, sizeof b, &r->unif, s, 1);
            pad(b, w);
        }
        printf("\n");
    }
}

// ---------------------------------------------------------------- sorting

static const attn_head_scores *sort_scores;
static int sort_by, sort_asc;

// Highest first, undefined last, ties in layer/head order.
static int by_score(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    double x = sort_scores[i].s[sort_by], y = sort_scores[j].s[sort_by];
    if (isnan(x) != isnan(y)) return isnan(x) ? 1 : -1;
    if (!isnan(x) && x != y) return (x > y ? -1 : 1) * (sort_asc ? -1 : 1);
    return i - j;
}

// ---------------------------------------------------------------- modes

static int run_corpus(const cli_opts *o, scorer *sm, scorer *sr, heads_out *r) {
    int LH = r->L * r->H, rc = 0;
    attn_head_stats *st = calloc((size_t)2 * LH + 1, sizeof *st); // model [LH], rnd [LH], unif
    if (!st) return attn_err(ATTN_EFAIL, "out of memory");
    cli_lines it;
    int32_t *ids;
    int T;
    if ((rc = cli_lines_open(&it, o, sm->m, 1))) { free(st); return rc; }
    while (!(rc = cli_lines_next(&it, &ids, &T)) && ids) {
        rc = scorer_run(sm, ids, T, NULL);
        if (!rc) rc = scorer_run(sr, ids, T, NULL);
        if (rc) {
            rc = cli_lines_fail(&it, rc);
            free(ids);
            break;
        }
        attn_head_scores u;
        attn_head_scores_uniform(ids, T, &u);
        for (int i = 0; i < LH; i++) {
            attn_head_stats_add(&st[i], &sm->sc[i]);
            attn_head_stats_add(&st[LH + i], &sr->sc[i]);
        }
        attn_head_stats_add(&st[2 * LH], &u);
        r->n_prompts++;
        r->n_tokens += T;
        free(ids);
        if (it.total) cli_progress("heads: lines", it.lineno, it.total);
    }
    r->n_empty = it.n_empty;
    rc = cli_lines_close(&it, rc);
    if (!rc && !r->n_prompts) rc = attn_err(ATTN_EINPUT, "%s: no non-empty line", o->prompt_file);
    if (!rc)
        for (int i = 0; i < LH; i++) {
            attn_head_stats_get(&st[i], &r->model[i], &r->sd[i], r->n[i]);
            attn_head_stats_get(&st[LH + i], &r->rnd[i], NULL, NULL);
        }
    if (!rc) attn_head_stats_get(&st[2 * LH], &r->unif, NULL, NULL);
    free(st);
    return rc;
}

static int run_induction(const cli_opts *o, long len, scorer *sm, scorer *sr, heads_out *r, int32_t **ids_out) {
    const attn_model *m = sm->m;
    int bos = (!o->no_bos && attn_tokenizer_adds_bos(m->tok)) ? attn_tokenizer_bos(m->tok) : -1;
    int b = bos >= 0, fit = (m->cfg.n_ctx - b) / 2;
    if (fit < 1) return attn_err(ATTN_EINPUT, "--induction-test: the context of %d is too short", m->cfg.n_ctx);
    if (len == 0) len = fit < HEADS_LEN ? fit : HEADS_LEN;
    if (len > fit)
        return attn_err(ATTN_EINPUT, "--len %ld: two repeats%s need %ld positions, the context has %d", len,
                        b ? " and BOS" : "", 2 * len + b, m->cfg.n_ctx);
    int V = m->cfg.n_vocab, T = b + 2 * (int)len;
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    float *logits = malloc((size_t)T * V * sizeof *logits);
    int rc = 0;
    if (!ids || !logits) rc = attn_err(ATTN_EFAIL, "out of memory for %d x %d logits", T, V);
    if (!rc) {
        attn_induction_ids(ids, V, (int)len, r->seed, bos, attn_tokenizer_eos(m->tok));
        rc = scorer_run(sm, ids, T, logits);
    }
    // first repeat: positions b..b+len-1 (position 0 has no prediction), second: b+len..T-1
    if (!rc) {
        r->loss[0] = attn_mean_nll(logits, V, ids, b ? b : 1, b + (int)len);
        r->loss[1] = attn_mean_nll(logits, V, ids, b + (int)len, T);
        rc = scorer_run(sr, ids, T, logits);
    }
    if (!rc) {
        r->loss_rnd[0] = attn_mean_nll(logits, V, ids, b ? b : 1, b + (int)len);
        r->loss_rnd[1] = attn_mean_nll(logits, V, ids, b + (int)len, T);
        r->ind_len = (int)len;
        r->T = T;
    }
    free(logits);
    if (rc) free(ids);
    else *ids_out = ids;
    return rc;
}

// ---- options -> result (heads_out) -> print

typedef struct {
    cli_opts o;
    const char *fmt;                 // table, tsv or json
    long seed, top, len;             // --seed, --top, --len
    int each_line, induction, by, asc, wide; // by: score index, -1 without --by
} heads_opts;

// The model and its random-init twin, each with a scorer.
typedef struct {
    attn_model *m, *rnd;
    attn_pool *pool;
    int32_t *ids;
    scorer sm, sr;
    int *order, n_order; // the heads shown, in order
} heads_run;

typedef struct {
    heads_run run; // the models, scorers and order
    heads_out out; // what is printed
} heads_result;

static int heads_opt(void *p, const char *a, int argc, char **argv, int *i) {
    heads_opts *ho = p;
    const char *v;
    if (!strcmp(a, "--each-line")) return ho->each_line = 1;
    if (!strcmp(a, "--induction-test")) return ho->induction = 1;
    if (!strcmp(a, "--asc")) return ho->asc = 1;
    if (!strcmp(a, "--wide")) return ho->wide = 1;
    if (!strcmp(a, "--seed")) return cli_opt_int(argc, argv, i, 0, 0x7fffffffL, &ho->seed);
    if (!strcmp(a, "--top")) return cli_opt_int(argc, argv, i, 1, 1L << 30, &ho->top);
    if (!strcmp(a, "--len")) return cli_opt_int(argc, argv, i, 1, 1L << 20, &ho->len);
    if (strcmp(a, "--by")) return 0;
    if (!(v = cli_val(argc, argv, i))) return CLI_PRINTED;
    if ((ho->by = attn_score_index(v)) >= 0) return 1;
    cli_error("heads: --by %s: expected previous, first, self, induction, duplicate, offset or entropy_bits", v);
    return CLI_PRINTED;
}

static int heads_parse(int argc, char **argv, heads_opts *ho) {
    ho->seed = HEADS_SEED, ho->by = -1, ho->o.select = 1;
    if (cli_parse_opts(&ho->o, argc, argv, heads_opt, ho)) return CLI_PRINTED;
    return ho->o.help ? 0 : cli_format(&ho->o, "table,tsv,json", &ho->fmt);
}

// The option combinations that make no sense, said before any work.
static int heads_check(const heads_opts *ho) {
    const cli_opts *o = &ho->o;
    const char *bad = NULL;
    if (ho->top && ho->by < 0) bad = "--top needs --by SCORE";
    else if (ho->asc && ho->by < 0) bad = "--asc needs --by SCORE";
    else if (ho->each_line && !o->prompt_file) bad = "--each-line needs -f FILE";
    else if (ho->each_line && (o->prompt || o->ids)) bad = "--each-line takes its prompts from -f FILE only";
    else if (ho->induction && (o->prompt || o->prompt_file || o->ids)) bad = "--induction-test makes its own prompt: drop -p/-f/--ids";
    else if (ho->induction && ho->each_line) bad = "--induction-test and --each-line do not go together";
    else if (ho->len && !ho->induction) bad = "--len is for --induction-test";
    if (bad) {
        cli_error("heads: %s", bad);
        return CLI_PRINTED;
    }
    return 0;
}

// The scores of one prompt (-p/-f/--ids or --induction-test) or of a corpus.
static int heads_score(const heads_opts *ho, heads_run *hr, heads_out *r) {
    int LH = r->L * r->H, rc;
    if (ho->each_line) {
        r->sd = malloc((size_t)LH * sizeof *r->sd);
        r->n = malloc((size_t)LH * sizeof *r->n);
        return r->sd && r->n ? run_corpus(&ho->o, &hr->sm, &hr->sr, r) : attn_err(ATTN_EFAIL, "out of memory");
    }
    scorers_progress(&hr->sm, &hr->sr);
    if (ho->induction) rc = run_induction(&ho->o, ho->len, &hr->sm, &hr->sr, r, &hr->ids);
    else {
        rc = cli_prompt_ids(&ho->o, hr->m, &hr->ids, &r->T);
        if (!rc) rc = scorer_run(&hr->sm, hr->ids, r->T, NULL);
        if (!rc) rc = scorer_run(&hr->sr, hr->ids, r->T, NULL);
    }
    if (!rc) {
        attn_head_scores_uniform(hr->ids, r->T, &r->unif);
        r->ids = hr->ids;
        rc = attn_token_labels(hr->m->tok, hr->ids, r->T, &r->labels);
    }
    return rc;
}

// The heads chosen by --layers/--heads, sorted by --by, cut at --top.
static int heads_order(const heads_opts *ho, heads_run *hr, const heads_out *r) {
    uint8_t lmask[4096], hmask[4096];
    if (r->L > 4096 || r->H > 4096) return attn_err(ATTN_EINPUT, "more than 4096 layers or heads");
    if (cli_select(&ho->o, r->L, r->H, lmask, hmask)) return CLI_PRINTED;
    hr->n_order = 0;
    for (int i = 0; i < r->L * r->H; i++)
        if (lmask[i / r->H] && hmask[i % r->H]) hr->order[hr->n_order++] = i;
    if (ho->by >= 0) {
        sort_scores = r->model;
        sort_by = ho->by;
        sort_asc = ho->asc;
        qsort(hr->order, hr->n_order, sizeof *hr->order, by_score);
        if (ho->top && ho->top < hr->n_order) hr->n_order = (int)ho->top;
    }
    return 0;
}

static int heads_models(const heads_opts *ho, heads_run *hr, heads_out *r) {
    int rc = cli_setup(&ho->o, &hr->m, &hr->pool, NULL, NULL, NULL);
    if (!rc) rc = attn_model_random(&hr->rnd, hr->m, (uint64_t)ho->seed, hr->pool);
    if (!rc) rc = scorer_init(&hr->sm, hr->m, hr->pool);
    if (!rc) rc = scorer_init(&hr->sr, hr->rnd, hr->pool);
    if (rc) return rc;
    r->m = hr->m;
    r->seed = (uint64_t)ho->seed;
    r->L = hr->m->cfg.n_layer;
    r->H = hr->m->cfg.n_head;
    r->model = hr->sm.sc;
    r->rnd = hr->sr.sc;
    if (!(hr->order = malloc((size_t)r->L * r->H * sizeof *hr->order))) return attn_err(ATTN_EFAIL, "out of memory");
    if ((rc = heads_score(ho, hr, r))) return rc;
    return heads_order(ho, hr, r);
}

static int print_heads(const heads_result *res, const heads_opts *ho) {
    const heads_out *r = &res->out;
    const heads_run *hr = &res->run;
    if (!strcmp(ho->fmt, "json")) print_json(r, hr->order, hr->n_order);
    else if (!strcmp(ho->fmt, "tsv")) print_tsv(r, hr->order, hr->n_order);
    else if (ho->wide) print_table(r, hr->order, hr->n_order);
    else print_compact(r, hr->order, hr->n_order);
    return fflush(stdout) || ferror(stdout) ? attn_err(ATTN_EFAIL, "stdout: write failed") : 0;
}

static int heads_compute(const heads_opts *ho, heads_result *r) {
    int rc = heads_check(ho);
    return rc ? rc : heads_models(ho, &r->run, &r->out);
}

static void heads_result_free(heads_result *r) {
    if (r->out.labels) attn_labels_free(r->out.labels, r->out.T);
    free(r->out.sd);
    free(r->out.n);
    free(r->run.order);
    free(r->run.ids);
    scorer_free(&r->run.sm);
    scorer_free(&r->run.sr);
    attn_model_free(r->run.rnd);
    attn_model_free(r->run.m);
    attn_pool_free(r->run.pool);
}

CLI_COMMAND(heads, heads, "head-type scores for every head, against a random-init baseline", HEADS_HELP);
