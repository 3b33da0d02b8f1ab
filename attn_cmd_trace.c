// attn_cmd_trace.c - `attn trace`: generate N tokens with the KV cache and
// show, at every step, the top-k candidates with probability and raw logit,
// the entropy, the top-1/top-2 margin and a confidence tag; optionally record
// each step's attention row of every head (--attn DIR, .npy).
#include "attn.h"
#include "attn_cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// Confidence tags, by the probability of the most likely token.
#define TAG_COLLAPSED 0.99 // top-1 >= this
#define TAG_CONFIDENT 0.7  // top-1 > this
#define TAG_LOST 0.1       // top-1 < this

static const char TRACE_HELP[] =
    "usage: attn trace [-m FILE] (-p TEXT | -f FILE | --ids 1,2,3) -n STEPS [-k 5]\n"
    "                  [--temp T --seed S] [--top-p P] [--format table|tsv|json]\n"
    "                  [--attn DIR [--max-mem MB]] [--ablate L.H,...] [-t N]\n\n"
    "Generates STEPS tokens, one forward step each with the KV cache, and shows\n"
    "for every step: the prefix so far, the top-k candidates (display labels,\n"
    "quoted) with probability and raw logit, the entropy of the distribution in\n"
    "bits, the margin = probability of the top-1 minus the top-2 candidate, the\n"
    "chosen token, and a tag:\n"
    "  collapsed   top-1 probability >= 0.99\n"
    "  confident   top-1 probability >  0.7\n"
    "  lost        top-1 probability <  0.1\n"
    "  uncertain   anything else\n"
    "and, as a failure marker, repeat when the chosen token completes a run of\n"
    "3 tokens (a 3-gram) that already occurred in the prompt or the output.\n"
    "A sampled token outside the top-k is shown on its own line with its rank\n"
    "(1 = most likely) and probability.\n"
    "  -n STEPS     tokens to generate (prompt + STEPS - 1 must fit the context);\n"
    "               generation stops early after the end-of-text token\n"
    "  -k N         candidates shown per step (default 5)\n"
    "  --temp T     sample from softmax(logit / T) (default: greedy, the top-1);\n"
    "               probabilities, entropy and margin are those of\n"
    "               softmax(logit / T), of softmax(logit) when greedy\n"
    "  --seed S     seed of the sampler (default 1); same seed, same tokens\n"
    "  --top-p P    sample only among the most likely tokens whose probabilities\n"
    "               add up to P (nucleus sampling; the table still shows the\n"
    "               full distribution)\n"
    "  --attn DIR   DIR/step_NNN.npy: float32 [L,H,K], the attention row of every\n"
    "               layer and head for the position that predicted step NNN (K =\n"
    "               keys so far); DIR/attention.npy [L,H,N,N] and DIR/tokens.json\n"
    "               for every position fed, drawable with `attn maps --from DIR`;\n"
    "               DIR/heads.json: head-type scores (as `attn heads`) over the\n"
    "               rows of the generated tokens only (\"rows\": first, last position);\n"
    "               DIR/tagged.png: every layer x head, only the attention rows\n"
    "               of the positions that predicted a step tagged lost, collapsed\n"
    "               or repeat (other rows hatched); not written if none is\n"
    "  --max-mem MB with --attn: the [L,H,N,N] attention (4 bytes a cell; MB =\n"
    "               10^6 bytes) stays in memory up to MB (default 1024), beyond that\n"
    "               in a scratch file in DIR, removed at exit\n"
    "  --ablate L.H,...  generate with these heads (layer.head) zero-ablated: their\n"
    "               output z (before the output projection) is 0 at every position\n"
    "Formats: table (default), tsv (one line per candidate; then the id chosen\n"
    "at that step, its probability, its rank, repeat 1/0), json:\n"
    "  {\"model\": ..., \"prompt_ids\": [...], \"steps\": [{\"step\": 0, \"chosen\": 11,\n"
    "   \"chosen_prob\": 0.62, \"chosen_rank\": 1, \"entropy_bits\": 2.1,\n"
    "   \"margin\": 0.47, \"tag\": \"confident\", \"repeat\": false,\n"
    "   \"top\": [{\"id\": 11, \"text\": \",\", \"prob\": 0.62, \"logit\": 7.3}, ...]}]}\n"
    "Display labels: a space is shown as '·', newline as '\\n', tab as '\\t'.\n";

