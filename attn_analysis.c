// attn_analysis.c - section "analysis": head-type scores of attention rows
// (previous, first, self, induction, duplicate, fixed offset, entropy), the
// uniform causal baseline, the per-model capture accumulator, corpus
// statistics (Welford), the induction test sequence and its loss, the
// logit lens, --drop-first and the Jensen-Shannon divergence. Definitions are in attn.h and the README ("What the numbers
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
    free(l->top_id), free(l->top_prob), free(l->final_id), free(l->final_prob);
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

// ---------------------------------------------------------------- comparing distributions
// --drop-first: rows renormalized without key 0; JSD for `compare`.
void attn_drop_first(const float *p, int T, float *out) {
    int n = T - 1;
    for (int q = 1; q < T; q++) {
        const float *row = p + (size_t)q * T;
        double s = 0;
        for (int k = 1; k < T; k++) s += row[k];
        for (int k = 1; k < T; k++) out[(size_t)(q - 1) * n + (k - 1)] = s > 0 ? (float)(row[k] / s) : 0;
    }
}

double attn_jsd_bits(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) {
        double x = a[i], y = b[i], m = 0.5 * (x + y);
        if (x > 0) d += 0.5 * x * log2(x / m);
        if (y > 0) d += 0.5 * y * log2(y / m);
    }
    return d < 0 ? 0 : d;
}
