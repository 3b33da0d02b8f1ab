// attn_analysis.c - section "analysis": head-type scores of attention rows
// (previous, first, self, induction, duplicate, fixed offset, entropy), the
// uniform causal baseline, the per-model capture accumulator, corpus
// statistics (Welford), the induction test sequence and its loss, and the
// logit lens. Definitions are in attn.h and the README ("What the numbers
// mean"; the stages: "How it fits together").
#include "attn.h"
#include <stdio.h>
#include "simd/kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const attn_score_names[ATTN_S_N] = {
    "previous", "first", "self", "induction", "duplicate", "offset", "entropy_bits",
};

int attn_score_index(const char *name) {
    for (int i = 0; i < ATTN_S_N; i++)
        if (!strcmp(name, attn_score_names[i])) return i;
    return -1;
}

// ---------------------------------------------------------------- scores

void attn_score_acc_init(attn_score_acc *a) { memset(a, 0, sizeof *a); }

static void acc_add(attn_score_acc *a, int s, double v) {
    a->sum[s] += v;
    a->n[s]++;
}

// One query row i over keys 0..i; p == NULL is the uniform row 1/(i+1).
static void acc_row(attn_score_acc *a, const int32_t *ids, int i, const float *p) {
    double u = 1.0 / (i + 1);
#define MASS(j) (p ? (double)p[j] : u)
    if (i >= 1) {
        acc_add(a, ATTN_S_PREVIOUS, MASS(i - 1));
        acc_add(a, ATTN_S_FIRST, MASS(0));
        acc_add(a, ATTN_S_SELF, MASS(i));
    }
    for (int k = ATTN_OFFSET_MIN; k <= ATTN_OFFSET_MAX && k <= i; k++) {
        a->off_sum[k] += MASS(i - k);
        a->off_n[k]++;
    }
    // earlier occurrences j of the same token: duplicate targets j, induction targets j+1 < i
    double dup = 0, ind = 0;
    int n_dup = 0, n_ind = 0;
    for (int j = 0; j < i; j++) {
        if (ids[j] != ids[i]) continue;
        dup += MASS(j);
        n_dup++;
        if (j + 1 < i) {
            ind += MASS(j + 1);
            n_ind++;
        }
    }
    if (n_dup) acc_add(a, ATTN_S_DUPLICATE, dup);
    if (n_ind) acc_add(a, ATTN_S_INDUCTION, ind);
    double h = 0;
    if (p) {
        for (int j = 0; j <= i; j++)
            if (!isfinite(p[j])) h = NAN; // a non-finite row has no entropy (not 0)
            else if (p[j] > 0) h -= p[j] * log2((double)p[j]);
    } else {
        h = log2((double)(i + 1));
    }
    acc_add(a, ATTN_S_ENTROPY, h);
#undef MASS
}

void attn_score_acc_rows(attn_score_acc *a, const int32_t *ids, int q0, int nq, int nk,
                         const float *p) {
    for (int r = 0; r < nq; r++) acc_row(a, ids, q0 + r, p ? p + (size_t)r * nk : NULL);
}

// Set offset_k and s[ATTN_S_OFFSET] from offset_mass (ties: the smaller k).
static void pick_offset(attn_head_scores *h) {
    h->offset_k = 0;
    h->s[ATTN_S_OFFSET] = NAN;
    for (int k = ATTN_OFFSET_MIN; k <= ATTN_OFFSET_MAX; k++) {
        double m = h->offset_mass[k];
        if (isnan(m)) continue;
        if (!h->offset_k || m > h->s[ATTN_S_OFFSET]) {
            h->offset_k = k;
            h->s[ATTN_S_OFFSET] = m;
        }
    }
}

void attn_score_acc_get(const attn_score_acc *a, attn_head_scores *out) {
    out->nonfinite = 0;
    for (int s = 0; s < ATTN_S_N; s++) {
        out->s[s] = a->n[s] ? a->sum[s] / a->n[s] : NAN;
        if (a->n[s] && !isfinite(a->sum[s])) out->nonfinite |= 1u << s;
    }
    int off_bad = 0;
    for (int k = 0; k <= ATTN_OFFSET_MAX; k++) {
        out->offset_mass[k] = a->off_n[k] ? a->off_sum[k] / a->off_n[k] : NAN;
        off_bad |= a->off_n[k] && !isfinite(a->off_sum[k]);
    }
    pick_offset(out);
    if (off_bad) { // the best k cannot be chosen among NaN masses
        out->s[ATTN_S_OFFSET] = NAN;
        out->nonfinite |= 1u << ATTN_S_OFFSET;
    }
}

