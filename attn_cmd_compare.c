// attn_cmd_compare.c - `attn compare`: the attention of two models (or a
// model and its own random init) on the same tokens: panels on one shared
// scale plus a difference map per chosen head, and a per-head table of
// Jensen-Shannon divergence and head types. With three or more models
// (checkpoints of one run), the table is a timeline of head-type scores.
#include "attn.h"
#include "attn_cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define COMPARE_SEED 1234 // default seed of --init random

static const char COMPARE_HELP[] =
    "usage: attn compare -m A -m B [-m C ...] (-p TEXT | -f FILE | --ids 1,2,3)\n"
    "       attn compare [-m A] --init random [--seed S] (-p TEXT | ...)\n"
    "                    [--layers 0,3|all] [--heads 1,2|all] [-o DIR] [--svg]\n"
    "                    [--scale fixed|row|log] [--format table|tsv|json]\n"
    "                    [--top N] [--max-mem MB]\n\n"
    "Runs every model on the same tokens (the first model's tokenizer) and\n"
    "compares their attention head by head. The models must have the same\n"
    "number of layers and heads.\n"
    "  --init random   B is a random init of A's architecture (GPT-2 init), so a\n"
    "                  pattern can be told apart from what untrained weights give\n"
    "  --seed S        seed of that random init (default 1234)\n"
    "Table (stdout), one row per head:\n"
    "  jsd      Jensen-Shannon divergence between the attention rows of two\n"
    "           models, in bits (0 = identical, 1 = disjoint), mean over the query\n"
    "           positions 1..T-1; with 3+ models, between consecutive ones\n"
    "  A, B ..  each model's strongest head type and its score: the mean\n"
    "           attention mass on the previous token (prev), the first (first),\n"
    "           itself (self), the token after an earlier copy of the current\n"
    "           one (induct), earlier copies (dup), or key i-k, k = 2..8 (off<k>)\n"
    "           -- named only when the score is at least twice, and 0.2 above,\n"
    "           that of uniform causal attention on the same tokens (what a\n"
    "           random init gives); otherwise \u2014\n"
    "  most different (A-B): the --top N heads (default 5, 0 = none) with\n"
    "           the largest jsd A-B, largest first, as L<layer> H<head> jsd;\n"
    "           for a quantized file against its source: the heads whose\n"
    "           patterns moved most (json: \"most_different\": [{\"layer\",\n"
    "           \"head\", \"jsd_bits\"}])\n"
    "  json: {\"models\": [...], \"tokens\": [...], \"heads\": [{\"layer\", \"head\",\n"
    "        \"jsd_bits\": [one per consecutive pair], \"scores\": [one per model:\n"
    "        {\"previous\", \"first\", \"self\", \"induction\", \"duplicate\",\n"
    "        \"offset\", \"offset_k\", \"entropy_bits\"}]}]}\n"
    "Next token (table and json, models with one vocabulary size), per query\n"
    "position and consecutive pair: KL(A||B) of the next-token distributions\n"
    "softmax(logits), in nats (* = the top-1 tokens differ), with the mean and\n"
    "the top-1 agreement (positions with the same argmax, count and %); json:\n"
    "  \"next_token\": [{\"kl_nats\", \"top1_same\", \"mean_kl_nats\",\n"
    "  \"top1_agreement\" (fraction)}]. For a quantized file against its F16\n"
    "source this is the quantization's effect on the output; jsd above, on\n"
    "each head's pattern.\n"
    "Pictures (-o DIR), for each chosen head: DIR/compare_L<l>_H<h>.png, every\n"
    "model's map on one colour scale and, for two models, A - B on a diverging\n"
    "scale symmetric about 0 and shared by all these pictures;\n"
    "DIR/compare_grid.png: A - B for all chosen heads (two models). --svg also\n"
    "writes SVG. --layers/--heads choose the pictures (default all); the table\n"
    "always covers every head.\n"
    "Memory: every head of every model is kept (and A - B with -o DIR):\n"
    CLI_MAX_MEM_HELP;

typedef struct {
    attn_model *m;
    cli_attn a;            // every head, (L*H, T, T)
    cli_buf lg;            // logits (T, V) when the models share a vocabulary size
    attn_head_scores *sc;  // [L*H]
    char label[160];
} cmp_model;

