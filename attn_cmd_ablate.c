// attn_cmd_ablate.c - CLI command `attn ablate`: the next-token loss with
// heads' outputs z zeroed or mean-replaced, every head on its own or a set
// together; one prompt, the induction test, or a corpus (one prompt per
// line, streamed). Also the CLI helpers of the causal commands: head lists
// (L.H,...) and single tokens (TEXT or #ID).
#include "attn.h"
#include "attn_cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char ABLATE_HELP[] =
    "usage: attn ablate [-m FILE] (-p TEXT | -f FILE | --ids 1,2,3) [options]\n"
    "       attn ablate [-m FILE] -f FILE --each-line [options]\n"
    "       attn ablate [-m FILE] --induction-test [--len N] [options]\n\n"
    "Removes heads and measures what breaks. A head's output z (its\n"
    "attention-weighted sum of values, value bias included, before the output\n"
    "projection) is replaced at every position. The loss is the prompt's mean\n"
    "next-token loss in nats per token (positions 0..T-2 predicting 1..T-1).\n"
    "Without --heads every head is ablated on its own: per head the loss with\n"
    "it ablated and delta = ablated - clean loss (nats/token; > 0: the model\n"
    "needs the head), sorted by delta, largest first.\n\n"
    "options\n"
    "  --heads L.H,...    ablate these heads (layer.head) together instead;\n"
    "                     prints the loss and the top-k next-token table at the\n"
    "                     last position (probability 0..1, raw logit), before\n"
    "                     and after\n"
    "  --mode zero|mean   zero: z = 0 (default); mean: z replaced by its mean over\n"
    "                     the prompt's positions in the unablated run\n"
    "  --each-line        with -f FILE: every non-empty line is a prompt; losses\n"
    "                     are over all the file's predicted tokens, means over all\n"
    "                     its positions (--mode mean reads the file twice)\n"
    "  --induction-test   the prompt is [BOS] + N random distinct ids, then the\n"
    "                     same N ids again; also prints the loss on the first and\n"
    "                     on the second repeat (nats/token)\n"
    "  --len N, --seed S  ids per repeat (default 50) and their seed (1234)\n"
    "  -k N               candidates in the --heads table (default 5)\n"
    "  --no-bos           do not add the BOS token the model would add\n"
    "  --no-special       text such as <|endoftext|> stays text (default: the token)\n"
    "  --format table|tsv|json\n"
    "JSON: {\"model\", \"tokens\" (positions), \"mode\", \"loss\" (clean), \"heads\":\n"
    "  [{\"layer\", \"head\", \"loss\", \"delta_loss\"}]}; with --heads one entry with\n"
    "  \"heads\": [[l, h], ...] for the set; --induction-test adds \"repeats\":\n"
    "  {\"clean\": [first, second], \"ablated\": [first, second]} (--heads only).\n"
    "  -t N               threads\n";

// ---------------------------------------------------------------- CLI helpers

int cli_head_pairs(const char *opt, const char *val, const attn_model *m, int **out, int *n) {
    const attn_config *c = &m->cfg;
    int cap = 8, k = 0, *v = malloc(cap * sizeof *v);
    if (!v) return attn_err(ATTN_EFAIL, "out of memory");
    for (const char *p = val; *p;) {
        char *e1, *e2;
        errno = 0;
        long l = strtol(p, &e1, 10), h = *e1 == '.' ? strtol(e1 + 1, &e2, 10) : -1;
        if (*e1 != '.' || e2 == e1 + 1 || errno || (*e2 && *e2 != ',')) {
            free(v);
            return attn_err(ATTN_EINPUT, "%s %s: expected layer.head pairs such as 0.3,1.2", opt, val);
        }
        if (l < 0 || l >= c->n_layer || h < 0 || h >= c->n_head) {
            free(v);
            return attn_err(ATTN_EINPUT, "%s: head %ld.%ld: the model has layers 0..%d, heads 0..%d", opt, l, h,
                            c->n_layer - 1, c->n_head - 1);
        }
        if (k == cap && !(v = realloc(v, (cap *= 2) * sizeof *v))) return attn_err(ATTN_EFAIL, "out of memory");
        v[k++] = (int)(l * c->n_head + h);
        p = *e2 ? e2 + 1 : e2;
    }
    if (!k) {
        free(v);
        return attn_err(ATTN_EINPUT, "%s: no heads given", opt);
    }
    *out = v;
    *n = k;
    return 0;
}