void attn_head_scores_of(const float *p, const int32_t *ids, int T, attn_head_scores *out) {
    attn_score_acc a;
    attn_score_acc_init(&a);
    attn_score_acc_rows(&a, ids, 0, T, T, p);
    attn_score_acc_get(&a, out);
}

void attn_head_scores_uniform(const int32_t *ids, int T, attn_head_scores *out) {
    attn_head_scores_of(NULL, ids, T, out);
}

// ---------------------------------------------------------------- all heads

int attn_heads_acc_new(attn_heads_acc **out, int n_layer, int n_head) {
    attn_heads_acc *h = calloc(1, sizeof *h);
    if (h) h->acc = calloc((size_t)n_layer * n_head, sizeof *h->acc);
    if (!h || !h->acc) {
        free(h);
        return attn_err(ATTN_EFAIL, "head scores: out of memory");
    }
    h->n_layer = n_layer;
    h->n_head = n_head;
    *out = h;
    return 0;
}

void attn_heads_acc_reset(attn_heads_acc *h) {
    memset(h->acc, 0, (size_t)h->n_layer * h->n_head * sizeof *h->acc);
}

void attn_heads_acc_free(attn_heads_acc *h) {
    if (!h) return;
    free(h->acc);
    free(h);
}

void attn_heads_acc_on_attn(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p) {
    attn_heads_acc *h = ctx;
    int skip = h->row_min - q0; // leading rows before row_min
    if (skip < 0) skip = 0;
    if (skip >= nq) return;
    attn_score_acc_rows(&h->acc[(size_t)layer * h->n_head + head], h->ids, q0 + skip, nq - skip,
                        nk, p + (size_t)skip * nk);
}

void attn_heads_acc_get(const attn_heads_acc *h, attn_head_scores *scores) {
    for (int i = 0; i < h->n_layer * h->n_head; i++) attn_score_acc_get(&h->acc[i], &scores[i]);
}

int attn_score_heads(const attn_model *m, attn_session *s, const int32_t *ids, int T, float *logits,
                     attn_head_scores *out) {
    attn_heads_acc *h;
    int rc = attn_heads_acc_new(&h, m->cfg.n_layer, m->cfg.n_head);
    if (rc) return rc;
    h->ids = ids;
    attn_capture cap = {.on_attn = attn_heads_acc_on_attn, .ctx = h};
    attn_session_reset(s);
    rc = attn_session_feed(s, ids, T, logits, 0, &cap);
    if (!rc) attn_heads_acc_get(h, out);
    attn_heads_acc_free(h);
    return rc;
}

// ---------------------------------------------------------------- corpus statistics

// x NaN: undefined (skipped); bad: x came from non-finite data (counted apart).
static void stat_add(attn_stat *st, double x, int bad) {
    if (bad) {
        st->bad++;
        return;
    }
    if (isnan(x)) return;
    st->n++;
    double d = x - st->mean;
    st->mean += d / st->n;
    st->m2 += d * (x - st->mean);
}

void attn_stat_add(attn_stat *st, double x) { stat_add(st, x, !isnan(x) && !isfinite(x)); }

double attn_stat_sd(const attn_stat *st) {
    return st->n < 2 ? 0.0 : sqrt(st->m2 / (st->n - 1));
}

void attn_head_stats_add(attn_head_stats *a, const attn_head_scores *h) {
    for (int s = 0; s < ATTN_S_N; s++)
        if (s != ATTN_S_OFFSET) stat_add(&a->s[s], h->s[s], h->nonfinite >> s & 1);
    int off_bad = h->nonfinite >> ATTN_S_OFFSET & 1;
    for (int k = ATTN_OFFSET_MIN; k <= ATTN_OFFSET_MAX; k++)
        stat_add(&a->off[k], h->offset_mass[k], off_bad);
}

