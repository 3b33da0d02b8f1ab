// attn_causal.c - section "interventions" of attn (see attn.c): replacements
// of activations during a forward pass (attn_edits), direct logit
// attribution, and the per-position next-token loss.
#include "attn.h"
#include "simd/kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- edits

void attn_edits_init(attn_edits *ed, const attn_model *m, const attn_edit *e, int n) {
    const attn_config *c = &m->cfg;
    ed->e = e;
    ed->n = n;
    ed->width[ATTN_ACT_RESID_PRE] = ed->width[ATTN_ACT_MLP_OUT] = c->n_embd;
    ed->width[ATTN_ACT_Z] = c->n_head * c->head_dim;
}

void attn_edits_on_act(void *ctx, int kind, int layer, int q0, int nq, float *x) {
    const attn_edits *ed = ctx;
    int w = ed->width[kind];
    for (int k = 0; k < ed->n; k++) {
        const attn_edit *e = &ed->e[k];
        if (e->kind != kind || e->layer != layer) continue;
        for (int i = 0; i < nq; i++) {
            int p = q0 + i;
            if (e->pos >= 0 && e->pos != p) continue;
            float *dst = x + (size_t)i * w + e->col0;
            if (e->v) memcpy(dst, e->v + (size_t)p * e->v_stride, (size_t)e->ncol * sizeof(float));
            else memset(dst, 0, (size_t)e->ncol * sizeof(float));
        }
    }
}

// ---------------------------------------------------------------- loss

typedef struct { float *logits; int V; const int32_t *ids; double *nll; } nll_job;

static void nll_item(void *ctx, int i) {
    const nll_job *j = ctx;
    float *l = j->logits + (size_t)i * j->V, *keep = malloc((size_t)j->V * sizeof *keep);
    int32_t y = j->ids[i + 1];
    if (keep) memcpy(keep, l, (size_t)j->V * sizeof *keep);
    attn_k->softmax(l, j->V);
    double p = l[y];
    if (p > 1e-30 || !keep) j->nll[i] = -log(p);
    else { // far in the tail, where float probabilities lose it: log-sum-exp in double
        double mx = keep[0], z = 0;
        for (int v = 1; v < j->V; v++) mx = keep[v] > mx ? keep[v] : mx;
        for (int v = 0; v < j->V; v++) z += exp((double)keep[v] - mx);
        j->nll[i] = mx + log(z) - keep[y];
    }
    free(keep);
}

double attn_nll_rows(float *logits, int V, const int32_t *ids, int T, attn_pool *pool, double *nll) {
    if (T < 2) return NAN;
    nll_job j = { logits, V, ids, nll };
    if (pool) attn_pool_run(pool, T - 1, nll_item, &j);
    else for (int i = 0; i < T - 1; i++) nll_item(&j, i);
    double sum = 0;
    for (int i = 0; i < T - 1; i++) sum += nll[i];
    return sum / (T - 1);
}

// ---------------------------------------------------------------- attribution

int attn_attr_n(const attn_model *m) { return 2 + m->cfg.n_layer * (m->cfg.n_head + 2); }

// The rows of one position that attribution needs: embeddings, every z,
// every MLP output, the final residual.
typedef struct {
    int pos, D, qd;
    float *emb, *z, *mlp, *fin; // (D), (L, qd), (L, D), (D)
} attr_rec;

static void attr_on_act(void *ctx, int kind, int layer, int q0, int nq, float *x) {
    attr_rec *r = ctx;
    int i = r->pos - q0;
    if (i < 0 || i >= nq) return;
    if (kind == ATTN_ACT_RESID_PRE && layer == 0) memcpy(r->emb, x + (size_t)i * r->D, r->D * 4);
    if (kind == ATTN_ACT_Z) memcpy(r->z + (size_t)layer * r->qd, x + (size_t)i * r->qd, r->qd * 4);
    if (kind == ATTN_ACT_MLP_OUT) memcpy(r->mlp + (size_t)layer * r->D, x + (size_t)i * r->D, r->D * 4);
}

static void attr_on_resid(void *ctx, int layer, int q0, int nq, const float *x) {
    attr_rec *r = ctx;
    (void)layer; // the last call is the last layer's output
    int i = r->pos - q0;
    if (i >= 0 && i < nq) memcpy(r->fin, x + (size_t)i * r->D, r->D * 4);
}