int cli_token(const attn_model *m, const char *opt, const char *val, int32_t *id) {
    if (val[0] == '#' && val[1]) {
        long x;
        char *end;
        errno = 0;
        x = strtol(val + 1, &end, 10);
        if (*end || errno || x < 0 || x >= m->cfg.n_vocab)
            return attn_err(ATTN_EINPUT, "%s %s: not a token id in 0..%d", opt, val, m->cfg.n_vocab - 1);
        *id = (int32_t)x;
        return 0;
    }
    int32_t *ids;
    int n;
    int rc = attn_tokenize(m->tok, val, strlen(val), 0, &ids, &n);
    if (rc) return rc;
    if (n != 1) {
        free(ids);
        return attn_err(ATTN_EINPUT, "%s '%s' is %d tokens, not one (give #ID for a token id)", opt, val, n);
    }
    *id = ids[0];
    free(ids);
    return 0;
}

// ---------------------------------------------------------------- ablation runs

// A model, its session (regrown for longer prompts), the recorded clean run
// and the sums of the losses of every set of heads. Sets that start at the
// same layer run together, up to `runs` of them in one pass
// (attn_session_run_from).
typedef struct {
    attn_model *m;                  // (owned, as pool)
    attn_pool *pool;
    attn_session *s;
    int max_t, mean_mode, own_mean; // own_mean: the mean is each prompt's own
    int runs;                       // sets in one pass at most
    float *resid;                   // (L, max_t, D) residual entering each layer, clean run
    float *xr;                      // (runs, max_t, D) a pass's input
    attn_edits *ed;                 // [runs] a pass's edit lists
    attn_capture *caps;             // [runs] their captures
    float *logits, *last;           // (runs x max_t, V); clean last row (V)
    double *nll, *zsum;             // (max_t); (L, qd) sum of z over positions
    long zn;                        // positions summed into zsum
    float *zmean;                   // (L, qd)
    int n_sets, *set_of, *set_n;    // set k: heads set_of[k * max_set ..], set_n[k] of them
    int max_set;
    attn_edit *edits;               // [runs x max_set]
    double clean_sum, *sum;         // summed nll of the clean run, of each set
    long n_pred;                    // predicted positions summed
    int T;                          // positions of the last prompt
    int rep_len, rep_b;             // --induction-test: repeat length and BOS count
    double rep[2][2];               // [clean, ablated][first, second] summed nll
    int rep_n[2];                   // positions in the first, second repeat
} abl;

static void abl_record(void *ctx, int kind, int layer, int q0, int nq, float *x) {
    abl *a = ctx;
    const attn_config *c = &a->m->cfg;
    int D = c->n_embd, qd = c->n_head * c->head_dim;
    if (kind == ATTN_ACT_RESID_PRE)
        memcpy(a->resid + ((size_t)layer * a->max_t + q0) * D, x, (size_t)nq * D * 4);
    if (kind == ATTN_ACT_Z && a->zsum)
        for (int i = 0; i < nq; i++)
            for (int j = 0; j < qd; j++) a->zsum[(size_t)layer * qd + j] += x[(size_t)i * qd + j];
}

