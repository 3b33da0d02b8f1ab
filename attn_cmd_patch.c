// attn_cmd_patch.c - CLI command `attn patch`: activation patching. The
// corrupt prompt is run with one head's z (every position), or the residual
// entering one layer at one position, copied from the clean run; how much of
// the clean metric comes back is the restored fraction.
#include "attn.h"
#include "attn_cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char PATCH_HELP[] =
    "usage: attn patch [-m FILE] (--clean TEXT --corrupt TEXT |\n"
    "                  --clean-ids 1,2,.. --corrupt-ids 1,2,..) --target TOKEN\n"
    "                  [--against TOKEN] [-o DIR] [--format table|tsv|json]\n\n"
    "Activation patching. Both prompts must be the same number of tokens. The\n"
    "metric m is logit(target) - logit(against) at the last position (raw\n"
    "logits; just logit(target) without --against). TOKEN is text that is\n"
    "exactly one token, or #ID.\n"
    "  heads   for each layer and head: the corrupt prompt with that head's z\n"
    "          (its attention-weighted sum of values, before the output\n"
    "          projection) at every position taken from the clean run\n"
    "  resid   for each layer l and position i: the corrupt prompt with the\n"
    "          residual stream entering layer l at position i from the clean run\n"
    "Each prints restored = (m_patched - m_corrupt) / (m_clean - m_corrupt):\n"
    "1 = the clean metric fully restored, 0 = no change, negative = further\n"
    "away (null/\"-\" when m_clean = m_corrupt).\n"
    "  -o DIR   also DIR/heads.png (layer x head) and DIR/resid.png (layer x\n"
    "           position): restored on a diverging scale symmetric around 0\n"
    "           (red > 0, blue < 0), 1 marked on the colorbar\n"
    "JSON: {\"clean\": m_clean, \"corrupt\": m_corrupt, \"heads\": [[restored per\n"
    "  head] per layer], \"resid\": [[restored per position] per layer]}\n"
    "  --no-bos  do not add the BOS token the model would add\n"
    "  --no-special  text such as <|endoftext|> stays text (default: the token)\n"
    "  -t N      threads\n";

typedef struct {
    int T, D, qd;
    float *resid, *z; // (L, T, D), (L, T, qd) or NULL
} patch_rec;

static void patch_record(void *ctx, int kind, int layer, int q0, int nq, float *x) {
    patch_rec *r = ctx;
    if (kind == ATTN_ACT_RESID_PRE && r->resid)
        memcpy(r->resid + ((size_t)layer * r->T + q0) * r->D, x, (size_t)nq * r->D * 4);
    if (kind == ATTN_ACT_Z && r->z) memcpy(r->z + ((size_t)layer * r->T + q0) * r->qd, x, (size_t)nq * r->qd * 4);
}

// The runs, the recorded clean and corrupt runs, and the edits of a layer
// gathered for one pass (attn_session_run_from): up to `runs` of them.
typedef struct {
    const attn_model *m;
    attn_session *s;
    int T, target, against;
    float *lg;             // (runs, V) last position's logits of each run
    patch_rec clean, corr;
    double m_clean, m_corr;
    int runs, n;           // edits in a pass at most, gathered
    float *xr;             // (runs, T, D) a pass's input
    attn_edit *e;          // [runs] the gathered edits,
    attn_edits *ed;        // their lists,
    attn_capture *caps;    // captures
    float **out;           // and where their results go
} patcher;

static double metric(const patcher *p, const float *lg) {
    return (double)lg[p->target] - (p->against >= 0 ? (double)lg[p->against] : 0.0);
}

// The corrupt run again from layer l with each gathered edit, all in one
// pass; the restored fractions.
static int patch_pass(patcher *p, int l) {
    int T = p->T, D = p->corr.D, V = p->m->cfg.n_vocab;
    for (int b = 0; b < p->n; b++) {
        attn_edits_init(&p->ed[b], p->m, &p->e[b], 1);
        p->caps[b] = (attn_capture){ .on_act = attn_edits_on_act, .ctx = &p->ed[b] };
        memcpy(p->xr + (size_t)b * T * D, p->corr.resid + (size_t)l * T * D, (size_t)T * D * 4);
    }
    int rc = attn_session_run_from(p->s, l, p->xr, T, p->n, p->lg, 1, p->caps);
    double d = p->m_clean - p->m_corr;
    for (int b = 0; !rc && b < p->n; b++)
        *p->out[b] = d != 0 ? (float)((metric(p, p->lg + (size_t)b * V) - p->m_corr) / d) + 0.0f : NAN; // no -0
    p->n = 0;
    return rc;
}