static double head_jsd(const float *a, const float *b, int T) {
    double s = 0;
    for (int q = 1; q < T; q++) s += attn_jsd_bits(a + (size_t)q * T, b + (size_t)q * T, q + 1);
    return T > 1 ? s / (T - 1) : 0;
}

// KL(P || Q) in nats of the next-token distributions softmax(a), softmax(b)
// over V logits (double), and whether their argmax is the same (*same).
static double next_kl(const float *a, const float *b, int V, int *same) {
    double ma = a[0], mb = b[0], za = 0, zb = 0, kl = 0;
    int ia = 0, ib = 0;
    for (int v = 1; v < V; v++) {
        if (a[v] > ma) ma = a[v], ia = v;
        if (b[v] > mb) mb = b[v], ib = v;
    }
    for (int v = 0; v < V; v++) za += exp(a[v] - ma), zb += exp(b[v] - mb);
    double la = log(za), lb = log(zb);
    for (int v = 0; v < V; v++) {
        double pa = a[v] - ma - la, pb = b[v] - mb - lb; // log-probabilities
        kl += exp(pa) * (pa - pb);
    }
    *same = ia == ib;
    return kl > 0 ? kl : 0;
}

// Per position t, for consecutive models: KL of the next-token distributions
// (nats) and top-1 agreement. Table: one line per pair; json: "next_token".
static void print_next_token(const char *fmt, cmp_model *ms, int n, int T) {
    int V = ms[0].m->cfg.n_vocab;
    if (!ms[0].lg.p) {
        if (strcmp(fmt, "json")) printf("\nnext-token KL: not computed (the vocabulary sizes differ)\n");
        return;
    }
    int json = !strcmp(fmt, "json");
    printf(json ? ", \"next_token\": [" : "\nnext token, per position: KL(A||B) in nats, * = top-1 differs\n");
    for (int i = 1; i < n; i++) {
        const float *la = ms[i - 1].lg.p, *lb = ms[i].lg.p;
        double sum = 0;
        int agree = 0, same;
        if (json) printf("%s{\"kl_nats\": [", i > 1 ? ", " : "");
        else printf("%c-%c:", 'A' + i - 1, 'A' + i);
        for (int t = 0; t < T; t++) {
            double kl = next_kl(la + (size_t)t * V, lb + (size_t)t * V, V, &same);
            sum += kl;
            agree += same;
            if (json) printf("%s%.6g", t ? ", " : "", kl);
            else printf(" %.4f%s", kl, same ? "" : "*");
        }
        if (json) {
            printf("], \"top1_same\": [");
            for (int t = 0; t < T; t++) {
                next_kl(la + (size_t)t * V, lb + (size_t)t * V, V, &same);
                printf("%s%s", t ? ", " : "", same ? "true" : "false");
            }
            printf("], \"mean_kl_nats\": ");
            attn_json_numf(stdout, "%.6g", sum / T);
            cli_json_num("top1_agreement", "%.6g", (double)agree / T);
            printf("}");
        } else
            printf("\n     mean KL %.4f nats, top-1 agreement %d/%d (%.1f%%)\n", sum / T, agree, T, 100.0 * agree / T);
    }
    if (json) printf("]");
}

// A type is named only when its score clearly exceeds what attention without
// a pattern gives on these tokens (uniform causal attention, which a random
// init is close to): score >= 2 x uniform and score - uniform >= 0.2.
#define TYPE_RATIO 2.0
#define TYPE_MARGIN 0.2
static int clearly_above(double v, double unif) {
    return !isnan(v) && (isnan(unif) || (v >= TYPE_RATIO * unif && v - unif >= TYPE_MARGIN));
}

