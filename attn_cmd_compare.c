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

static const char *COMPARE_HELP =
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
            printf("], \"mean_kl_nats\": %.6g, \"top1_agreement\": %.6g}", sum / T, (double)agree / T);
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
        if (np > 0) {
            int no = rank_heads(jsd, np, L * H, top, order);
            printf(", \"most_different\": [");
            for (int j = 0; j < no; j++) {
                printf("%s{\"layer\": %d, \"head\": %d, \"jsd_bits\": ", j ? ", " : "", order[j] / H, order[j] % H);
                attn_json_numf(stdout, "%.6g", jsd[(size_t)order[j] * np]);
                printf("}");
            }
            printf("]");
        }
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
    if (tsv || np < 1 || top < 1) return;
    int no = rank_heads(jsd, np, L * H, top, order);
    printf("\nmost different (A-B):");
    for (int j = 0; j < no; j++) printf("  L%d H%d %.3f", order[j] / H, order[j] % H, jsd[(size_t)order[j] * np]);
    printf("\n");
}

int cmd_compare(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    const char *layers_s = "all", *heads_s = "all", *init = NULL;
    long seed = COMPARE_SEED, top = 5;
    int svg = 0;
    attn_scale scale = ATTN_SCALE_FIXED;
    cli_mem_init(&o.mem, "compare");
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (!strcmp(a, "--layers")) { if (!(layers_s = cli_val(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--heads")) { if (!(heads_s = cli_val(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--init")) { if (!(init = cli_val(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--seed")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_int(a, v, 0, 0x7FFFFFFFL, &seed)) return 2;
        } else if (!strcmp(a, "--scale")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_scale(v, &scale)) return 2;
        } else if (!strcmp(a, "--top")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_int(a, v, 0, 1L << 20, &top)) return 2;
        } else if (!strcmp(a, "--svg")) svg = 1;
        else return cli_bad_opt("compare", a);
    }
    if (o.help) { fputs(COMPARE_HELP, stdout); return 0; }
    const char *fmt;
    if (cli_format(&o, "table,tsv,json", &fmt)) return cli_fail();
    if (init && strcmp(init, "random")) {
        cli_error("compare: --init '%s': only 'random' is known", init);
        return 2;
    }
    int n = init ? 2 : o.n_models;
    if (init ? o.n_models > 1 : o.n_models < 2) {
        fprintf(stderr, "attn: compare: give two or more models (-m A -m B), or one and --init random\n");
        return 2;
    }
    cmp_model *ms = calloc((size_t)n, sizeof *ms);
    attn_pool *pool = NULL;
    int32_t *ids = NULL;
    char **labels = NULL, dir[1024] = "";
    uint8_t *all = NULL, *lmask = NULL, *hmask = NULL;
    double *jsd = NULL;
    int *order = NULL; // [L*H] heads by jsd A-B (--top)
    cli_buf diffb = {0};
    float *diff = NULL;
    attn_panel *panels = NULL;
    int T = 0, rc = ms ? 0 : attn_err(ATTN_EFAIL, "out of memory");
    for (int i = 0; !rc && i < n; i++) {
        if (init && i == 1) {
            rc = attn_model_random(&ms[1].m, ms[0].m, (uint64_t)seed);
            snprintf(ms[1].label, sizeof ms[1].label, "random init of %s (seed %ld)", ms[0].m->name, seed);
        } else {
            rc = cli_load_model(&o, i, &ms[i].m);
            if (!rc) snprintf(ms[i].label, sizeof ms[i].label, "%s", ms[i].m->name);
        }
    }
    if (!rc) rc = cli_prompt_ids(&o, ms[0].m, &ids, &T);
    if (!rc) rc = attn_token_labels(ms[0].m->tok, ids, T, &labels);
    if (!rc) rc = cli_pool(&o, &pool);
    if (rc) goto done;
    const attn_config *c = &ms[0].m->cfg;
    int L = c->n_layer, H = c->n_head, np = n - 1;
    for (int i = 1; i < n && !rc; i++) {
        const attn_config *ci = &ms[i].m->cfg;
        if (ci->n_layer != L || ci->n_head != H)
            rc = attn_err(ATTN_EINPUT, "compare: %s has %d layers x %d heads, %s has %d x %d", ms[0].label, L, H,
                          ms[i].label, ci->n_layer, ci->n_head);
        else if (T > ci->n_ctx)
            rc = attn_err(ATTN_EINPUT, "compare: the prompt is %d tokens, longer than %s's context of %d", T,
                          ms[i].label, ci->n_ctx);
        for (int t = 0; !rc && t < T; t++)
            if (ids[t] >= ci->n_vocab)
                rc = attn_err(ATTN_EINPUT, "compare: token id %d is outside %s's vocabulary of %d", ids[t],
                              ms[i].label, ci->n_vocab);
    }
    if (rc) goto done;
    all = malloc((size_t)(L > H ? L : H)), lmask = malloc((size_t)L), hmask = malloc((size_t)H);
    jsd = malloc((size_t)L * H * (np > 0 ? np : 1) * sizeof *jsd);
    order = malloc((size_t)L * H * sizeof *order);
    if (!all || !lmask || !hmask || !jsd || !order) { rc = attn_err(ATTN_EFAIL, "out of memory"); goto done; }
    memset(all, 1, (size_t)(L > H ? L : H));
    if (cli_index_list("--layers", layers_s, L, lmask) || cli_index_list("--heads", heads_s, H, hmask)) {
        rc = -1;
        goto done;
    }
    if (o.out_dir && (rc = cli_out_dir(&o, NULL, dir, sizeof dir))) goto done;
    if (dir[0]) o.mem.dir = dir;

    // every head of every model, its scores, and the divergence between neighbours
    size_t tt = (size_t)T * T;
    int same_vocab = 1;
    for (int i = 1; i < n; i++) same_vocab &= ms[i].m->cfg.n_vocab == c->n_vocab;
    for (int i = 0; i < n && !rc; i++) {
        cli_progress("compare", i, n);
        if (same_vocab && (rc = cli_buf_new(&o.mem, &ms[i].lg, (size_t)T * c->n_vocab, "the logits"))) break;
        if ((rc = cli_attn_capture_logits(ms[i].m, pool, ids, T, all, all, &o.mem, &ms[i].a, ms[i].lg.p))) break;
        if (!(ms[i].sc = malloc((size_t)L * H * sizeof *ms[i].sc))) { rc = attn_err(ATTN_EFAIL, "out of memory"); break; }
        for (int k = 0; k < L * H; k++) attn_head_scores_of(ms[i].a.buf.p + k * tt, ids, T, &ms[i].sc[k]);
        if (i > 0)
            for (int k = 0; k < L * H; k++)
                jsd[(size_t)k * np + i - 1] = head_jsd(ms[i - 1].a.buf.p + k * tt, ms[i].a.buf.p + k * tt, T);
    }
    cli_progress("compare", n, n);
    if (rc) goto done;
    attn_head_scores unif;
    attn_head_scores_uniform(ids, T, &unif);
    print_table(fmt, ms, n, jsd, labels, T, &unif, (int)top, order);
    if (strcmp(fmt, "tsv")) print_next_token(fmt, ms, n, T);
    if (!strcmp(fmt, "json")) printf("}\n");

    if (dir[0]) { // pictures of the chosen heads
        int ncol = n + (n == 2), nl = 0, nh = 0, n_files = 0;
        float dmax = 0;
        panels = calloc((size_t)L * H * 3, sizeof *panels);
        if (!panels) { rc = attn_err(ATTN_EFAIL, "out of memory"); goto done; }
        if (n == 2 && (rc = cli_buf_new(&o.mem, &diffb, (size_t)L * H * tt, "the difference A - B of every head"))) goto done;
        diff = diffb.p;
        for (int k = 0; n == 2 && k < L * H; k++)
            for (size_t j = 0; j < tt; j++) {
                float d = ms[0].a.buf.p[k * tt + j] - ms[1].a.buf.p[k * tt + j];
                diff[k * tt + j] = d;
                if (lmask[k / H] && hmask[k % H] && fabsf(d) > dmax) dmax = fabsf(d);
            }
        char names[8][200], title[300], note[300], stem[64];
        const char *cn[8];
        for (int i = 0; i < ncol && i < 8; i++) {
            if (i < n) snprintf(names[i], sizeof names[i], "%c: %.180s", 'A' + i, ms[i].label);
            else snprintf(names[i], sizeof names[i], "A - B");
            cn[i] = names[i];
        }
        attn_figure f = {.T = T, .labels = (const char *const *)labels, .rows = 1, .cols = ncol < 8 ? ncol : 8,
                         .col_names = cn, .scale = scale, .dmax = dmax, .causal = 1, .title = title, .note = note};
        for (int k = 0; k < L * H && !rc; k++) {
            if (!lmask[k / H] || !hmask[k % H]) continue;
            for (int i = 0; i < n && i < 8; i++)
                panels[i].p = ms[i].a.buf.p + k * tt, panels[i].diverging = 0,
                panels[i].window = attn_layer_window(&ms[i].m->cfg, k / H);
            if (n == 2) panels[2].p = diff + k * tt, panels[2].diverging = 1;
            f.panels = panels;
            snprintf(title, sizeof title, "layer %d, head %d: %s", k / H, k % H,
                     n == 2 ? "A vs B" : "checkpoints");
            int o2 = 0;
            o2 += snprintf(note + o2, sizeof note - o2, "%d tokens; Jensen-Shannon divergence", T);
            for (int i = 0; i < np && o2 < (int)sizeof note - 40; i++)
                o2 += snprintf(note + o2, sizeof note - o2, " %c-%c %.3f", 'A' + i, 'A' + i + 1, jsd[(size_t)k * np + i]);
            snprintf(note + o2, sizeof note - o2, " bits");
            snprintf(stem, sizeof stem, "compare_L%02d_H%02d", k / H, k % H);
            rc = cli_write_figure(&f, dir, stem, 1, svg);
            n_files++;
        }
        for (int l = 0; l < L; l++) nl += lmask[l];
        for (int h = 0; h < H; h++) nh += hmask[h];
        if (!rc && n == 2 && nl * nh > 1) { // A - B of every chosen head
            // one label per chosen layer and head, however many (no fixed cap)
            char (*rnames)[24] = calloc((size_t)L, 24), (*cnames)[24] = calloc((size_t)H, 24);
            const char **rn = calloc((size_t)L, sizeof *rn), **cn2 = calloc((size_t)H, sizeof *cn2);
            int r = 0, q = 0;
            if (!rnames || !cnames || !rn || !cn2) rc = attn_err(ATTN_EFAIL, "out of memory");
            for (int l = 0; !rc && l < L; l++)
                if (lmask[l]) snprintf(rnames[r], 24, "layer %d", l), rn[r] = rnames[r], r++;
            for (int h = 0; !rc && h < H; h++)
                if (hmask[h]) snprintf(cnames[q], 24, "head %d", h), cn2[q] = cnames[q], q++;
            int i = 0;
            for (int l = 0; l < L; l++)
                for (int h = 0; h < H; h++)
                    if (lmask[l] && hmask[h] && i < L * H * 3) panels[i].p = diff + ((size_t)l * H + h) * tt, panels[i++].diverging = 1;
            snprintf(title, sizeof title, "A - B, every chosen head");
            snprintf(note, sizeof note, "A = %.120s\nB = %.120s", ms[0].label, ms[1].label);
            f.rows = r, f.cols = q, f.row_names = rn, f.col_names = cn2;
            if (!rc) rc = cli_write_figure(&f, dir, "compare_grid", 1, svg);
            n_files++;
            free(rnames), free(cnames), free(rn), free(cn2);
        }
        if (!rc) fprintf(stderr, "attn: compare: wrote %d picture%s to %s\n", n_files, n_files == 1 ? "" : "s", dir);
    }
done:
    for (int i = 0; ms && i < n; i++) {
        cli_attn_free(&ms[i].a);
        cli_buf_free(&ms[i].lg);
        free(ms[i].sc);
        attn_model_free(ms[i].m);
    }
    free(ms), free(all), free(lmask), free(hmask), free(jsd), free(order), free(panels), free(ids);
    cli_buf_free(&diffb);
    if (labels) attn_labels_free(labels, T);
    attn_pool_free(pool);
    return rc < 0 ? 2 : rc ? cli_fail_rc(rc) : 0;
}