// Edit e (of layer l) gathered, its result to *out; the pass run when full.
static int patch_add(patcher *p, int l, attn_edit e, float *out) {
    p->e[p->n] = e;
    p->out[p->n++] = out;
    return p->n == p->runs ? patch_pass(p, l) : 0;
}

static int patch_run(patcher *p, const int32_t *clean, const int32_t *corr, float *heads, float *resid) {
    const attn_config *c = &p->m->cfg;
    int L = c->n_layer, H = c->n_head, hd = c->head_dim, T = p->T;
    attn_capture cap = { .on_act = patch_record, .ctx = &p->clean };
    int rc = attn_session_feed(p->s, clean, T, p->lg, 1, &cap);
    p->m_clean = metric(p, p->lg);
    attn_session_reset(p->s);
    cap.ctx = &p->corr;
    if (!rc) rc = attn_session_feed(p->s, corr, T, p->lg, 1, &cap);
    p->m_corr = metric(p, p->lg);
    for (int l = 0; !rc && l < L; l++) { // a layer's heads, then its positions
        for (int h = 0; !rc && h < H; h++)
            rc = patch_add(p, l, (attn_edit){ ATTN_ACT_Z, l, -1, h * hd, hd, p->clean.z + (size_t)l * T * p->clean.qd + h * hd,
                                              (size_t)p->clean.qd }, &heads[l * H + h]);
        for (int i = 0; !rc && i < T; i++)
            rc = patch_add(p, l, (attn_edit){ ATTN_ACT_RESID_PRE, l, i, 0, c->n_embd, p->clean.resid + (size_t)l * T * c->n_embd,
                                              (size_t)c->n_embd }, &resid[(size_t)l * T + i]);
        if (!rc && p->n) rc = patch_pass(p, l);
    }
    return rc;
}

// A label in w columns: cut or padded by characters (UTF-8 code points), not bytes.
static void pad_label(const char *s, int w) {
    int n = 0;
    const char *p = s;
    for (; *p; p++) {
        if (((unsigned char)*p & 0xC0) == 0x80) continue;
        if (n == w) break;
        n++;
    }
    printf("%.*s%*s", (int)(p - s), s, w - n, "");
}

static void print_num(double v, const char *fmt_num, const char *nan) {
    if (v == v) printf(fmt_num, v);
    else printf("%s", nan);
}

static void patch_print(const patcher *p, const char *fmt, const float *heads, const float *resid, char **labels) {
    const attn_config *c = &p->m->cfg;
    int L = c->n_layer, H = c->n_head, T = p->T;
    if (!strcmp(fmt, "json")) {
        printf("{\"clean\": ");
        attn_json_numf(stdout, "%.9g", p->m_clean);
        cli_json_num("corrupt", "%.9g", p->m_corr);
        printf(", \"heads\": [");
        for (int l = 0; l < L; l++) {
            printf("%s[", l ? ", " : "");
            for (int h = 0; h < H; h++) { printf("%s", h ? ", " : ""); attn_json_num(stdout, heads[l * H + h]); }
            printf("]");
        }
        printf("], \"resid\": [");
        for (int l = 0; l < L; l++) {
            printf("%s[", l ? ", " : "");
            for (int i = 0; i < T; i++) { printf("%s", i ? ", " : ""); attn_json_num(stdout, resid[(size_t)l * T + i]); }
            printf("]");
        }
        printf("]}\n");
    } else if (!strcmp(fmt, "tsv")) {
        printf("kind\tlayer\tindex\trestored\n");
        for (int l = 0; l < L; l++)
            for (int h = 0; h < H; h++) { printf("head\t%d\t%d\t", l, h); print_num(heads[l * H + h], "%.9g", ""); printf("\n"); }
        for (int l = 0; l < L; l++)
            for (int i = 0; i < T; i++) { printf("resid\t%d\t%d\t", l, i); print_num(resid[(size_t)l * T + i], "%.9g", ""); printf("\n"); }
    } else {
        printf("metric at the last position (raw logits): clean %.4f, corrupt %.4f\n", p->m_clean, p->m_corr);
        printf("\nrestored fraction, head patching (1 = clean metric restored)\n  layer");
        for (int h = 0; h < H; h++) printf("  %6s%-2d", "H", h);
        for (int l = 0; l < L; l++) {
            printf("\n  L%-4d", l);
            for (int h = 0; h < H; h++) print_num(heads[l * H + h], "  %8.3f", "         -");
        }
        printf("\n\nrestored fraction, residual patching (the residual entering layer L at one\nposition)\n  pos  %-12s", "token");
        for (int l = 0; l < L; l++) printf("  %7s%-2d", "L", l);
        for (int i = 0; i < T; i++) {
            printf("\n  %3d  ", i);
            pad_label(labels[i], 12);
            for (int l = 0; l < L; l++) print_num(resid[(size_t)l * T + i], "  %9.3f", "          -");
        }
        printf("\n");
    }
}