// The strongest head type of a head ("prev 0.91") among those clearly above
// the uniform baseline; "—" when none is.
static void dominant(const attn_head_scores *h, const attn_head_scores *unif, char *out, size_t n) {
    static const char *const shortn[ATTN_S_N] = {"prev", "first", "self", "induct", "dup", "off", "ent"};
    int best = -1;
    for (int i = ATTN_S_PREVIOUS; i <= ATTN_S_OFFSET; i++)
        if (clearly_above(h->s[i], unif->s[i]) && (best < 0 || h->s[i] > h->s[best])) best = i;
    if (best < 0) { snprintf(out, n, "\u2014"); return; }
    if (best == ATTN_S_OFFSET) snprintf(out, n, "off%d %.2f", h->offset_k, h->s[best]);
    else snprintf(out, n, "%s %.2f", shortn[best], h->s[best]);
}

// order[0..N) = the N heads of largest jsd A-B (the first pair), largest
// first, ties by index; returns N = min(top, nk).
static int rank_heads(const double *jsd, int np, int nk, int top, int *order) {
    int no = 0;
    for (int k = 0; k < nk; k++) {
        double v = jsd[(size_t)k * np];
        if (no == top && (no == 0 || v <= jsd[(size_t)order[no - 1] * np])) continue;
        int j = no < top ? no++ : no - 1;
        while (j > 0 && v > jsd[(size_t)order[j - 1] * np]) order[j] = order[j - 1], j--;
        order[j] = k;
    }
    return no;
}

// The --top heads of largest jsd A-B: json "most_different" or the table's line.
static void print_most_different(int json, const double *jsd, int np, int L, int H, int top, int *order) {
    if (np < 1) return;
    int no = rank_heads(jsd, np, L * H, top, order);
    if (json) {
        printf(", \"most_different\": [");
        for (int j = 0; j < no; j++) {
            printf("%s{\"layer\": %d, \"head\": %d, \"jsd_bits\": ", j ? ", " : "", order[j] / H, order[j] % H);
            attn_json_numf(stdout, "%.6g", jsd[(size_t)order[j] * np]);
            printf("}");
        }
        printf("]");
        return;
    }
    if (top < 1) return;
    printf("\nmost different (A-B):");
    for (int j = 0; j < no; j++) printf("  L%d H%d %.3f", order[j] / H, order[j] % H, jsd[(size_t)order[j] * np]);
    printf("\n");
}

static void print_table(const char *fmt, cmp_model *ms, int n, const double *jsd, char **labels, int T,
                        const attn_head_scores *unif, int top, int *order) {
    const attn_config *c = &ms[0].m->cfg;
    int L = c->n_layer, H = c->n_head, np = n - 1;
    char cell[32];
    if (!strcmp(fmt, "json")) {
        printf("{\"models\": [");
        for (int i = 0; i < n; i++) {
            printf(i ? ", " : "");
            attn_json_str(stdout, ms[i].label);
        }
        printf("], \"tokens\": [");
        for (int t = 0; t < T; t++) {
            printf(t ? ", " : "");
            attn_json_str(stdout, labels[t]);
        }
        printf("], \"heads\": [");
        for (int k = 0; k < L * H; k++) {
            printf("%s{\"layer\": %d, \"head\": %d, \"jsd_bits\": [", k ? ", " : "", k / H, k % H);
            for (int i = 0; i < np; i++) {
                printf(i ? ", " : "");
                attn_json_numf(stdout, "%.6g", jsd[(size_t)k * np + i]);
            }
            printf("], \"scores\": [");
            for (int i = 0; i < n; i++) {
                printf(i ? ", " : "");
                attn_json_scores(stdout, &ms[i].sc[k]);
            }
            printf("]}");
        }
        printf("]");
        print_most_different(1, jsd, np, L, H, top, order);
        return;
    }
    int tsv = !strcmp(fmt, "tsv");
    if (tsv) {
        printf("layer\thead");
        for (int i = 0; i < np; i++) printf("\tjsd_bits_%c%c", 'A' + i, 'A' + i + 1);
        for (int i = 0; i < n; i++) printf("\ttype_%c", 'A' + i);
        printf("\n");
    } else {
        for (int i = 0; i < n; i++) printf("%c = %s\n", 'A' + i, ms[i].label);
        printf("%d tokens. jsd: Jensen-Shannon divergence of the attention rows, bits (0 = same,\n"
               "1 = disjoint), mean over query positions 1..%d. Types: strongest head-type score\n"
               "(mean attention mass): prev, first, self, induct, dup, off<k> = key i-k; named only\n"
               "when >= 2 x and >= 0.2 above uniform attention's score, else \u2014.\n\n", T, T - 1);
        printf("layer  head");
        for (int i = 0; i < np; i++) printf("  jsd %c-%c", 'A' + i, 'A' + i + 1);
        for (int i = 0; i < n; i++) printf("  %-11c", 'A' + i);
        printf("\n");
    }
    for (int k = 0; k < L * H; k++) {
        printf(tsv ? "%d\t%d" : "%5d  %4d", k / H, k % H);
        for (int i = 0; i < np; i++) printf(tsv ? "\t%.6g" : "  %7.4f", jsd[(size_t)k * np + i]);
        for (int i = 0; i < n; i++) {
            dominant(&ms[i].sc[k], unif, cell, sizeof cell);
            if (tsv) printf("\t%s", cell);
            else { // pad by display columns: "—" is 3 bytes, 1 column
                int cols = 0;
                for (const char *p = cell; *p; p++) cols += ((unsigned char)*p & 0xC0) != 0x80;
                printf("  %s%*s", cell, cols < 11 ? 11 - cols : 0, "");
            }
        }
        printf("\n");
    }
    if (!tsv) print_most_different(0, jsd, np, L, H, top, order);
}