// Sets in one pass for prompts of T positions (attn_runs_per_pass; TinyLlama
// shape Q4_K_M, 19 positions, 704 heads: 64 s one by one, 46 s so), at most
// a layer's heads, a pass's logits within ABL_LOGITS bytes.
#define ABL_LOGITS ((size_t)256 << 20)
static int abl_runs_for(const abl *a, int T) {
    const attn_config *c = &a->m->cfg;
    size_t by_logits = ABL_LOGITS / ((size_t)T * c->n_vocab * 4);
    int most = c->n_head < a->n_sets ? c->n_head : a->n_sets;
    return attn_runs_per_pass(T, (size_t)most > by_logits ? (int)by_logits : most);
}

static int abl_grow(abl *a, int T) {
    if (T <= a->max_t) return 0;
    const attn_config *c = &a->m->cfg;
    attn_session_free(a->s);
    a->s = NULL;
    free(a->resid); free(a->logits); free(a->nll); free(a->xr); free(a->edits); free(a->ed); free(a->caps);
    int R = a->runs = abl_runs_for(a, T);
    a->resid = malloc((size_t)c->n_layer * T * c->n_embd * 4);
    a->logits = malloc((size_t)R * T * c->n_vocab * 4);
    a->nll = malloc((size_t)T * sizeof *a->nll);
    a->xr = malloc((size_t)R * T * c->n_embd * 4);
    a->edits = malloc((size_t)R * a->max_set * sizeof *a->edits);
    a->ed = malloc((size_t)R * sizeof *a->ed);
    a->caps = malloc((size_t)R * sizeof *a->caps);
    a->max_t = T;
    if (!a->resid || !a->logits || !a->nll || !a->xr || !a->edits || !a->ed || !a->caps)
        return attn_err(ATTN_EFAIL, "out of memory for %d positions", T);
    return attn_session_new_runs(&a->s, a->m, T, R, a->pool);
}

static void abl_zmean(abl *a) {
    const attn_config *c = &a->m->cfg;
    size_t n = (size_t)c->n_layer * c->n_head * c->head_dim;
    for (size_t i = 0; i < n; i++) a->zmean[i] = (float)(a->zsum[i] / (a->zn ? a->zn : 1));
}

// The clean run of ids only adding to zsum (pass 1 of --each-line --mode mean).
static int abl_mean_pass(abl *a, const int32_t *ids, int T) {
    int rc = abl_grow(a, T);
    attn_capture cap = { .on_act = abl_record, .ctx = a };
    attn_session_reset(a->s);
    if (!rc) rc = attn_session_feed(a->s, ids, T, NULL, 0, &cap);
    a->zn += T;
    return rc;
}

// Repeat-wise sums of nll (first repeat, second repeat) into r[2].
static void abl_repeats(abl *a, int T, double *r) {
    a->rep_n[0] = a->rep_n[1] = 0;
    for (int t = 1; t < T; t++) {
        int k = t >= a->rep_b + a->rep_len ? 1 : t >= (a->rep_b ? a->rep_b : 1) ? 0 : -1;
        if (k >= 0) r[k] += a->nll[t - 1], a->rep_n[k]++;
    }
}

// The first layer of set k's heads.
static int abl_set_from(const abl *a, int k) {
    int from = a->m->cfg.n_layer;
    for (int j = 0; j < a->set_n[k]; j++) {
        int l = a->set_of[k * a->max_set + j] / a->m->cfg.n_head;
        if (l < from) from = l;
    }
    return from;
}

