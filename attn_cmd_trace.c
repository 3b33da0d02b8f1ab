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

static const char *TRACE_HELP =
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

int cmd_trace(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    long n_steps = -1, k = 5, seed = 1;
    double temp = 0, top_p = 1;
    const char *attn_dir = NULL, *ablate = NULL;
    cli_mem_init(&o.mem, "trace");
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return cli_exit(CLI_PRINTED);
        if (r > 0) continue;
        const char *a = argv[i], *v;
        char *end;
        if (!strcmp(a, "-n") || !strcmp(a, "--steps")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_int(a, v, 1, 1 << 20, &n_steps)) return cli_exit(CLI_PRINTED);
        } else if (!strcmp(a, "-k")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_int(a, v, 1, 1000, &k)) return cli_exit(CLI_PRINTED);
        } else if (!strcmp(a, "--seed")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_int(a, v, 0, 0x7FFFFFFFL, &seed)) return cli_exit(CLI_PRINTED);
        } else if (!strcmp(a, "--temp") || !strcmp(a, "--top-p")) {
            if (!(v = cli_val(argc, argv, &i))) return cli_exit(CLI_PRINTED);
            double x = strtod(v, &end);
            int top = !strcmp(a, "--top-p");
            if (end == v || *end || !(x >= 0) || x > (top ? 1 : 100) || (top && x <= 0)) {
                cli_error("%s: '%s' is not a number in %s", a, v, top ? "(0, 1]" : "[0, 100]");
                return cli_exit(CLI_PRINTED);
            }
            *(top ? &top_p : &temp) = x;
        } else if (!strcmp(a, "--attn")) {
            if (!(attn_dir = cli_val(argc, argv, &i))) return cli_exit(CLI_PRINTED);
        } else if (!strcmp(a, "--ablate")) {
            if (!(ablate = cli_val(argc, argv, &i))) return cli_exit(CLI_PRINTED);
        } else return cli_bad_opt("trace", a);
    }
    if (o.help) { fputs(TRACE_HELP, stdout); return 0; }
    const char *fmt;
    if (cli_format(&o, "table,tsv,json", &fmt)) return cli_exit(ATTN_EINPUT);
    if (n_steps < 0) {
        cli_error("trace: give the number of tokens to generate with -n STEPS");
        return cli_exit(CLI_PRINTED);
    }
    attn_model *m = NULL;
    attn_pool *pool = NULL;
    attn_session *s = NULL;
    int32_t *ids = NULL, *top = NULL, *order = NULL;
    uint8_t *tags = NULL; // [steps] TAGGED_* of each step
    float *logits = NULL, *topv = NULL;
    double *probs = NULL;
    trace_attn ta = {0};
    int *abl = NULL, n_abl = 0;
    attn_edit *edits = NULL;
    attn_edits ed;
    cli_buf tab = {0};
    int P = 0, rc = cli_load_model(&o, 0, &m);
    if (!rc) rc = cli_prompt_ids(&o, m, &ids, &P);
    if (!rc) rc = cli_pool(&o, &pool);
    if (!rc && ablate) rc = cli_head_pairs("--ablate", ablate, m, &abl, &n_abl);
    if (rc) goto done;
    const attn_config *c = &m->cfg;
    if (ablate) { // zero-ablated heads: z = 0 at every position
        if (!(edits = calloc((size_t)n_abl, sizeof *edits))) { rc = attn_err(ATTN_EFAIL, "out of memory"); goto done; }
        for (int j = 0; j < n_abl; j++)
            edits[j] = (attn_edit){ ATTN_ACT_Z, abl[j] / c->n_head, -1, abl[j] % c->n_head * c->head_dim, c->head_dim, NULL, 0 };
        attn_edits_init(&ed, m, edits, n_abl);
        ta.ed = &ed;
    }
    int V = c->n_vocab, N = P + (int)n_steps - 1; // positions fed: the last chosen token is not
    if (N > c->n_ctx) {
        rc = attn_err(ATTN_EINPUT, "the prompt (%d tokens) + %ld steps need %d positions, more than the context of %d",
                      P, n_steps, N, c->n_ctx);
        goto done;
    }
    if (k > V) k = V;
    int32_t *grown = realloc(ids, (size_t)(N + 1) * sizeof *ids);
    if (!grown) { rc = attn_err(ATTN_EFAIL, "out of memory"); goto done; }
    ids = grown;
    logits = malloc((size_t)V * sizeof *logits);
    probs = malloc((size_t)V * sizeof *probs);
    int kk = k < 2 && V >= 2 ? 2 : (int)k; // the margin needs the top-2 even with -k 1
    top = malloc((size_t)kk * sizeof *top);
    topv = malloc((size_t)kk * sizeof *topv);
    order = top_p < 1 ? malloc((size_t)V * sizeof *order) : NULL;
    tags = calloc((size_t)n_steps, 1);
    if (!logits || !probs || !top || !topv || !tags || (top_p < 1 && !order)) { rc = attn_err(ATTN_EFAIL, "out of memory"); goto done; }
    attn_capture cap = {.on_attn = attn_dir ? trace_on_attn : NULL, .on_act = ablate ? trace_on_act : NULL, .ctx = &ta};
    attn_capture *capp = attn_dir || ablate ? &cap : NULL;
    char dir[1024];
    if (attn_dir) {
        cli_opts od = o;
        od.out_dir = attn_dir;
        if ((rc = cli_out_dir(&od, NULL, dir, sizeof dir))) goto done;
        char what[160];
        snprintf(what, sizeof what, "%d x %d heads of %d x %d attention", c->n_layer, c->n_head, N, N);
        o.mem.dir = dir;
        if ((rc = cli_buf_new(&o.mem, &tab, (size_t)c->n_layer * c->n_head * N * N, what))) goto done;
        ta.H = c->n_head, ta.N = N, ta.p = tab.p;
    }
    if ((rc = attn_session_new(&s, m, N, pool))) goto done;
    rc = attn_session_feed(s, ids, P, logits, 1, capp);

    int json = !strcmp(fmt, "json"), tsv = !strcmp(fmt, "tsv"), eos = attn_tokenizer_eos(m->tok);
    uint64_t rng = (uint64_t)seed;
    if (json) {
        printf("{\"model\": ");
        attn_json_str(stdout, m->name);
        printf(", \"prompt_ids\": [");
        for (int i = 0; i < P; i++) printf("%s%d", i ? ", " : "", ids[i]);
        printf("], \"steps\": [");
    } else if (tsv) printf("step\trank\tid\ttext\tprob\tlogit\tentropy_bits\tmargin\ttag\tchosen\t"
                           "chosen_prob\tchosen_rank\trepeat\n");
    else
        printf("model %s, %d prompt tokens, %s; tags: collapsed p1 >= 0.99, confident p1 > 0.7,\n"
               "lost p1 < 0.1, uncertain otherwise (p1 = top-1 probability; margin = p1 - p2)\n",
               m->name, P, temp > 0 ? "sampling" : "greedy");
    if (!json && !tsv && temp > 0) printf("temperature %g, top-p %g, seed %ld\n", temp, top_p, seed);
    int steps = 0;
    cli_progress("trace", 0, n_steps);
    for (int st = 0; !rc && st < n_steps; st++) {
        int pos = P + st; // ids[0 .. pos) are the prefix
        double h = attn_softmax_bits(logits, V, temp > 0 ? temp : 1, probs);
        attn_top_k(logits, V, kk, top, topv); // softmax keeps the order of the logits
        double p1 = probs[top[0]], margin = kk > 1 ? p1 - probs[top[1]] : p1;
        int32_t chosen = temp > 0 ? sample(probs, V, top_p, &rng, order) : top[0];
        const char *tag = tag_of(p1);
        int crank = rank_of(probs, V, chosen);
        ids[pos] = chosen;
        int rep = repeats_ngram(ids, pos + 1);
        tags[st] = (uint8_t)((p1 < TAG_LOST ? TAGGED_LOST : 0) | (p1 >= TAG_COLLAPSED ? TAGGED_COLLAPSED : 0) |
                             (rep ? TAGGED_REPEAT : 0));
        char **cand, **ch;
        if ((rc = attn_token_labels(m->tok, top, (int)k, &cand))) break;
        if ((rc = attn_token_labels(m->tok, &chosen, 1, &ch))) { attn_labels_free(cand, (int)k); break; }
        if (json) {
            printf("%s{\"step\": %d, \"chosen\": %d, \"chosen_prob\": ", st ? ", " : "", st, chosen);
            attn_json_numf(stdout, "%.6g", probs[chosen]);
            printf(", \"chosen_rank\": %d, \"entropy_bits\": ", crank);
            attn_json_numf(stdout, "%.6g", h);
            printf(", \"margin\": ");
            attn_json_numf(stdout, "%.6g", margin);
            printf(", \"tag\": \"%s\", \"repeat\": %s, \"top\": [", tag, rep ? "true" : "false");
            for (int j = 0; j < k; j++) {
                printf("%s{\"id\": %d, \"text\": ", j ? ", " : "", top[j]);
                attn_json_str(stdout, cand[j]);
                printf(", \"prob\": ");
                attn_json_numf(stdout, "%.6g", probs[top[j]]);
                printf(", \"logit\": ");
                attn_json_numf(stdout, "%.6g", logits[top[j]]);
                printf("}");
            }
            printf("]}");
        } else if (tsv) {
            for (int j = 0; j < k; j++)
                printf("%d\t%d\t%d\t%s\t%.6g\t%.6g\t%.6g\t%.6g\t%s\t%d\t%.6g\t%d\t%d\n", st, j + 1, top[j], cand[j],
                       probs[top[j]], logits[top[j]], h, margin, tag, chosen, probs[chosen], crank, rep);
        } else {
            char prefix[512];
            prefix_text(m, ids, pos, prefix, sizeof prefix, 60);
            char qp[600], qc[200];
            cli_quote(qp, sizeof qp, prefix);
            cli_quote(qc, sizeof qc, ch[0]);
            printf("\nstep %d  %s -> %s (id %d)\n  entropy %.3f bits  margin %.4f  %s%s\n", st, qp, qc,
                   chosen, h, margin, tag, rep ? "  repeat" : "");
            printf("  rank  %6s  %-20s  %8s  %9s\n", "id", "token", "prob", "logit");
            for (int j = 0; j <= k; j++) { // j = k: a token sampled outside the top-k, with its rank
                if (j == k && crank <= k) break;
                int32_t id = j < k ? top[j] : chosen;
                char q[200];
                cli_quote(q, sizeof q, j < k ? cand[j] : ch[0]);
                printf("  %4d  %6d  ", j < k ? j + 1 : crank, id);
                cli_print_padded(q, 20);
                printf("  %8.4f  %9.4f%s\n", probs[id], logits[id], id == chosen ? "  <- chosen" : "");
            }
        }
        fflush(stdout);
        attn_labels_free(cand, (int)k);
        attn_labels_free(ch, 1);
        steps++;
        cli_progress("trace", steps, n_steps);
        if (chosen == eos && eos >= 0) break;
        if (st + 1 < n_steps) rc = attn_session_feed(s, &ids[pos], 1, logits, 1, capp);
    }
    if (json) printf("]}\n");
    if (!rc && attn_dir) {
        int n_tagged = 0;
        rc = write_trace_attn(dir, m, &ta, ids, P, steps, P + steps - 1);
        if (!rc) rc = write_tagged_png(dir, m, &ta, ids, P, steps, P + steps - 1, tags, &n_tagged);
        if (!rc)
            cli_note("trace: wrote %d step_NNN.npy, attention.npy, tokens.json, heads.json%s to %s", steps,
                    n_tagged ? ", tagged.png" : "", dir);
    }
done:
    attn_session_free(s);
    cli_buf_free(&tab);
    free(abl), free(edits);
    free(logits), free(probs), free(top), free(topv), free(order), free(ids), free(tags);
    attn_pool_free(pool);
    attn_model_free(m);
    return cli_exit(rc);
}