// ---- options -> result -> print

typedef struct {
    cli_opts o;
    const char *fmt;                          // table, tsv or json
    const char *init;                         // --init
    long seed, top;                           // --seed, --top N (most different heads)
    int svg, n;                               // --svg; models compared
    attn_scale scale;
} cmp_opts;

typedef struct {
    cmp_model *ms;     // (n) models, their attention, scores, logits
    int n, T, L, H, np; // models, tokens, layers, heads, neighbour pairs (n - 1)
    attn_pool *pool;
    int32_t *ids;
    char **labels;
    uint8_t *all, *lmask, *hmask; // all ones; --layers; --heads
    double *jsd;        // (L*H, np) JSD in bits between model i and i + 1
    int *order;         // (L*H) heads by jsd A-B, for --top
    attn_head_scores unif; // uniform causal attention's scores on these tokens
    char dir[1024];     // -o DIR ("" without)
    cli_buf diffb;      // (L*H, T, T) A - B with two models and -o
    attn_panel *panels;
    int n_files;        // pictures written
} cmp_result;

static int cmp_opt(void *p, const char *a, int argc, char **argv, int *i) {
    cmp_opts *co = p;
    const char *v;
    if (!strcmp(a, "--init")) return cli_opt_str(argc, argv, i, &co->init);
    if (!strcmp(a, "--seed")) return cli_opt_int(argc, argv, i, 0, 0x7FFFFFFFL, &co->seed);
    if (!strcmp(a, "--top")) return cli_opt_int(argc, argv, i, 0, 1L << 20, &co->top);
    if (!strcmp(a, "--svg")) return co->svg = 1;
    if (strcmp(a, "--scale")) return 0;
    return (v = cli_val(argc, argv, i)) && !cli_scale(v, &co->scale) ? 1 : CLI_PRINTED;
}

static int cmp_parse(int argc, char **argv, cmp_opts *co) {
    co->o.select = 1, co->seed = COMPARE_SEED, co->top = 5, co->scale = ATTN_SCALE_FIXED;
    cli_mem_init(&co->o.mem, "compare");
    if (cli_parse_opts(&co->o, argc, argv, cmp_opt, co)) return CLI_PRINTED;
    if (co->o.help) return 0;
    if (cli_format(&co->o, "table,tsv,json", &co->fmt)) return ATTN_EINPUT;
    if (co->init && strcmp(co->init, "random")) {
        cli_error("compare: --init '%s': only 'random' is known", co->init);
        return CLI_PRINTED;
    }
    co->n = co->init ? 2 : co->o.n_models;
    if (co->init ? co->o.n_models > 1 : co->o.n_models < 2) {
        cli_error("compare: give two or more models (-m A -m B), or one and --init random");
        return CLI_PRINTED;
    }
    return 0;
}