// Sets k..k+nr-1, all starting at layer `from`, ablated in one pass from the
// clean run's residual there; their losses summed.
static int abl_pass(abl *a, const int32_t *ids, int T, int k, int nr, int from) {
    const attn_config *c = &a->m->cfg;
    int H = c->n_head, hd = c->head_dim, qd = H * hd, V = c->n_vocab, D = c->n_embd;
    for (int b = 0; b < nr; b++) {
        attn_edit *e = a->edits + (size_t)b * a->max_set;
        for (int j = 0; j < a->set_n[k + b]; j++) {
            int lh = a->set_of[(k + b) * a->max_set + j], l = lh / H, h = lh % H;
            e[j] = (attn_edit){ ATTN_ACT_Z, l, -1, h * hd, hd, a->mean_mode ? a->zmean + (size_t)l * qd + h * hd : NULL, 0 };
        }
        attn_edits_init(&a->ed[b], a->m, e, a->set_n[k + b]);
        a->caps[b] = (attn_capture){ .on_act = attn_edits_on_act, .ctx = &a->ed[b] };
        memcpy(a->xr + (size_t)b * T * D, a->resid + (size_t)from * a->max_t * D, (size_t)T * D * 4);
    }
    int rc = attn_session_run_from(a->s, from, a->xr, T, nr, a->logits, 0, a->caps);
    for (int b = 0; !rc && b < nr; b++) {
        a->sum[k + b] += attn_nll_rows(a->logits + (size_t)b * T * V, V, ids, T, a->pool, a->nll) * (T - 1);
        if (a->rep_len) abl_repeats(a, T, a->rep[1]);
    }
    return rc;
}

// One prompt: the clean run, then every set ablated; losses summed.
static int abl_prompt(abl *a, const int32_t *ids, int T) {
    const attn_config *c = &a->m->cfg;
    int H = c->n_head, hd = c->head_dim, qd = H * hd, V = c->n_vocab;
    int rc = abl_grow(a, T);
    if (rc) return rc;
    if (a->own_mean) {
        memset(a->zsum, 0, (size_t)c->n_layer * qd * sizeof *a->zsum);
        a->zn = T;
    }
    attn_capture rec = { .on_act = abl_record, .ctx = a };
    double *zs = a->zsum;
    if (!a->own_mean) a->zsum = NULL; // the corpus mean is fixed: do not add to it
    attn_session_reset(a->s);
    rc = attn_session_feed(a->s, ids, T, a->logits, 0, &rec);
    a->zsum = zs;
    if (rc) return rc;
    if (a->own_mean) abl_zmean(a);
    memcpy(a->last, a->logits + (size_t)(T - 1) * V, (size_t)V * 4);
    a->clean_sum += attn_nll_rows(a->logits, V, ids, T, a->pool, a->nll) * (T - 1);
    if (a->rep_len) abl_repeats(a, T, a->rep[0]);
    cli_progress("ablate: heads", 0, a->n_sets);
    for (int k = 0; k < a->n_sets && !rc;) { // the sets from one layer in passes of about equal size
        int from = abl_set_from(a, k), left = 1;
        while (k + left < a->n_sets && abl_set_from(a, k + left) == from) left++;
        int passes = (left + a->runs - 1) / a->runs, nr = (left + passes - 1) / passes;
        rc = abl_pass(a, ids, T, k, nr, from);
        k += nr;
        cli_progress("ablate: heads", k, a->n_sets);
    }
    if (rc) return rc;
    a->n_pred += T - 1;
    a->T = T;
    return 0;
}

// Every non-empty line of the -f file through fn (the lines' count in *n_lines).
static int abl_lines(const cli_opts *o, abl *a, int (*fn)(abl *, const int32_t *, int), long *n_lines, long *n_tok) {
    cli_lines it;
    int32_t *ids;
    int T, rc = cli_lines_open(&it, o, a->m, 0);
    while (!rc && !(rc = cli_lines_next(&it, &ids, &T)) && ids) {
        if (T < 2) rc = cli_lines_fail(&it, attn_err(ATTN_EINPUT, "one token predicts nothing"));
        if (!rc && (rc = fn(a, ids, T))) rc = cli_lines_fail(&it, rc);
        (*n_lines)++;
        *n_tok += T;
        free(ids);
    }
    rc = cli_lines_close(&it, rc);
    if (!rc && !*n_lines) rc = attn_err(ATTN_EINPUT, "%s: no non-empty line", o->prompt_file);
    return rc;
}