void attn_head_stats_get(const attn_head_stats *a, attn_head_scores *mean, attn_head_scores *sd,
                         long n[ATTN_S_N]) {
    int off_bad = 0;
    for (int k = 0; k <= ATTN_OFFSET_MAX; k++) {
        mean->offset_mass[k] = a->off[k].n && !a->off[k].bad ? a->off[k].mean : NAN;
        off_bad |= a->off[k].bad > 0;
    }
    mean->nonfinite = 0;
    for (int s = 0; s < ATTN_S_N; s++) {
        mean->s[s] = a->s[s].n && !a->s[s].bad ? a->s[s].mean : NAN;
        if (a->s[s].bad) mean->nonfinite |= 1u << s;
    }
    pick_offset(mean);
    if (off_bad) mean->nonfinite |= 1u << ATTN_S_OFFSET;
    int k = mean->offset_k;
    if (sd) {
        for (int j = 0; j <= ATTN_OFFSET_MAX; j++)
            sd->offset_mass[j] = a->off[j].n && !a->off[j].bad ? attn_stat_sd(&a->off[j]) : NAN;
        for (int s = 0; s < ATTN_S_N; s++) sd->s[s] = a->s[s].n && !a->s[s].bad ? attn_stat_sd(&a->s[s]) : NAN;
        sd->offset_k = k;
        sd->s[ATTN_S_OFFSET] = k ? sd->offset_mass[k] : NAN;
        sd->nonfinite = mean->nonfinite;
    }
    if (n) {
        for (int s = 0; s < ATTN_S_N; s++) n[s] = a->s[s].n;
        n[ATTN_S_OFFSET] = k ? a->off[k].n : 0;
    }
}

// ---------------------------------------------------------------- induction test

// splitmix64: a small fixed PRNG, so a seed gives the same sequence everywhere.
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t rand_below(uint64_t *st, uint32_t n) { return (uint32_t)(splitmix64(st) % n); }

int attn_induction_ids(int32_t *out, int n_vocab, int len, uint64_t seed, int bos, int eos) {
    int n = 0;
    if (bos >= 0) out[n++] = bos;
    // the allowed ids, shuffled lazily (partial Fisher-Yates) when drawing without repetition
    int32_t *pool = malloc((size_t)n_vocab * sizeof *pool);
    int n_pool = 0;
    for (int v = 0; v < n_vocab; v++)
        if (v != bos && v != eos) {
            if (pool) pool[n_pool] = v;
            n_pool++;
        }
    uint64_t st = seed;
    for (int i = 0; i < len; i++) {
        int32_t id;
        if (pool && n_pool >= len) { // without repetition
            int r = i + (int)rand_below(&st, (uint32_t)(n_pool - i));
            id = pool[r];
            pool[r] = pool[i];
            pool[i] = id;
        } else if (pool) {
            id = pool[rand_below(&st, (uint32_t)n_pool)];
        } else { // no memory for the pool: draw and redraw past bos/eos
            do id = (int32_t)rand_below(&st, (uint32_t)n_vocab);
            while ((id == bos || id == eos) && n_vocab > 2);
        }
        out[n + i] = id;
    }
    memcpy(out + n + len, out + n, (size_t)len * sizeof *out);
    free(pool);
    return n + 2 * len;
}

double attn_mean_nll(const float *logits, int V, const int32_t *ids, int from, int to) {
    if (from < 1) from = 1;
    if (to <= from) return NAN;
    double total = 0;
    for (int t = from; t < to; t++) {
        const float *l = logits + (size_t)(t - 1) * V;
        double mx = l[0];
        for (int v = 1; v < V; v++)
            if (l[v] > mx) mx = l[v];
        double z = 0;
        for (int v = 0; v < V; v++) z += exp((double)l[v] - mx);
        total += mx + log(z) - (double)l[ids[t]];
    }
    return total / (to - from);
}

// ---------------------------------------------------------------- logit lens