// The models (or one and its random init), the prompt, and that they fit together.
static int cmp_load(const cmp_opts *co, cmp_result *r) {
    int n = r->n = co->n, rc = (r->ms = calloc((size_t)n, sizeof *r->ms)) ? 0 : attn_err(ATTN_EFAIL, "out of memory");
    cmp_model *ms = r->ms;
    if (!rc) rc = cli_pool(&co->o, &r->pool); // (a random init is made on its threads)
    for (int i = 0; !rc && i < n; i++) {
        if (co->init && i == 1) {
            rc = attn_model_random(&ms[1].m, ms[0].m, (uint64_t)co->seed, r->pool);
            snprintf(ms[1].label, sizeof ms[1].label, "random init of %s (seed %ld)", ms[0].m->name, co->seed);
        } else {
            rc = cli_load_model(&co->o, i, &ms[i].m);
            if (!rc) snprintf(ms[i].label, sizeof ms[i].label, "%s", ms[i].m->name);
        }
    }
    if (!rc) rc = cli_prompt_ids(&co->o, ms[0].m, &r->ids, &r->T);
    if (!rc) rc = attn_token_labels(ms[0].m->tok, r->ids, r->T, &r->labels);
    if (rc) return rc;
    int L = r->L = ms[0].m->cfg.n_layer, H = r->H = ms[0].m->cfg.n_head, T = r->T;
    r->np = n - 1;
    for (int i = 1; i < n && !rc; i++) {
        const attn_config *ci = &ms[i].m->cfg;
        if (ci->n_layer != L || ci->n_head != H)
            rc = attn_err(ATTN_EINPUT, "compare: %s has %d layers x %d heads, %s has %d x %d", ms[0].label, L, H,
                          ms[i].label, ci->n_layer, ci->n_head);
        else if (T > ci->n_ctx)
            rc = attn_err(ATTN_EINPUT, "compare: the prompt is %d tokens, longer than %s's context of %d", T,
                          ms[i].label, ci->n_ctx);
        for (int t = 0; !rc && t < T; t++)
            if (r->ids[t] >= ci->n_vocab)
                rc = attn_err(ATTN_EINPUT, "compare: token id %d is outside %s's vocabulary of %d", r->ids[t],
                              ms[i].label, ci->n_vocab);
    }
    return rc;
}

// Masks and the output dir; then every head of every model, its scores, and
// the divergence between neighbours.
static int cmp_compute(cmp_opts *co, cmp_result *r) {
    int rc = cmp_load(co, r), L = r->L, H = r->H, n = r->n, np = r->np, T = r->T;
    if (rc) return rc;
    r->all = malloc((size_t)(L > H ? L : H)), r->lmask = malloc((size_t)L), r->hmask = malloc((size_t)H);
    r->jsd = malloc((size_t)L * H * (np > 0 ? np : 1) * sizeof *r->jsd);
    r->order = malloc((size_t)L * H * sizeof *r->order);
    if (!r->all || !r->lmask || !r->hmask || !r->jsd || !r->order) return attn_err(ATTN_EFAIL, "out of memory");
    memset(r->all, 1, (size_t)(L > H ? L : H));
    if (cli_select(&co->o, L, H, r->lmask, r->hmask)) return CLI_PRINTED;
    if (co->o.out_dir && (rc = cli_out_dir(&co->o, NULL, r->dir, sizeof r->dir))) return rc;
    if (r->dir[0]) co->o.mem.dir = r->dir;
    cmp_model *ms = r->ms;
    size_t tt = (size_t)T * T;
    int V = ms[0].m->cfg.n_vocab, same_vocab = 1;
    for (int i = 1; i < n; i++) same_vocab &= ms[i].m->cfg.n_vocab == V;
    for (int i = 0; i < n && !rc; i++) {
        cli_progress("compare", i, n);
        if (same_vocab && (rc = cli_buf_new(&co->o.mem, &ms[i].lg, (size_t)T * V, "the logits"))) break;
        if ((rc = cli_attn_capture_logits(ms[i].m, r->pool, r->ids, T, r->all, r->all, &co->o.mem, &ms[i].a, ms[i].lg.p)))
            break;
        if (!(ms[i].sc = malloc((size_t)L * H * sizeof *ms[i].sc))) { rc = attn_err(ATTN_EFAIL, "out of memory"); break; }
        for (int k = 0; k < L * H; k++) attn_head_scores_of(ms[i].a.buf.p + k * tt, r->ids, T, &ms[i].sc[k]);
        if (i > 0)
            for (int k = 0; k < L * H; k++)
                r->jsd[(size_t)k * np + i - 1] = head_jsd(ms[i - 1].a.buf.p + k * tt, ms[i].a.buf.p + k * tt, T);
    }
    cli_progress("compare", n, n);
    if (!rc) attn_head_scores_uniform(r->ids, T, &r->unif);
    return rc;
}