static int abl_sets(abl *a, const int *heads, int n_heads) {
    int LH = a->m->cfg.n_layer * a->m->cfg.n_head;
    a->n_sets = heads ? 1 : LH;
    a->max_set = heads ? n_heads : 1;
    a->set_of = malloc((size_t)a->n_sets * a->max_set * sizeof(int));
    a->set_n = malloc((size_t)a->n_sets * sizeof(int));
    a->sum = calloc((size_t)a->n_sets, sizeof(double));
    if (!a->set_of || !a->set_n || !a->sum) return attn_err(ATTN_EFAIL, "out of memory");
    for (int k = 0; k < a->n_sets; k++) {
        a->set_n[k] = a->max_set;
        for (int j = 0; j < a->max_set; j++) a->set_of[k * a->max_set + j] = heads ? heads[j] : k;
    }
    return 0;
}

static void abl_free(abl *a) {
    attn_session_free(a->s);
    free(a->resid); free(a->logits); free(a->last); free(a->nll); free(a->zsum); free(a->zmean);
    free(a->set_of); free(a->set_n); free(a->sum); free(a->edits); free(a->xr); free(a->ed); free(a->caps);
}

// The induction-test prompt: [BOS] + len random ids + the same ids again.
static int abl_induction(const cli_opts *o, abl *a, long len, long seed, int32_t **ids, int *T) {
    const attn_model *m = a->m;
    int bos = (!o->no_bos && attn_tokenizer_adds_bos(m->tok)) ? attn_tokenizer_bos(m->tok) : -1;
    a->rep_b = bos >= 0;
    if (len > (m->cfg.n_ctx - a->rep_b) / 2) len = (m->cfg.n_ctx - a->rep_b) / 2;
    a->rep_len = (int)len;
    *T = a->rep_b + 2 * (int)len;
    if (!(*ids = malloc((size_t)*T * sizeof **ids))) return attn_err(ATTN_EFAIL, "out of memory");
    attn_induction_ids(*ids, m->cfg.n_vocab, (int)len, (uint64_t)seed, bos, attn_tokenizer_eos(m->tok));
    return 0;
}


// ---------------------------------------------------------------- options -> result

typedef struct {
    cli_opts o;
    const char *fmt;             // table, tsv or json
    const char *heads_s, *mode;  // --heads (NULL: each head alone), --mode zero|mean
    int each_line, induction;    // --each-line, --induction-test
    long len, seed, k_top;       // --len, --seed, -k
} ablate_opts;

// The top-k next tokens at the last position (--heads on one prompt).
typedef struct {
    int32_t id[64];
    double prob[64]; // softmax probability 0..1
    float logit[64]; // raw logit
    char **lab;      // (k) display labels
} abl_top;

typedef struct {
    abl a;
    int32_t *ids;
    int *heads, T, n_heads;
    long n_lines, n_tok;
    double clean, *loss, *delta; // mean losses: clean; (n_sets) ablated and its delta
    int *order;                  // sets by delta, largest first
    int k_top;                   // 0: no top-k tables
    abl_top top[2];              // clean, ablated
} ablate_result;

static int ablate_opt(void *p, const char *a, int argc, char **argv, int *i) {
    ablate_opts *ao = p;
    if (!strcmp(a, "--each-line")) return ao->each_line = 1;
    if (!strcmp(a, "--induction-test")) return ao->induction = 1;
    if (!strcmp(a, "--heads")) return cli_opt_str(argc, argv, i, &ao->heads_s);
    if (!strcmp(a, "--len")) return cli_opt_int(argc, argv, i, 1, 1L << 20, &ao->len);
    if (!strcmp(a, "--seed")) return cli_opt_int(argc, argv, i, 0, 0x7fffffffL, &ao->seed);
    if (!strcmp(a, "-k")) return cli_opt_int(argc, argv, i, 1, 64, &ao->k_top);
    if (strcmp(a, "--mode")) return 0;
    if (cli_opt_str(argc, argv, i, &ao->mode) < 0) return CLI_PRINTED;
    if (!strcmp(ao->mode, "zero") || !strcmp(ao->mode, "mean")) return 1;
    cli_error("ablate: --mode %s: expected zero or mean", ao->mode);
    return CLI_PRINTED;
}