static double dot(const double *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// The direction e (D) a component r is read along: value = r . e. Also the
// bias component and the logit of x. row: scratch (D).
static void attr_direction(const attn_model *m, const float *x, int target, int against, float *row, double *e,
                           double *bias, double *logit) {
    const attn_config *c = &m->cfg;
    int D = c->n_embd;
    double mu = 0, var = 0, *w = e;
    attn_model_out_row(m, target, row);
    for (int d = 0; d < D; d++) w[d] = row[d];
    if (against >= 0) {
        attn_model_out_row(m, against, row);
        for (int d = 0; d < D; d++) w[d] -= row[d];
    }
    const float *g = m->out_norm.data, *b = m->out_norm_b.data;
    int ln = c->norm == ATTN_NORM_LAYER;
    for (int d = 0; d < D; d++) mu += x[d];
    mu = ln ? mu / D : 0;
    for (int d = 0; d < D; d++) var += (x[d] - mu) * (x[d] - mu);
    double sigma = sqrt(var / D + c->norm_eps);
    *bias = 0;
    if (m->output_b.data) { // Phi-2's output bias belongs to the bias component
        const float *ob = m->output_b.data;
        *bias = ob[target] - (against >= 0 ? ob[against] : 0.0);
    }
    if (b)
        for (int d = 0; d < D; d++) *bias += b[d] * w[d];
    double mean_e = 0;
    for (int d = 0; d < D; d++) mean_e += (e[d] = g[d] * w[d] / sigma);
    mean_e /= D;
    if (ln)
        for (int d = 0; d < D; d++) e[d] -= mean_e;
    *logit = dot(e, x, D) + *bias;
}

// Heads' components of one layer: out[h] = z_h . (W_o[:, h slice]^T e).
static void attr_heads(const attn_model *m, int l, const float *z, const double *e, float *row, double *g,
                       double *out) {
    const attn_config *c = &m->cfg;
    int D = c->n_embd, qd = c->n_head * c->head_dim, hd = c->head_dim;
    const attn_tensor *wo = &attn_model_layer(m, l, NULL)->wo;
    size_t rb = attn_type_row_bytes(wo->type, qd);
    memset(g, 0, (size_t)qd * sizeof *g);
    for (int d = 0; d < D; d++) { // g = W_o^T e
        attn_k->dequant_row((const uint8_t *)wo->data + rb * d, wo->type, row, qd);
        for (int j = 0; j < qd; j++) g[j] += e[d] * row[j];
    }
    for (int h = 0; h < c->n_head; h++) {
        double s = 0;
        for (int j = h * hd; j < (h + 1) * hd; j++) s += g[j] * z[j];
        out[h] = s;
    }
}

int attn_attribute(const attn_model *m, attn_pool *pool, const int32_t *ids, int T, int pos, int target,
                   int against, double *comp, double *logit) {
    const attn_config *c = &m->cfg;
    int D = c->n_embd, L = c->n_layer, H = c->n_head, qd = H * c->head_dim;
    if (pos < 0 || pos >= T) return attn_err(ATTN_EINPUT, "position %d: the prompt has %d tokens (0..%d)", pos, T, T - 1);
    // The split is exact only where every component reaches the final residual
    // linearly: a norm after a sub-block or a soft-cap on the logits breaks it.
    if (c->post_norm || c->logit_softcap > 0)
        return attn_err(ATTN_EINPUT, "attribute: this model has %s, so the logit is not a sum of its parts",
                        c->post_norm ? "norms after its sub-blocks" : "a soft-cap on its logits");
    if (target < 0 || target >= c->n_vocab || against >= c->n_vocab)
        return attn_err(ATTN_EINPUT, "token id out of range (vocabulary of %d)", c->n_vocab);
    int W = qd > D ? qd : D;
    attr_rec r = { pos, D, qd, malloc(D * 4), malloc((size_t)L * qd * 4), malloc((size_t)L * D * 4), malloc(D * 4) };
    float *row = malloc((size_t)W * 4);
    double *e = malloc(D * sizeof *e), *g = malloc((size_t)qd * sizeof *g), x_logit;
    float *lg = malloc((size_t)c->n_vocab * 4);
    attn_session *s = NULL;
    int rc = 0;
    if (!r.emb || !r.z || !r.mlp || !r.fin || !row || !e || !g || !lg) rc = attn_err(ATTN_EFAIL, "out of memory");
    if (!rc) rc = attn_session_new(&s, m, pos + 1, pool);
    attn_capture cap = { .on_act = attr_on_act, .on_resid = attr_on_resid, .ctx = &r };
    if (!rc) rc = attn_session_feed(s, ids, pos + 1, lg, 1, &cap);
    if (!rc) {
        attr_direction(m, r.fin, target, against, row, e, &comp[1], &x_logit);
        *logit = (double)lg[target] - (against >= 0 ? lg[against] : 0.0);
        comp[0] = dot(e, r.emb, D);
        for (int l = 0; l < L; l++) {
            double *o = comp + 2 + (size_t)l * (H + 2);
            attr_heads(m, l, r.z + (size_t)l * qd, e, row, g, o);
            const float *bo = m->layers[l].bo.data;
            o[H] = bo ? dot(e, bo, D) : 0;
            o[H + 1] = dot(e, r.mlp + (size_t)l * D, D);
        }
    }
    attn_session_free(s);
    free(r.emb); free(r.z); free(r.mlp); free(r.fin); free(row); free(e); free(g); free(lg);
    return rc;
}