int attn_lens_new(attn_lens **out, const attn_model *m, int T, int k) {
    const attn_config *c = &m->cfg;
    if (k < 1) k = 1;
    if (k > c->n_vocab) k = c->n_vocab;
    size_t R = (size_t)(c->n_layer + 1) * T;
    attn_lens *l = calloc(1, sizeof *l);
    if (!l) return attn_err(ATTN_EFAIL, "logit lens: out of memory");
    l->n_layer = c->n_layer;
    l->T = T;
    l->k = k;
    l->D = c->n_embd;
    l->V = c->n_vocab;
    l->resid = calloc(R * l->D, sizeof *l->resid);
    l->top_id = malloc(R * k * sizeof *l->top_id);
    l->top_prob = malloc(R * k * sizeof *l->top_prob);
    l->final_id = malloc((size_t)T * sizeof *l->final_id);
    l->final_prob = malloc(R * sizeof *l->final_prob);
    if (!l->resid || !l->top_id || !l->top_prob || !l->final_id || !l->final_prob) {
        attn_lens_free(l);
        return attn_err(ATTN_EFAIL, "logit lens: out of memory for %d layers x %d positions", c->n_layer + 1, T);
    }
    *out = l;
    return 0;
}

void attn_lens_free(attn_lens *l) {
    if (!l) return;
    free(l->resid);
    free(l->top_id);
    free(l->top_prob);
    free(l->final_id);
    free(l->final_prob);
    free(l);
}

void attn_lens_on_resid(void *ctx, int layer, int q0, int nq, const float *x) {
    attn_lens *l = ctx;
    if (layer < -1 || layer >= l->n_layer) return;
    for (int i = 0; i < nq; i++) {
        int t = q0 + i;
        if (t < 0 || t >= l->T) continue;
        memcpy(l->resid + ((size_t)(layer + 1) * l->T + t) * l->D, x + (size_t)i * l->D,
               (size_t)l->D * sizeof *x);
    }
}

void attn_json_numf(FILE *fp, const char *fmt, double v) {
    if (!isfinite(v)) fputs("null", fp); // JSON has no NaN or Infinity
    else fprintf(fp, fmt, v);
}

void attn_json_num(FILE *fp, double v) { attn_json_numf(fp, "%.8g", v); }

void attn_json_scores(FILE *fp, const attn_head_scores *h) {
    fputc('{', fp);
    for (int s = 0; s < ATTN_S_N; s++) {
        fprintf(fp, "%s\"%s\": ", s ? ", " : "", attn_score_names[s]);
        attn_json_num(fp, h->s[s]);
        if (s == ATTN_S_OFFSET) {
            fputs(", \"offset_k\": ", fp);
            if (h->offset_k) fprintf(fp, "%d", h->offset_k);
            else fputs("null", fp);
        }
    }
    fputc('}', fp);
}

double attn_softmax_bits(const float *logits, int n, double temp, double *probs) {
    double mx = logits[0], sum = 0, h = 0;
    for (int i = 1; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < n; i++) sum += probs[i] = exp((logits[i] - mx) / temp);
    for (int i = 0; i < n; i++) {
        probs[i] /= sum;
        if (probs[i] > 0) h -= probs[i] * log2(probs[i]);
    }
    return h;
}

void attn_top_k(const float *x, int n, int k, int32_t *id, float *val) {
    int m = 0;
    for (int v = 0; v < n; v++) {
        if (m == k && x[v] <= val[k - 1]) continue;
        int j = m < k ? m++ : k - 1;
        while (j > 0 && val[j - 1] < x[v]) {
            val[j] = val[j - 1];
            id[j] = id[j - 1];
            j--;
        }
        val[j] = x[v];
        id[j] = v;
    }
}

typedef struct {
    attn_lens *l;
    const attn_session *s;
    int failed;
} lens_job;

// Position t: every row r through the unembedding; the last row (the model's
// own output) decides final_id.
static void lens_position(void *ctx, int t) {
    lens_job *j = ctx;
    attn_lens *l = j->l;
    int R = l->n_layer + 1, k = l->k;
    float *probs = malloc((size_t)R * l->V * sizeof *probs);
    if (!probs) {
        j->failed = 1;
        return;
    }
    for (int r = 0; r < R; r++) {
        size_t rt = (size_t)r * l->T + t;
        float *p = probs + (size_t)r * l->V;
        attn_unembed(j->s, l->resid + rt * l->D, p);
        attn_k->softmax(p, l->V);
        attn_top_k(p, l->V, k, l->top_id + rt * k, l->top_prob + rt * k);
    }
    int32_t f = l->top_id[((size_t)(R - 1) * l->T + t) * k];
    l->final_id[t] = f;
    for (int r = 0; r < R; r++) l->final_prob[(size_t)r * l->T + t] = probs[(size_t)r * l->V + f];
    free(probs);
}