static int cmp_pictures(cmp_opts *co, cmp_result *r);

// The tables, then with -o DIR the pictures.
static int print_compare(cmp_result *r, cmp_opts *co) {
    const char *fmt = co->fmt;
    int top = (int)co->top, rc = 0;
    print_table(fmt, r->ms, r->n, r->jsd, r->labels, r->T, &r->unif, top, r->order);
    if (strcmp(fmt, "tsv")) print_next_token(fmt, r->ms, r->n, r->T);
    if (!strcmp(fmt, "json")) printf("}\n");
    if (r->dir[0] && !(rc = cmp_pictures(co, r)))
        cli_note("compare: wrote %d picture%s to %s", r->n_files, r->n_files == 1 ? "" : "s", r->dir);
    return rc;
}

// A - B of every head into r->diffb; the largest |A - B| of the chosen heads.
static int cmp_diff(cmp_opts *co, cmp_result *r, float *dmax) {
    size_t tt = (size_t)r->T * r->T;
    int rc = cli_buf_new(&co->o.mem, &r->diffb, (size_t)r->L * r->H * tt, "the difference A - B of every head");
    if (rc) return rc;
    float *diff = r->diffb.p;
    for (int k = 0; k < r->L * r->H; k++)
        for (size_t j = 0; j < tt; j++) {
            float d = r->ms[0].a.buf.p[k * tt + j] - r->ms[1].a.buf.p[k * tt + j];
            diff[k * tt + j] = d;
            if (r->lmask[k / r->H] && r->hmask[k % r->H] && fabsf(d) > *dmax) *dmax = fabsf(d);
        }
    return 0;
}

// DIR/compare_grid: A - B of every chosen head, layer x head.
static int cmp_grid(const cmp_opts *co, cmp_result *r, attn_figure *f, char title[300], char note[300]) {
    int L = r->L, H = r->H, nl = 0, nh = 0, rc = 0;
    size_t tt = (size_t)r->T * r->T;
    for (int l = 0; l < L; l++) nl += r->lmask[l];
    for (int h = 0; h < H; h++) nh += r->hmask[h];
    if (r->n != 2 || nl * nh <= 1) return 0;
    // one label per chosen layer and head, however many (no fixed cap)
    char (*rnames)[24] = calloc((size_t)L, 24), (*cnames)[24] = calloc((size_t)H, 24);
    const char **rn = calloc((size_t)L, sizeof *rn), **cn2 = calloc((size_t)H, sizeof *cn2);
    int nr = 0, q = 0, i = 0;
    if (!rnames || !cnames || !rn || !cn2) rc = attn_err(ATTN_EFAIL, "out of memory");
    for (int l = 0; !rc && l < L; l++)
        if (r->lmask[l]) snprintf(rnames[nr], 24, "layer %d", l), rn[nr] = rnames[nr], nr++;
    for (int h = 0; !rc && h < H; h++)
        if (r->hmask[h]) snprintf(cnames[q], 24, "head %d", h), cn2[q] = cnames[q], q++;
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++)
            if (r->lmask[l] && r->hmask[h] && i < L * H * 3)
                r->panels[i].p = r->diffb.p + ((size_t)l * H + h) * tt, r->panels[i++].diverging = 1;
    snprintf(title, 300, "A - B, every chosen head");
    snprintf(note, 300, "A = %.120s\nB = %.120s", r->ms[0].label, r->ms[1].label);
    f->rows = nr, f->cols = q, f->row_names = rn, f->col_names = cn2;
    if (!rc) rc = cli_write_figure(f, r->dir, "compare_grid", 1, co->svg);
    r->n_files++;
    free(rnames), free(cnames), free(rn), free(cn2);
    return rc;
}