static int patch_pictures(const patcher *p, const char *dir, const float *heads, const float *resid, char **labels) {
    const attn_config *c = &p->m->cfg;
    int L = c->n_layer, H = c->n_head, T = p->T, n = (H > T ? H : T), rc = 0;
    char **rn = calloc(L, sizeof *rn), **cn = calloc(n, sizeof *cn), path[1100];
    for (int l = 0; rn && l < L; l++) if ((rn[l] = malloc(16))) snprintf(rn[l], 16, "L%d", l);
    for (int i = 0; cn && i < n; i++) if ((cn[i] = malloc(16))) snprintf(cn[i], 16, "H%d", i);
    if (!rn || !cn) rc = attn_err(ATTN_EFAIL, "out of memory");
    char note[200];
    snprintf(note, sizeof note, "restored fraction (m_patched - m_corrupt) / (m_clean - m_corrupt); m_clean %.3f, "
             "m_corrupt %.3f", p->m_clean, p->m_corr);
    attn_grid g = { heads, L, H, rn, cn, "head patching: layer x head", note, 1, 1, "= fully restored" };
    for (int k = 0; !rc && k < 2; k++) {
        attn_image im;
        if (k) g = (attn_grid){ resid, L, T, rn, labels, "residual patching: layer x position", note, 1, 1,
                                "= fully restored" };
        snprintf(path, sizeof path, "%s/%s.png", dir, k ? "resid" : "heads");
        if (!(rc = attn_grid_image(&g, &im))) {
            rc = attn_write_png(path, &im);
            attn_image_free(&im);
        }
    }
    for (int l = 0; rn && l < L; l++) free(rn[l]);
    for (int i = 0; cn && i < n; i++) free(cn[i]);
    free(rn);
    free(cn);
    return rc;
}

static int patch_ids(const cli_opts *o, const attn_model *m, const char *text, const char *ids_s, int32_t **ids, int *T) {
    cli_opts lo = *o;
    lo.prompt = text;
    lo.ids = ids_s;
    lo.prompt_file = NULL;
    return cli_prompt_ids(&lo, m, ids, T);
}

// ---- options -> result -> print

typedef struct {
    cli_opts o;
    const char *fmt;
    const char *clean_s, *corr_s, *clean_ids, *corr_ids, *tgt, *ag; // --clean ... --against
} patch_opts;

typedef struct {
    patcher p;
    attn_model *m;
    attn_pool *pool;
    int32_t *ci, *xi, target, against; // clean and corrupt ids; against -1: none
    int Tc, Tx;
    float *heads, *resid; // (L, H) and (L, T) restored fractions
    char **labels;        // (Tx) of the corrupt prompt
    char dir[1024];       // -o DIR
} patch_result;

static int patch_opt(void *p, const char *a, int argc, char **argv, int *i) {
    patch_opts *po = p;
    const char **dst = !strcmp(a, "--clean") ? &po->clean_s : !strcmp(a, "--corrupt") ? &po->corr_s :
        !strcmp(a, "--clean-ids") ? &po->clean_ids : !strcmp(a, "--corrupt-ids") ? &po->corr_ids :
        !strcmp(a, "--target") ? &po->tgt : !strcmp(a, "--against") ? &po->ag : NULL;
    return dst ? cli_opt_str(argc, argv, i, dst) : 0;
}