int attn_lens_compute(attn_lens *l, const attn_session *s, attn_pool *pool) {
    lens_job j = {l, s, 0};
    if (pool)
        attn_pool_run(pool, l->T, lens_position, &j);
    else
        for (int t = 0; t < l->T; t++) lens_position(&j, t);
    return j.failed ? attn_err(ATTN_EFAIL, "logit lens: out of memory") : 0;
}

// ---------------------------------------------------------------- lens picture

#define LENS_M 16      // margin, pixels
#define LENS_BAR 16    // colorbar width
#define LENS_LAB 14    // code points at most in an axis label
#define LENS_TXT 11    // text box height of the font

static void rect(attn_image *im, int x, int y, int w, int h, const uint8_t c[3]) {
    for (int j = y > 0 ? y : 0; j < y + h && j < im->h; j++)
        for (int i = x > 0 ? x : 0; i < x + w && i < im->w; i++) memcpy(im->rgb + 3 * ((size_t)j * im->w + i), c, 3);
}

// s cut (at code points) to at most max code points and maxw pixels, into out.
static void fit_label(const char *s, int max, int maxw, char *out, size_t n) {
    size_t len = 0;
    int cps = 0;
    for (const char *p = s; *p && cps < max && len + 5 < n;) {
        size_t c = 1;
        while ((p[c] & 0xC0) == 0x80) c++;
        memcpy(out + len, p, c);
        out[len + c] = 0;
        if (attn_text_width(out, 1) > maxw) break;
        len += c;
        p += c;
        cps++;
    }
    out[len] = 0;
}

