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
    size_t rb = attn_type_row_bytes(m->output.type, D);
    attn_k->dequant_row((const uint8_t *)m->output.data + rb * target, m->output.type, row, D);
    for (int d = 0; d < D; d++) w[d] = row[d];
    if (against >= 0) {
        attn_k->dequant_row((const uint8_t *)m->output.data + rb * against, m->output.type, row, D);
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
    const attn_tensor *wo = &m->layers[l].wo;
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

// ---------------------------------------------------------------- pictures

static void fill(attn_image *im, int x, int y, int w, int h, const uint8_t c[3]) {
    for (int j = y; j < y + h; j++)
        for (int i = x; i < x + w; i++)
            if (i >= 0 && j >= 0 && i < im->w && j < im->h) memcpy(im->rgb + ((size_t)j * im->w + i) * 3, c, 3);
}

// Longest text width of n labels (scale 1).
static int widest(char *const *s, int n) {
    int w = 0;
    for (int i = 0; i < n; i++)
        if (s[i] && attn_text_width(s[i], 1) > w) w = attn_text_width(s[i], 1);
    return w;
}

int attn_grid_image(const attn_grid *g, attn_image *out) {
    const int M = 12, TXT = 12, BAR = 16, cw = g->cols > 60 ? 12 : g->cols > 16 ? 24 : 44, ch = g->rows > 24 ? 18 : 28;
    float dmax = g->dmax;
    for (size_t i = 0; i < (size_t)g->rows * g->cols; i++)
        if (fabsf(g->v[i]) > dmax) dmax = fabsf(g->v[i]);
    if (!(dmax > 0)) dmax = 1;
    int name_w = widest(g->row_names, g->rows), lab_h = widest(g->col_names, g->cols) + 6;
    int x0 = M + name_w + 6, y0 = M + 2 * TXT + 8 + 2 * (TXT + 2) + 4;
    int gw = g->cols * cw, gh = g->rows * ch;
    char mark_lab[64];
    snprintf(mark_lab, sizeof mark_lab, "%g %s", g->mark, g->mark_name ? g->mark_name : "");
    int lab_w = attn_text_width("-0.000e+00", 1);
    if (g->mark == g->mark && attn_text_width(mark_lab, 1) > lab_w) lab_w = attn_text_width(mark_lab, 1);
    int w = x0 + gw + 16 + BAR + 8 + lab_w + M;
    int tw = attn_text_width(g->title, 2) + 2 * M, nw = attn_text_width(g->note ? g->note : "", 1) + 2 * M;
    if (w < tw) w = tw;
    if (w < nw) w = nw;
    int h = y0 + gh + lab_h + M;
    if (h < y0 + 200 + M) h = y0 + 200 + M;
    attn_image im = {0};
    im.w = w;
    im.h = h;
    if (!(im.rgb = malloc((size_t)w * h * 3))) return attn_err(ATTN_EFAIL, "picture: out of memory");
    memset(im.rgb, 255, (size_t)w * h * 3);
    static const uint8_t black[3] = {0, 0, 0}, white[3] = {255, 255, 255}, grey[3] = {90, 90, 90},
                         nan_c[3] = {200, 200, 200};
    attn_draw_text(&im, M, M, g->title, black, 2, 0);
    if (g->note) attn_draw_text(&im, M, M + 2 * TXT + 8, g->note, grey, 1, 0);
    for (int r = 0; r < g->rows; r++) {
        int y = y0 + r * ch;
        attn_draw_text(&im, x0 - 6 - attn_text_width(g->row_names[r], 1), y + (ch - TXT) / 2, g->row_names[r], black, 1, 0);
        for (int c = 0; c < g->cols; c++) {
            float v = g->v[(size_t)r * g->cols + c];
            uint8_t col[3];
            if (v == v) attn_colormap_div(v / dmax, col);
            fill(&im, x0 + c * cw, y, cw - 1, ch - 1, v == v ? col : nan_c);
            if (cw >= 44 && v == v) { // the value, when the cell has room
                char b[16];
                snprintf(b, sizeof b, "%.2f", fabsf(v) < 0.005f ? 0.0f : v); // no "-0.00"
                const uint8_t *tc = fabsf(v) > 0.6f * dmax ? white : black;
                attn_draw_text(&im, x0 + c * cw + (cw - attn_text_width(b, 1)) / 2, y + (ch - TXT) / 2, b, tc, 1, 0);
            }
        }
    }
    for (int c = 0; c < g->cols; c++) // column labels below, reading upwards
        attn_draw_text(&im, x0 + c * cw + (cw - TXT) / 2, y0 + gh + 4 + attn_text_width(g->col_names[c], 1),
                       g->col_names[c], black, 1, 1);
    // the colorbar: dmax at the top, -dmax at the bottom, 0 and g->mark labelled
    int bx = x0 + gw + 16, by = y0, bh = 200;
    for (int j = 0; j < bh; j++) {
        uint8_t col[3];
        attn_colormap_div(1 - 2.0f * j / (bh - 1), col);
        fill(&im, bx, by + j, BAR, 1, col);
    }
    float ticks[4] = { dmax, 0, -dmax, g->mark };
    for (int k = 0; k < (g->mark == g->mark && fabsf(g->mark) <= dmax ? 4 : 3); k++) {
        int y = by + (int)lroundf((1 - ticks[k] / dmax) / 2 * (bh - 1));
        char b[64];
        if (k == 3) snprintf(b, sizeof b, "%s", mark_lab);
        else snprintf(b, sizeof b, "%.3g", ticks[k]);
        fill(&im, bx - 3, y, BAR + 6, k == 3 ? 2 : 1, black);
        attn_draw_text(&im, bx + BAR + 6, y - TXT / 2, b, black, 1, 0);
    }
    *out = im;
    return 0;
}