static int patch_parse(int argc, char **argv, patch_opts *po) {
    if (cli_parse_opts(&po->o, argc, argv, patch_opt, po)) return CLI_PRINTED;
    if (po->o.help) return 0;
    if (cli_format(&po->o, "table,tsv,json", &po->fmt)) return ATTN_EINPUT;
    if (!((po->clean_s && po->corr_s && !po->clean_ids && !po->corr_ids) ||
          (po->clean_ids && po->corr_ids && !po->clean_s && !po->corr_s)) ||
        po->o.prompt || po->o.prompt_file || po->o.ids) {
        cli_error("patch: give --clean TEXT --corrupt TEXT, or --clean-ids and --corrupt-ids");
        return CLI_PRINTED;
    }
    if (!po->tgt) { cli_error("patch: --target TOKEN is required"); return CLI_PRINTED; }
    return 0;
}

static int patch_compute(const patch_opts *po, patch_result *r) {
    r->against = -1;
    int rc = cli_setup(&po->o, &r->m, &r->pool, NULL, NULL, NULL);
    if (!rc) rc = patch_ids(&po->o, r->m, po->clean_s, po->clean_ids, &r->ci, &r->Tc);
    if (!rc) rc = patch_ids(&po->o, r->m, po->corr_s, po->corr_ids, &r->xi, &r->Tx);
    if (!rc && r->Tc != r->Tx)
        rc = attn_err(ATTN_EINPUT, "patch: the clean prompt is %d tokens, the corrupt one %d: they must be the same length",
                      r->Tc, r->Tx);
    if (!rc) rc = cli_token(r->m, "--target", po->tgt, &r->target);
    if (!rc && po->ag) rc = cli_token(r->m, "--against", po->ag, &r->against);
    if (!rc) rc = attn_token_labels(r->m->tok, r->xi, r->Tx, &r->labels);
    if (!rc && po->o.out_dir) rc = cli_out_dir(&po->o, NULL, r->dir, sizeof r->dir);
    if (rc) return rc;
    const attn_config *c = &r->m->cfg;
    int L = c->n_layer, T = r->Tc, D = c->n_embd, qd = c->n_head * c->head_dim;
    int R = attn_runs_per_pass(T, c->n_head + T); // (at most a layer's edits)
    r->p = (patcher){ r->m, NULL, T, r->target, r->against, malloc((size_t)R * c->n_vocab * 4),
                      { T, D, qd, malloc((size_t)L * T * D * 4), malloc((size_t)L * T * qd * 4) },
                      { T, D, qd, malloc((size_t)L * T * D * 4), NULL }, 0, 0, R, 0,
                      malloc((size_t)R * T * D * 4), malloc((size_t)R * sizeof(attn_edit)),
                      malloc((size_t)R * sizeof(attn_edits)), malloc((size_t)R * sizeof(attn_capture)),
                      malloc((size_t)R * sizeof(float *)) };
    r->heads = malloc((size_t)L * c->n_head * 4);
    r->resid = malloc((size_t)L * T * 4);
    const patcher *p = &r->p;
    if (!p->lg || !p->clean.resid || !p->clean.z || !p->corr.resid || !r->heads || !r->resid || !p->xr || !p->e ||
        !p->ed || !p->caps || !p->out)
        return attn_err(ATTN_EFAIL, "out of memory");
    if (!(rc = attn_session_new_runs(&r->p.s, r->m, T, R, r->pool))) rc = patch_run(&r->p, r->ci, r->xi, r->heads, r->resid);
    return rc;
}

// The table, then with -o DIR the pictures.
static int print_patch(const patch_result *r, const patch_opts *po) {
    patch_print(&r->p, po->fmt, r->heads, r->resid, r->labels);
    int rc = po->o.out_dir ? patch_pictures(&r->p, r->dir, r->heads, r->resid, r->labels) : 0;
    if (!rc && po->o.out_dir) cli_note("wrote to %s: heads.png resid.png", r->dir);
    return rc;
}

static void patch_result_free(patch_result *r) {
    attn_session_free(r->p.s);
    free(r->p.lg); free(r->p.clean.resid); free(r->p.clean.z); free(r->p.corr.resid);
    free(r->p.xr); free(r->p.e); free(r->p.ed); free(r->p.caps); free(r->p.out);
    free(r->heads); free(r->resid);
    if (r->labels) attn_labels_free(r->labels, r->Tx);
    free(r->ci); free(r->xi);
    attn_pool_free(r->pool);
    attn_model_free(r->m);
}

CLI_COMMAND(patch, patch, "copy activations of a clean run into a corrupt one", PATCH_HELP);