int attn_lens_image(const attn_lens *l, const attn_tokenizer *tok, const int32_t *ids, const char *title,
                    attn_image *out) {
    int R = l->n_layer + 1, T = l->T, k = l->k;
    char **in = NULL, **fin = NULL, **top = NULL;
    int32_t *top1 = malloc((size_t)R * T * sizeof *top1);
    if (!top1) return attn_err(ATTN_EFAIL, "lens picture: out of memory");
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) top1[(size_t)r * T + t] = l->top_id[((size_t)r * T + t) * k];
    int rc = attn_token_labels(tok, ids, T, &in);
    if (!rc) rc = attn_token_labels(tok, l->final_id, T, &fin);
    if (!rc) rc = attn_token_labels(tok, top1, R * T, &top);
    if (rc) goto done;
    // cells wide enough for a short token where the picture allows (< 4000 px)
    int cw = 3600 / T, ch = 18;
    if (cw > 48) cw = 48;
    if (cw < 2) cw = 2;
    int text = cw >= 20;
    int name_w = attn_text_width("emb", 1);
    for (int r = 1; r < R; r++) {
        char b[16];
        snprintf(b, sizeof b, "L%d", r - 1);
        if (attn_text_width(b, 1) > name_w) name_w = attn_text_width(b, 1);
    }
    int step = cw >= 12 ? 1 : (12 + cw - 1) / cw; // label every step-th column
    int lab_h = 0;                                 // rotated labels: the longest, cut to LENS_LAB code points
    char b[64];
    for (int t = 0; t < T; t += step)
        for (int s = 0; s < 2; s++) {
            fit_label(s ? fin[t] : in[t], LENS_LAB, 1 << 20, b, sizeof b);
            if (attn_text_width(b, 1) > lab_h) lab_h = attn_text_width(b, 1);
        }
    lab_h += 4;
    const char *note = "row: residual stream after that layer (emb = embeddings) -> final norm -> unembedding;";
    int bad = 0; // non-finite probabilities: magenta cells, said in the note
    for (int i = 0; i < R * T; i++) bad |= !isfinite(l->final_prob[i]);
    const char *note2 = bad ? "colour: probability of the token the model finally ranks first (above the columns), "
                              "fixed 0..1, magenta = non-finite (NaN/inf); cell text: top token there"
                            : "colour: probability of the token the model finally ranks first (above the columns), "
                              "fixed 0..1; cell text: top token there";
    int x0 = LENS_M + name_w + 6, y0 = LENS_M + 2 * LENS_TXT + 6 + 2 * (LENS_TXT + 2) + 6 + lab_h;
    int gw = T * cw, gh = R * ch;
    int w = x0 + gw + 12 + LENS_BAR + 6 + attn_text_width("0.75", 1) + LENS_M;
    int nw = attn_text_width(note2, 1) + 2 * LENS_M, tw = attn_text_width(title ? title : "", 2) + 2 * LENS_M;
    if (w < nw) w = nw;
    if (w < tw) w = tw;
    int h = y0 + gh + 6 + lab_h + LENS_M;
    attn_image im = {0};
    im.w = w;
    im.h = h;
    im.rgb = malloc((size_t)w * h * 3);
    if (!im.rgb) {
        rc = attn_err(ATTN_EFAIL, "lens picture: out of memory for %d x %d pixels", w, h);
        goto done;
    }
    static const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0}, grey[3] = {90, 90, 90};
    memset(im.rgb, 255, (size_t)w * h * 3);
    int y = LENS_M;
    attn_draw_text(&im, LENS_M, y, title ? title : "logit lens", black, 2, 0);
    y += 2 * LENS_TXT + 6;
    attn_draw_text(&im, LENS_M, y, note, grey, 1, 0);
    attn_draw_text(&im, LENS_M, y + LENS_TXT + 2, note2, grey, 1, 0);
    for (int r = 0; r < R; r++) {
        int yy = y0 + (R - 1 - r) * ch; // the embeddings at the bottom
        if (r == 0) snprintf(b, sizeof b, "emb");
        else snprintf(b, sizeof b, "L%d", r - 1);
        attn_draw_text(&im, x0 - 6 - attn_text_width(b, 1), yy + (ch - LENS_TXT) / 2, b, black, 1, 0);
        for (int t = 0; t < T; t++) {
            float p = l->final_prob[(size_t)r * T + t];
            uint8_t c[3];
            attn_colormap(p, c);
            rect(&im, x0 + t * cw, yy, cw, ch, c);
            if (text) {
                fit_label(top[(size_t)r * T + t], LENS_LAB, cw - 3, b, sizeof b);
                attn_draw_text(&im, x0 + t * cw + 2, yy + (ch - LENS_TXT) / 2, b, p > 0.55f ? black : white, 1, 0);
            }
        }
    }
    // column labels: the finally chosen token above (reading upwards), the input token below
    for (int t = 0; t < T; t += step) {
        int xx = x0 + t * cw + (cw - LENS_TXT) / 2;
        fit_label(fin[t], LENS_LAB, lab_h - 4, b, sizeof b);
        attn_draw_text(&im, xx, y0 - 4, b, black, 1, 1);
        fit_label(in[t], LENS_LAB, lab_h - 4, b, sizeof b);
        attn_draw_text(&im, xx, y0 + gh + 6 + attn_text_width(b, 1), b, black, 1, 1);
    }
    // colorbar 0..1 with ticks
    int bx = x0 + gw + 12;
    for (int j = 0; j < gh; j++) {
        uint8_t c[3];
        attn_colormap(1.0f - (float)j / (gh > 1 ? gh - 1 : 1), c);
        rect(&im, bx, y0 + j, LENS_BAR, 1, c);
    }
    int n_ticks = gh >= 5 * (LENS_TXT + 2) ? 4 : gh >= 3 * (LENS_TXT + 2) ? 2 : 1;
    for (int i = 0; i <= n_ticks; i++) {
        int yy = y0 + (gh - 1) * (n_ticks - i) / n_ticks;
        rect(&im, bx + LENS_BAR, yy, 3, 1, black);
        snprintf(b, sizeof b, "%g", (double)i / n_ticks);
        attn_draw_text(&im, bx + LENS_BAR + 5, yy - LENS_TXT / 2, b, black, 1, 0);
    }
    *out = im;
done:
    if (in) attn_labels_free(in, T);
    if (fin) attn_labels_free(fin, T);
    if (top) attn_labels_free(top, R * T);
    free(top1);
    return rc;
}