// Item k of compare's per-head figures: head k % H of layer k / H in every
// model side by side (and A - B); 0 where that head is not chosen.
typedef struct { const cmp_result *r; const attn_figure *f; } cmp_figures;

static int cmp_figure(void *ctx, int k, cli_figure_item *it) {
    const cmp_figures *cf = ctx;
    const cmp_result *r = cf->r;
    int n = r->n, H = r->H;
    size_t tt = (size_t)r->T * r->T;
    if (!r->lmask[k / H] || !r->hmask[k % H]) return 0;
    it->f = *cf->f;
    for (int i = 0; i < n && i < 8; i++)
        it->panels[i] = (attn_panel){ .p = r->ms[i].a.buf.p + k * tt, .window = attn_layer_window(&r->ms[i].m->cfg, k / H) };
    if (n == 2) it->panels[2] = (attn_panel){ .p = r->diffb.p + k * tt, .diverging = 1 };
    snprintf(it->title, sizeof it->title, "layer %d, head %d: %s", k / H, k % H, n == 2 ? "A vs B" : "checkpoints");
    int o2 = snprintf(it->note, sizeof it->note, "%d tokens; Jensen-Shannon divergence", r->T);
    for (int i = 0; i < r->np && o2 < (int)sizeof it->note - 40; i++)
        o2 += snprintf(it->note + o2, sizeof it->note - o2, " %c-%c %.3f", 'A' + i, 'A' + i + 1, r->jsd[(size_t)k * r->np + i]);
    snprintf(it->note + o2, sizeof it->note - o2, " bits");
    snprintf(it->stem, sizeof it->stem, "compare_L%02d_H%02d", k / H, k % H);
    it->f.title = it->title, it->f.note = it->note, it->f.panels = it->panels;
    return 1;
}

// -o DIR: per chosen head the models side by side (and A - B), then the grid.
static int cmp_pictures(cmp_opts *co, cmp_result *r) {
    int n = r->n, H = r->H, ncol = n + (n == 2), rc = 0;
    float dmax = 0;
    if (!(r->panels = calloc((size_t)r->L * H * 3, sizeof *r->panels))) return attn_err(ATTN_EFAIL, "out of memory");
    if (n == 2 && (rc = cmp_diff(co, r, &dmax))) return rc;
    char names[8][200], title[300], note[300];
    const char *cn[8];
    for (int i = 0; i < ncol && i < 8; i++) {
        if (i < n) snprintf(names[i], sizeof names[i], "%c: %.180s", 'A' + i, r->ms[i].label);
        else snprintf(names[i], sizeof names[i], "A - B");
        cn[i] = names[i];
    }
    attn_figure f = {.T = r->T, .labels = (const char *const *)r->labels, .rows = 1, .cols = ncol < 8 ? ncol : 8,
                     .col_names = cn, .scale = co->scale, .dmax = dmax, .causal = 1, .title = title, .note = note,
                     .panels = r->panels};
    cmp_figures cf = { r, &f };
    rc = cli_write_figures(r->pool, "compare", r->L * H, cmp_figure, &cf, r->dir, 1, co->svg, &r->n_files);
    return rc ? rc : cmp_grid(co, r, &f, title, note);
}

static void cmp_result_free(cmp_result *r) {
    for (int i = 0; r->ms && i < r->n; i++) {
        cli_attn_free(&r->ms[i].a);
        cli_buf_free(&r->ms[i].lg);
        free(r->ms[i].sc);
        attn_model_free(r->ms[i].m);
    }
    free(r->ms), free(r->all), free(r->lmask), free(r->hmask), free(r->jsd), free(r->order), free(r->panels), free(r->ids);
    cli_buf_free(&r->diffb);
    if (r->labels) attn_labels_free(r->labels, r->T);
    attn_pool_free(r->pool);
}

CLI_COMMAND(compare, cmp, "two models, or a model against its own random init", COMPARE_HELP);