static int ablate_parse(int argc, char **argv, ablate_opts *ao) {
    ao->mode = "zero", ao->len = 50, ao->seed = 1234, ao->k_top = 5;
    if (cli_parse_opts(&ao->o, argc, argv, ablate_opt, ao)) return CLI_PRINTED;
    if (ao->o.help) return 0;
    const cli_opts *o = &ao->o;
    const char *bad = NULL;
    if (cli_format(o, "table,tsv,json", &ao->fmt)) return ATTN_EINPUT;
    if (ao->each_line && (!o->prompt_file || o->prompt || o->ids)) bad = "--each-line takes its prompts from -f FILE only";
    else if (ao->induction && (ao->each_line || o->prompt || o->prompt_file || o->ids)) bad = "--induction-test makes its own prompt";
    else if (ao->each_line && !strcmp(ao->mode, "mean") && !strcmp(o->prompt_file, "-"))
        bad = "--each-line --mode mean reads the file twice: give a file, not stdin";
    if (bad) { cli_error("ablate: %s", bad); return CLI_PRINTED; }
    return 0;
}

// The prompt(s) through the clean and ablated runs: a corpus (with --mode
// mean, a first pass for the mean), the induction prompt, or one prompt.
static int ablate_runs(const ablate_opts *ao, ablate_result *r) {
    abl *a = &r->a;
    int rc;
    if (ao->each_line) {
        if (a->mean_mode) {
            if ((rc = abl_lines(&ao->o, a, abl_mean_pass, &r->n_lines, &r->n_tok))) return rc;
            abl_zmean(a);
            r->n_lines = r->n_tok = 0;
        }
        return abl_lines(&ao->o, a, abl_prompt, &r->n_lines, &r->n_tok);
    }
    rc = ao->induction ? abl_induction(&ao->o, a, ao->len, ao->seed, &r->ids, &r->T)
                       : cli_prompt_ids(&ao->o, a->m, &r->ids, &r->T);
    if (rc) return rc;
    if (r->T < 2) return attn_err(ATTN_EINPUT, "the prompt is one token: nothing to predict");
    r->n_tok = r->T;
    return abl_prompt(a, r->ids, r->T);
}

static const double *sort_delta;
static int by_delta(const void *x, const void *y) {
    int i = *(const int *)x, j = *(const int *)y;
    double a = sort_delta[i], b = sort_delta[j];
    if (a != b) return a > b ? -1 : 1;
    return i - j;
}

// The top-k next tokens of the logits lg (V).
static int abl_top_k(const attn_model *m, const float *lg, int k, abl_top *t) {
    int V = m->cfg.n_vocab;
    float val[64];
    double *p = malloc((size_t)V * sizeof *p);
    if (!p) return attn_err(ATTN_EFAIL, "out of memory");
    attn_softmax_bits(lg, V, 1, p);
    attn_top_k(lg, V, k, t->id, val);
    for (int j = 0; j < k; j++) t->prob[j] = p[t->id[j]], t->logit[j] = lg[t->id[j]];
    free(p);
    return attn_token_labels(m->tok, t->id, k, &t->lab);
}