// Every layer's and head's attention, dense (L, H, N, N), filled as positions are fed.
// --ablate: the heads' z zeroed (ed).
typedef struct { float *p; int H, N; attn_edits *ed; } trace_attn;

static void trace_on_act(void *ctx, int kind, int layer, int q0, int nq, float *x) {
    attn_edits_on_act(((trace_attn *)ctx)->ed, kind, layer, q0, nq, x);
}

static void trace_on_attn(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p) {
    trace_attn *a = ctx;
    float *dst = a->p + ((size_t)layer * a->H + head) * a->N * a->N;
    for (int i = 0; i < nq; i++) memcpy(dst + (size_t)(q0 + i) * a->N, p + (size_t)i * nk, (size_t)nk * sizeof(float));
}

static uint64_t rng_next(uint64_t *s) { // splitmix64
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static const double *sort_probs;
static int by_prob_desc(const void *a, const void *b) {
    double x = sort_probs[*(const int32_t *)a], y = sort_probs[*(const int32_t *)b];
    return x < y ? 1 : x > y ? -1 : (*(const int32_t *)a > *(const int32_t *)b) - (*(const int32_t *)a < *(const int32_t *)b);
}

// Sample an id from probs, restricted to the nucleus of mass top_p.
static int32_t sample(const double *probs, int V, double top_p, uint64_t *rng, int32_t *order) {
    double u = (rng_next(rng) >> 11) * 0x1.0p-53, mass = 1;
    int n = V;
    if (top_p < 1) {
        for (int i = 0; i < V; i++) order[i] = i;
        sort_probs = probs;
        qsort(order, (size_t)V, sizeof *order, by_prob_desc);
        mass = 0;
        for (n = 0; n < V && (n == 0 || mass < top_p);) mass += probs[order[n++]];
    }
    u *= mass;
    double c = 0;
    for (int i = 0; i < n; i++) {
        int32_t id = top_p < 1 ? order[i] : i;
        c += probs[id];
        if (u < c) return id;
    }
    return top_p < 1 ? order[n - 1] : V - 1;
}

// A step is also tagged repeat when its chosen token completes an n-gram of
// REPEAT_N tokens that already occurred in the text (prompt + generated).
#define REPEAT_N 3
static int repeats_ngram(const int32_t *seq, int n) {
    if (n < REPEAT_N + 1) return 0;
    const int32_t *last = seq + n - REPEAT_N;
    for (int s = 0; s + REPEAT_N < n; s++)
        if (!memcmp(seq + s, last, REPEAT_N * sizeof *seq)) return 1;
    return 0;
}

// 1-based rank of id in probs (higher first; ties: lower id first, as sorting does).
static int rank_of(const double *probs, int V, int32_t id) {
    int r = 1;
    for (int j = 0; j < V; j++) r += probs[j] > probs[id] || (probs[j] == probs[id] && j < id);
    return r;
}

static const char *tag_of(double p1) {
    return p1 >= TAG_COLLAPSED ? "collapsed" : p1 > TAG_CONFIDENT ? "confident" : p1 < TAG_LOST ? "lost" : "uncertain";
}

// The text of ids as one readable line: controls escaped, only the last
// `keep` characters (a cut shown as "…").
static void prefix_text(const attn_model *m, const int32_t *ids, int n, char *out, size_t cap, int keep) {
    char *text = NULL;
    size_t len = 0;
    out[0] = 0;
    if (attn_detokenize(m->tok, ids, n, &text, &len)) { // ids-only model
        size_t o = 0;
        for (int i = n > 12 ? n - 12 : 0; i < n && o + 16 < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%s%d", o ? " " : "", ids[i]);
        return;
    }
    size_t start = len, chars = 0;
    while (start > 0 && chars < (size_t)keep) {
        start--;
        if (((uint8_t)text[start] & 0xC0) != 0x80) chars++;
    }
    size_t o = 0;
    if (start > 0) o += (size_t)snprintf(out, cap, "\xE2\x80\xA6");
    for (size_t i = start; i < len && o + 8 < cap; i++) {
        uint8_t c = (uint8_t)text[i];
        if (c == '\n') o += (size_t)snprintf(out + o, cap - o, "\\n");
        else if (c == '\t') o += (size_t)snprintf(out + o, cap - o, "\\t");
        else if (c < 0x20 || c == 0x7F) o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else out[o++] = (char)c, out[o] = 0;
    }
    free(text);
}

// Step tags kept for the picture of the tagged steps.
#define TAGGED_LOST 1
#define TAGGED_COLLAPSED 2
#define TAGGED_REPEAT 4

// DIR/tagged.png: every layer x head, only the attention rows of the positions
// that predicted a tagged step (lost, collapsed or repeat); other rows hatched.
static int write_tagged_png(const char *dir, const attn_model *m, const trace_attn *a, const int32_t *ids, int P,
                            int steps, int fed, const uint8_t *tags, int *n_out) {
    int L = m->cfg.n_layer, H = m->cfg.n_head, N = a->N, n_tagged = 0, rc = 0;
    uint8_t *shown = calloc((size_t)fed, 1);
    float *p = fed == N ? a->p : malloc((size_t)L * H * fed * fed * sizeof(float));
    attn_panel *panels = calloc((size_t)L * H, sizeof *panels);
    char **labels = NULL, note[400], title[200], (*names)[24] = malloc((size_t)(L + H) * sizeof *names);
    const char **nm = malloc((size_t)(L + H) * sizeof *nm);
    if (!shown || !p || !panels || !names || !nm) { rc = attn_err(ATTN_EFAIL, "out of memory"); goto done; }
    size_t o = (size_t)snprintf(note, sizeof note, "rows shown: the positions that predicted tagged steps:");
    for (int s = 0; s < steps; s++) {
        if (!tags[s] || P - 1 + s >= fed) continue;
        shown[P - 1 + s] = 1, n_tagged++;
        if (o + 40 < sizeof note)
            o += (size_t)snprintf(note + o, sizeof note - o, " %d%s%s%s", s, tags[s] & TAGGED_LOST ? " lost" : "",
                                  tags[s] & TAGGED_COLLAPSED ? " collapsed" : "", tags[s] & TAGGED_REPEAT ? " repeat" : "");
    }
    if (!n_tagged) goto done;
    if (p != a->p)
        for (size_t i = 0; i < (size_t)L * H; i++)
            for (int q = 0; q < fed; q++)
                memcpy(p + (i * fed + q) * fed, a->p + (i * N + q) * N, (size_t)fed * sizeof(float));
    for (int i = 0; i < L * H; i++) panels[i].p = p + (size_t)i * fed * fed;
    for (int i = 0; i < L + H; i++)
        snprintf(names[i], sizeof names[i], i < L ? "layer %d" : "head %d", i < L ? i : i - L), nm[i] = names[i];
    if ((rc = attn_token_labels(m->tok, ids, fed, &labels))) goto done;
    snprintf(title, sizeof title, "%.120s - attention rows of the tagged steps", m->name);
    attn_figure f = {.T = fed, .labels = (const char *const *)labels, .title = title, .note = note,
                     .panels = panels, .rows = L, .cols = H, .scale = ATTN_SCALE_FIXED, .causal = 1,
                     .rows_shown = shown, .row_names = nm, .col_names = nm + L};
    rc = cli_write_figure(&f, dir, "tagged", 1, 0);
done:
    if (labels) attn_labels_free(labels, fed);
    if (p != a->p) free(p);
    free(shown), free(panels), free(names), free(nm);
    *n_out = n_tagged;
    return rc;
}

static int write_trace_attn(const char *dir, const attn_model *m, const trace_attn *a, const int32_t *ids, int P,
                            int steps, int fed) {
    const attn_config *c = &m->cfg;
    char path[1200];
    int L = c->n_layer, H = c->n_head, N = a->N, rc = 0;
    size_t lh = (size_t)L * H;
    // step s: the row of position P-1+s, keys 0..P-1+s
    for (int s = 0; s < steps && !rc; s++) {
        int q = P - 1 + s, K = q + 1;
        float *row = malloc(lh * K * sizeof(float));
        if (!row) return attn_err(ATTN_EFAIL, "out of memory");
        for (size_t i = 0; i < lh; i++) memcpy(row + i * K, a->p + (i * N + q) * N, (size_t)K * sizeof(float));
        int64_t dims[3] = {L, H, K};
        snprintf(path, sizeof path, "%s/step_%03d.npy", dir, s);
        rc = attn_write_npy_f32(path, row, dims, 3);
        free(row);
    }
    if (rc) return rc;
    // every position fed, as [L, H, fed, fed]
    attn_outfile o;
    int64_t dims[4] = {L, H, fed, fed};
    snprintf(path, sizeof path, "%s/attention.npy", dir);
    if ((rc = attn_npy_open(&o, path, dims, 4))) return rc;
    for (size_t i = 0; i < lh; i++)
        for (int q = 0; q < fed; q++) fwrite(a->p + (i * N + q) * N, sizeof(float), (size_t)fed, o.fp);
    if ((rc = attn_out_close(&o))) return rc;
    char **labels;
    if ((rc = attn_token_labels(m->tok, ids, fed, &labels))) return rc;
    snprintf(path, sizeof path, "%s/tokens.json", dir);
    if (!(rc = attn_out_open(&o, path))) {
        fprintf(o.fp, "{\"model\": ");
        attn_json_str(o.fp, m->name);
        fprintf(o.fp, ", \"prompt_length\": %d, \"ids\": [", P);
        for (int i = 0; i < fed; i++) fprintf(o.fp, "%s%d", i ? ", " : "", ids[i]);
        fprintf(o.fp, "], \"labels\": [");
        for (int i = 0; i < fed; i++) {
            fprintf(o.fp, i ? ", " : "");
            attn_json_str(o.fp, labels[i]);
        }
        fprintf(o.fp, "], \"n_layer\": %d, \"n_head\": %d}\n", L, H);
        rc = attn_out_close(&o);
    }
    attn_labels_free(labels, fed);
    if (rc || fed <= P) return rc;
    // head-type scores over the rows of the generated tokens only (positions P .. fed-1)
    snprintf(path, sizeof path, "%s/heads.json", dir);
    if ((rc = attn_out_open(&o, path))) return rc;
    fprintf(o.fp, "{\"model\": ");
    attn_json_str(o.fp, m->name);
    fprintf(o.fp, ", \"rows\": [%d, %d], \"heads\": [", P, fed - 1);
    for (size_t i = 0; i < lh; i++) {
        attn_score_acc acc;
        attn_head_scores hs;
        attn_score_acc_init(&acc);
        for (int q = P; q < fed; q++) attn_score_acc_rows(&acc, ids, q, 1, q + 1, a->p + (i * N + q) * N);
        attn_score_acc_get(&acc, &hs);
        fprintf(o.fp, "%s\n  {\"layer\": %d, \"head\": %d, \"scores\": ", i ? "," : "", (int)(i / H), (int)(i % H));
        attn_json_scores(o.fp, &hs);
        fputc('}', o.fp);
    }
    fprintf(o.fp, "]}\n");
    return attn_out_close(&o);
}

// ---- options -> result -> print

typedef struct {
    cli_opts o;
    const char *fmt;   // table, tsv or json
    long n_steps, k, seed;
    double temp, top_p; // --temp (0: greedy), --top-p
    const char *attn_dir, *ablate; // --attn DIR, --ablate L.H,...
} trace_opts;

// What generation keeps: the model, the growing ids, the capture.
typedef struct {
    attn_model *m;
    attn_pool *pool;
    attn_session *s;
    int32_t *ids;     // (N + 1): prompt, then the chosen tokens
    int P, N, V, k, kk; // prompt, positions fed at most, vocab, -k, top-k kept (>= 2 for the margin)
    int32_t *top, *order;
    uint8_t *tags;    // (n_steps) TAGGED_* of each step
    float *logits, *topv;
    double *probs;
    trace_attn ta;    // --attn rows, --ablate edits
    int *abl, n_abl;
    attn_edit *edits;
    attn_edits ed;
    cli_buf tab;
    attn_capture cap, *capp;
    char dir[1024];   // --attn DIR
    int steps;        // steps done
    int feed_rc;      // the prompt's feed failed: its error
    uint64_t rng;
} trace_result;

// One generated step, as printed.
typedef struct {
    int st, pos, crank, rep;
    int32_t chosen;
    double h, margin; // entropy in bits; p1 - p2
    const char *tag;
    char **cand, **ch; // labels of top[0..k) and of the chosen token
} trace_step;

// A number option of trace: --temp in [0, 100], --top-p in (0, 1].
static int trace_real(const char *a, const char *v, double *out) {
    char *end;
    double x = strtod(v, &end);
    int top = !strcmp(a, "--top-p");
    if (end == v || *end || !(x >= 0) || x > (top ? 1 : 100) || (top && x <= 0)) {
        cli_error("%s: '%s' is not a number in %s", a, v, top ? "(0, 1]" : "[0, 100]");
        return CLI_PRINTED;
    }
    *out = x;
    return 0;
}

static int trace_opt(void *p, const char *a, int argc, char **argv, int *i) {
    trace_opts *to = p;
    const char *v;
    if (!strcmp(a, "-n") || !strcmp(a, "--steps")) return cli_opt_int(argc, argv, i, 1, 1 << 20, &to->n_steps);
    if (!strcmp(a, "-k")) return cli_opt_int(argc, argv, i, 1, 1000, &to->k);
    if (!strcmp(a, "--seed")) return cli_opt_int(argc, argv, i, 0, 0x7FFFFFFFL, &to->seed);
    if (!strcmp(a, "--attn")) return cli_opt_str(argc, argv, i, &to->attn_dir);
    if (!strcmp(a, "--ablate")) return cli_opt_str(argc, argv, i, &to->ablate);
    if (strcmp(a, "--temp") && strcmp(a, "--top-p")) return 0;
    return (v = cli_val(argc, argv, i)) && !trace_real(a, v, !strcmp(a, "--temp") ? &to->temp : &to->top_p) ? 1
                                                                                                          : CLI_PRINTED;
}

static int trace_parse(int argc, char **argv, trace_opts *to) {
    to->n_steps = -1, to->k = 5, to->seed = 1, to->top_p = 1;
    cli_mem_init(&to->o.mem, "trace");
    if (cli_parse_opts(&to->o, argc, argv, trace_opt, to)) return CLI_PRINTED;
    if (to->o.help) return 0;
    if (cli_format(&to->o, "table,tsv,json", &to->fmt)) return ATTN_EINPUT;
    if (to->n_steps < 0) {
        cli_error("trace: give the number of tokens to generate with -n STEPS");
        return CLI_PRINTED;
    }
    return 0;
}

// --ablate: z = 0 at every position of the chosen heads.
static int trace_setup_ablate(trace_result *r) {
    const attn_config *c = &r->m->cfg;
    if (!(r->edits = calloc((size_t)r->n_abl, sizeof *r->edits))) return attn_err(ATTN_EFAIL, "out of memory");
    for (int j = 0; j < r->n_abl; j++)
        r->edits[j] = (attn_edit){ ATTN_ACT_Z, r->abl[j] / c->n_head, -1, r->abl[j] % c->n_head * c->head_dim,
                                   c->head_dim, NULL, 0 };
    attn_edits_init(&r->ed, r->m, r->edits, r->n_abl);
    r->ta.ed = &r->ed;
    return 0;
}

// --attn DIR: the (L, H, N, N) attention of every position fed.
static int trace_setup_attn(trace_opts *to, trace_result *r) {
    const attn_config *c = &r->m->cfg;
    cli_opts od = to->o;
    od.out_dir = to->attn_dir;
    int rc = cli_out_dir(&od, NULL, r->dir, sizeof r->dir);
    if (rc) return rc;
    char what[160];
    snprintf(what, sizeof what, "%d x %d heads of %d x %d attention", c->n_layer, c->n_head, r->N, r->N);
    to->o.mem.dir = r->dir;
    if ((rc = cli_buf_new(&to->o.mem, &r->tab, (size_t)c->n_layer * c->n_head * r->N * r->N, what))) return rc;
    r->ta.H = c->n_head, r->ta.N = r->N, r->ta.p = r->tab.p;
    return 0;
}

// Model, prompt, buffers and the session; the prompt fed (its logits in r->logits).
static int trace_setup(trace_opts *to, trace_result *r) {
    int rc = cli_setup(&to->o, &r->m, &r->pool, &r->ids, &r->P, NULL);
    if (!rc && to->ablate) rc = cli_head_pairs("--ablate", to->ablate, r->m, &r->abl, &r->n_abl);
    if (!rc && to->ablate) rc = trace_setup_ablate(r);
    if (rc) return rc;
    const attn_config *c = &r->m->cfg;
    r->V = c->n_vocab, r->N = r->P + (int)to->n_steps - 1; // positions fed: the last chosen token is not
    if (r->N > c->n_ctx)
        return attn_err(ATTN_EINPUT, "the prompt (%d tokens) + %ld steps need %d positions, more than the context of %d",
                        r->P, to->n_steps, r->N, c->n_ctx);
    r->k = to->k > r->V ? r->V : (int)to->k;
    int32_t *grown = realloc(r->ids, (size_t)(r->N + 1) * sizeof *r->ids);
    if (!grown) return attn_err(ATTN_EFAIL, "out of memory");
    r->ids = grown;
    r->logits = malloc((size_t)r->V * sizeof *r->logits);
    r->probs = malloc((size_t)r->V * sizeof *r->probs);
    r->kk = r->k < 2 && r->V >= 2 ? 2 : r->k; // the margin needs the top-2 even with -k 1
    r->top = malloc((size_t)r->kk * sizeof *r->top);
    r->topv = malloc((size_t)r->kk * sizeof *r->topv);
    r->order = to->top_p < 1 ? malloc((size_t)r->V * sizeof *r->order) : NULL;
    r->tags = calloc((size_t)to->n_steps, 1);
    if (!r->logits || !r->probs || !r->top || !r->topv || !r->tags || (to->top_p < 1 && !r->order))
        return attn_err(ATTN_EFAIL, "out of memory");
    r->cap = (attn_capture){ .on_attn = to->attn_dir ? trace_on_attn : NULL,
                             .on_act = to->ablate ? trace_on_act : NULL, .ctx = &r->ta };
    r->capp = to->attn_dir || to->ablate ? &r->cap : NULL;
    if (to->attn_dir && (rc = trace_setup_attn(to, r))) return rc;
    r->rng = (uint64_t)to->seed;
    if ((rc = attn_session_new(&r->s, r->m, r->N, r->pool))) return rc;
    return attn_session_feed(r->s, r->ids, r->P, r->logits, 1, r->capp);
}

static void print_trace_head(const trace_result *r, const trace_opts *to) {
    if (!strcmp(to->fmt, "json")) {
        cli_json_open_model(r->m->name);
        printf(", \"prompt_ids\": [");
        for (int i = 0; i < r->P; i++) printf("%s%d", i ? ", " : "", r->ids[i]);
        printf("], \"steps\": [");
    } else if (!strcmp(to->fmt, "tsv"))
        printf("step\trank\tid\ttext\tprob\tlogit\tentropy_bits\tmargin\ttag\tchosen\t"
               "chosen_prob\tchosen_rank\trepeat\n");
    else
        printf("model %s, %d prompt tokens, %s; tags: collapsed p1 >= 0.99, confident p1 > 0.7,\n"
               "lost p1 < 0.1, uncertain otherwise (p1 = top-1 probability; margin = p1 - p2)\n",
               r->m->name, r->P, to->temp > 0 ? "sampling" : "greedy");
    if (!strcmp(to->fmt, "table") && to->temp > 0)
        printf("temperature %g, top-p %g, seed %ld\n", to->temp, to->top_p, to->seed);
}

// The row printer: candidate j of a step (j = k, table only: a token sampled
// outside the top-k, with its rank) as a table row, a TSV line or a JSON item.
static void trace_row(const trace_result *r, const trace_step *s, const char *fmt, int j) {
    int32_t id = j < r->k ? r->top[j] : s->chosen;
    const char *text = j < r->k ? s->cand[j] : s->ch[0];
    if (!strcmp(fmt, "json")) {
        cli_json_candidate(!j, id, text, r->probs[id], r->logits[id]);
    } else if (!strcmp(fmt, "tsv")) {
        printf("%d\t%d\t%d\t%s\t%.6g\t%.6g\t%.6g\t%.6g\t%s\t%d\t%.6g\t%d\t%d\n", s->st, j + 1, id, text,
               r->probs[id], r->logits[id], s->h, s->margin, s->tag, s->chosen, r->probs[s->chosen], s->crank, s->rep);
    } else {
        char q[200];
        cli_quote(q, sizeof q, text);
        printf("  %4d  %6d  ", j < r->k ? j + 1 : s->crank, id);
        cli_print_padded(q, 20);
        printf("  %8.4f  %9.4f%s\n", r->probs[id], r->logits[id], id == s->chosen ? "  <- chosen" : "");
    }
}

static void print_trace_step(const trace_result *r, const trace_step *s, const char *fmt) {
    if (!strcmp(fmt, "json")) {
        printf("%s{\"step\": %d, \"chosen\": %d, \"chosen_prob\": ", s->st ? ", " : "", s->st, s->chosen);
        attn_json_numf(stdout, "%.6g", r->probs[s->chosen]);
        printf(", \"chosen_rank\": %d, \"entropy_bits\": ", s->crank);
        attn_json_numf(stdout, "%.6g", s->h);
        cli_json_num("margin", "%.6g", s->margin);
        printf(", \"tag\": \"%s\", \"repeat\": %s, \"top\": [", s->tag, s->rep ? "true" : "false");
        for (int j = 0; j < r->k; j++) trace_row(r, s, fmt, j);
        printf("]}");
    } else if (!strcmp(fmt, "tsv")) {
        for (int j = 0; j < r->k; j++) trace_row(r, s, fmt, j);
    } else {
        char prefix[512], qp[600], qc[200];
        prefix_text(r->m, r->ids, s->pos, prefix, sizeof prefix, 60);
        cli_quote(qp, sizeof qp, prefix);
        cli_quote(qc, sizeof qc, s->ch[0]);
        printf("\nstep %d  %s -> %s (id %d)\n  entropy %.3f bits  margin %.4f  %s%s\n", s->st, qp, qc, s->chosen,
               s->h, s->margin, s->tag, s->rep ? "  repeat" : "");
        printf("  rank  %6s  %-20s  %8s  %9s\n", "id", "token", "prob", "logit");
        for (int j = 0; j < r->k || (j == r->k && s->crank > r->k); j++) trace_row(r, s, fmt, j);
    }
    fflush(stdout);
}

// Step st from r->logits: the chosen token appended to ids, its tags.
static int trace_choose(const trace_opts *to, trace_result *r, int st, trace_step *s) {
    int V = r->V;
    s->st = st, s->pos = r->P + st; // ids[0 .. pos) are the prefix
    s->h = attn_softmax_bits(r->logits, V, to->temp > 0 ? to->temp : 1, r->probs);
    attn_top_k(r->logits, V, r->kk, r->top, r->topv); // softmax keeps the order of the logits
    double p1 = r->probs[r->top[0]];
    s->margin = r->kk > 1 ? p1 - r->probs[r->top[1]] : p1;
    s->chosen = to->temp > 0 ? sample(r->probs, V, to->top_p, &r->rng, r->order) : r->top[0];
    s->tag = tag_of(p1);
    s->crank = rank_of(r->probs, V, s->chosen);
    r->ids[s->pos] = s->chosen;
    s->rep = repeats_ngram(r->ids, s->pos + 1);
    r->tags[st] = (uint8_t)((p1 < TAG_LOST ? TAGGED_LOST : 0) | (p1 >= TAG_COLLAPSED ? TAGGED_COLLAPSED : 0) |
                            (s->rep ? TAGGED_REPEAT : 0));
    int rc = attn_token_labels(r->m->tok, r->top, r->k, &s->cand);
    if (!rc && (rc = attn_token_labels(r->m->tok, &s->chosen, 1, &s->ch))) attn_labels_free(s->cand, r->k);
    return rc;
}

// Generate, printing each step as it is chosen (the output streams).
static int trace_generate(const trace_opts *to, trace_result *r, int rc) {
    int eos = attn_tokenizer_eos(r->m->tok);
    cli_progress("trace", 0, to->n_steps);
    for (int st = 0; !rc && st < to->n_steps; st++) {
        trace_step s;
        if ((rc = trace_choose(to, r, st, &s))) break;
        print_trace_step(r, &s, to->fmt);
        attn_labels_free(s.cand, r->k);
        attn_labels_free(s.ch, 1);
        r->steps++;
        cli_progress("trace", r->steps, to->n_steps);
        if (s.chosen == eos && eos >= 0) break;
        if (st + 1 < to->n_steps) rc = attn_session_feed(r->s, &r->ids[s.pos], 1, r->logits, 1, r->capp);
    }
    if (!strcmp(to->fmt, "json")) printf("]}\n");
    return rc;
}

static void trace_result_free(trace_result *r) {
    attn_session_free(r->s);
    cli_buf_free(&r->tab);
    free(r->abl), free(r->edits);
    free(r->logits), free(r->probs), free(r->top), free(r->topv), free(r->order), free(r->ids), free(r->tags);
    attn_pool_free(r->pool);
    attn_model_free(r->m);
}

// Load, prompt, feed it. A prompt that failed to feed still gets the head
// and the end printed: its error is kept in feed_rc for print_trace.
static int trace_compute(trace_opts *to, trace_result *r) {
    int rc = trace_setup(to, r);
    if (rc && r->s) r->feed_rc = rc, rc = 0;
    return rc;
}

// The head, the generated steps one at a time (each chosen by library
// calls, then printed), the end; with --attn DIR the files.
static int print_trace(trace_result *r, const trace_opts *to) {
    print_trace_head(r, to);
    int rc = trace_generate(to, r, r->feed_rc);
    if (!rc && to->attn_dir) {
        int n_tagged = 0;
        rc = write_trace_attn(r->dir, r->m, &r->ta, r->ids, r->P, r->steps, r->P + r->steps - 1);
        if (!rc)
            rc = write_tagged_png(r->dir, r->m, &r->ta, r->ids, r->P, r->steps, r->P + r->steps - 1, r->tags, &n_tagged);
        if (!rc)
            cli_note("trace: wrote %d step_NNN.npy, attention.npy, tokens.json, heads.json%s to %s", r->steps,
                     n_tagged ? ", tagged.png" : "", r->dir);
    }
    return rc;
}

CLI_COMMAND(trace, trace, "generate N tokens, top-k table per step", TRACE_HELP);