// Mean losses, deltas sorted largest first, and the top-k tables.
static int ablate_summary(const ablate_opts *ao, ablate_result *r) {
    const abl *a = &r->a;
    int n = a->n_sets, V = a->m->cfg.n_vocab;
    r->loss = malloc((size_t)n * sizeof *r->loss);
    r->delta = malloc((size_t)n * sizeof *r->delta);
    r->order = malloc((size_t)n * sizeof *r->order);
    if (!r->loss || !r->delta || !r->order) return attn_err(ATTN_EFAIL, "out of memory");
    r->clean = a->clean_sum / a->n_pred;
    for (int k = 0; k < n; k++) r->loss[k] = a->sum[k] / a->n_pred, r->delta[k] = r->loss[k] - r->clean, r->order[k] = k;
    sort_delta = r->delta;
    qsort(r->order, n, sizeof *r->order, by_delta);
    if (!r->heads || ao->each_line) return 0;
    int rc = abl_top_k(a->m, a->last, (int)ao->k_top, &r->top[0]);
    if (!rc) rc = abl_top_k(a->m, a->logits + (size_t)(a->T - 1) * V, (int)ao->k_top, &r->top[1]);
    if (!rc) r->k_top = (int)ao->k_top;
    return rc;
}

static int ablate_compute(const ablate_opts *ao, ablate_result *r) {
    abl *a = &r->a;
    int rc = cli_setup(&ao->o, &a->m, &a->pool, NULL, NULL, NULL);
    if (!rc && ao->heads_s) rc = cli_head_pairs("--heads", ao->heads_s, a->m, &r->heads, &r->n_heads);
    if (rc) return rc;
    const attn_config *c = &a->m->cfg;
    size_t zn = (size_t)c->n_layer * c->n_head * c->head_dim;
    a->mean_mode = !strcmp(ao->mode, "mean");
    a->own_mean = a->mean_mode && !ao->each_line;
    a->last = malloc((size_t)c->n_vocab * 4);
    if (a->mean_mode) { a->zsum = calloc(zn, sizeof *a->zsum); a->zmean = malloc(zn * 4); }
    if (!a->last || (a->mean_mode && (!a->zsum || !a->zmean))) return attn_err(ATTN_EFAIL, "out of memory");
    if ((rc = abl_sets(a, r->heads, r->n_heads))) return rc;
    if ((rc = ablate_runs(ao, r))) return rc;
    return ablate_summary(ao, r);
}

// ---------------------------------------------------------------- print

static void print_top(const abl_top *t, int k, const char *what) {
    printf("next token at the last position, %s\n  rank  %6s  %-20s  %8s  %9s\n", what, "id", "token", "prob", "logit");
    for (int j = 0; j < k; j++) {
        char q[96];
        snprintf(q, sizeof q, "\"%s\"", t->lab[j]);
        printf("  %4d  %6d  %-20s  %8.4f  %9.4f\n", j + 1, t->id[j], q, t->prob[j], t->logit[j]);
    }
}

// The heads of set k: "L.H" joined by sep (tsv: "0.1,1.2"), or JSON [l, h] pairs.
static void print_set(const abl *a, int k, const char *fmt) {
    int H = a->m->cfg.n_head, json = !strcmp(fmt, "json");
    for (int j = 0; j < a->set_n[k]; j++) {
        int lh = a->set_of[k * a->max_set + j];
        if (json) printf("%s[%d, %d]", j ? ", " : "", lh / H, lh % H);
        else if (!strcmp(fmt, "tsv")) printf("%s%d.%d", j ? "," : "", lh / H, lh % H);
        else printf("%sL%dH%d", j ? "," : "", lh / H, lh % H);
    }
}

// Rank r (0-based) of the sets by delta, in any format.
static void ablate_row(const ablate_result *r, const char *fmt, int rank, int set) {
    const abl *a = &r->a;
    int k = r->order[rank], lh = a->set_of[k * a->max_set], H = a->m->cfg.n_head;
    if (!strcmp(fmt, "json")) {
        if (set) { printf("%s{\"heads\": [", rank ? ", " : ""); print_set(a, k, fmt); printf("]"); }
        else printf("%s{\"layer\": %d, \"head\": %d", rank ? ", " : "", lh / H, lh % H);
        cli_json_num("loss", "%.9g", r->loss[k]);
        cli_json_num("delta_loss", "%.9g", r->delta[k]);
        printf("}");
    } else if (!strcmp(fmt, "tsv")) {
        print_set(a, k, fmt);
        printf("\t%.9g\t%.9g\n", r->loss[k], r->delta[k]);
    } else {
        char b[24];
        snprintf(b, sizeof b, "L%dH%d", lh / H, lh % H);
        printf("  %4d  %-7s %8.4f  %+8.4f\n", rank + 1, b, r->loss[k], r->delta[k]);
    }
}

// The mean loss of the first and second repeat, clean and ablated, as JSON.
static void print_repeats_json(const abl *a) {
    for (int i = 0; i < 4; i++) {
        printf("%s", i == 0 ? ", \"repeats\": {\"clean\": [" : i == 2 ? "], \"ablated\": [" : ", ");
        attn_json_numf(stdout, "%.9g", a->rep[i / 2][i % 2] / a->rep_n[i % 2]);
        if (i == 3) printf("]}");
    }
}

// The table for a set of heads: its loss, the repeats, the top-k tables.
static void print_set_table(const ablate_result *r) {
    const abl *a = &r->a;
    printf("ablated heads ");
    print_set(a, 0, "table");
    printf(": loss %.4f nats/token (delta %+.4f)\n", r->loss[0], r->delta[0]);
    if (a->rep_len)
        printf("induction test, loss on the repeats (nats/token): first %.4f -> %.4f, second %.4f -> %.4f\n",
               a->rep[0][0] / a->rep_n[0], a->rep[1][0] / a->rep_n[0], a->rep[0][1] / a->rep_n[1],
               a->rep[1][1] / a->rep_n[1]);
    if (r->k_top) {
        printf("\n");
        print_top(&r->top[0], r->k_top, "clean");
        printf("\n");
        print_top(&r->top[1], r->k_top, "ablated");
    }
}

static int print_ablate(const ablate_result *r, const ablate_opts *ao) {
    const abl *a = &r->a;
    const char *fmt = ao->fmt;
    int n = a->n_sets, set = a->max_set > 1 || a->n_sets == 1;
    if (!strcmp(fmt, "json")) {
        cli_json_open_model(a->m->name);
        printf(", \"tokens\": %ld, \"mode\": \"%s\", \"loss\": ", r->n_tok, ao->mode);
        attn_json_numf(stdout, "%.9g", r->clean);
        printf(", \"heads\": [");
        for (int i = 0; i < n; i++) ablate_row(r, fmt, i, set);
        printf("]");
        if (a->rep_len && set) print_repeats_json(a);
        printf("}\n");
        return 0;
    }
    if (!strcmp(fmt, "tsv")) {
        printf("heads\tloss\tdelta_loss\n");
        for (int i = 0; i < n; i++) ablate_row(r, fmt, i, set);
        return 0;
    }
    printf("%s: %ld positions, %ld predicted; mode %s\n", a->m->name, r->n_tok, a->n_pred, ao->mode);
    printf("clean loss %.4f nats/token\n", r->clean);
    if (set) print_set_table(r);
    else {
        printf("  rank  head      loss     delta\n");
        for (int i = 0; i < n; i++) ablate_row(r, fmt, i, set);
    }
    return 0;
}

// ---------------------------------------------------------------- command

static void ablate_result_free(ablate_result *r) {
    for (int i = 0; i < 2; i++)
        if (r->top[i].lab) attn_labels_free(r->top[i].lab, r->k_top);
    free(r->loss); free(r->delta); free(r->order);
    attn_pool_free(r->a.pool);
    attn_model_free(r->a.m);
    abl_free(&r->a);
    free(r->ids);
    free(r->heads);
}

CLI_COMMAND(ablate, ablate, "loss with heads removed: which heads the model needs", ABLATE_HELP);
