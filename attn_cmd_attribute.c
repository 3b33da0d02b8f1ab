// attn_cmd_attribute.c - CLI command `attn attribute`: direct logit
// attribution, the final residual at one position split into the parts that
// wrote it (attn_attribute), each read through the frozen final norm onto the
// target's unembedding row.
#include "attn.h"
#include "attn_cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char ATTRIBUTE_HELP[] =
    "usage: attn attribute [-m FILE] (-p TEXT | --ids 1,2,3) --target TOKEN\n"
    "                      [--against TOKEN] [--pos I] [-o DIR]\n"
    "                      [--format table|tsv|json]\n\n"
    "Direct logit attribution at position I (default the last): the final\n"
    "residual is a sum of components, each sent through the final norm with its\n"
    "scale frozen at the full residual's (LayerNorm: centred, divided by the\n"
    "residual's sigma, times gamma; RMSNorm: divided by its rms, times gamma)\n"
    "and onto the unembedding row of the target (minus the against row).\n"
    "Values are in logits; they sum to the model's logit(target) (minus\n"
    "logit(against)) up to float rounding. Components:\n"
    "  embed          token (+ learned position) embedding\n"
    "  L<l>H<h>       head h of layer l through its slice of the output projection\n"
    "  L<l>.attn_bias the attention output bias of layer l\n"
    "  L<l>.mlp       the MLP output of layer l (output bias included)\n"
    "  bias           the final norm's bias (and unembedding bias; 0 without)\n"
    "The table is sorted by |value|, largest first. TOKEN is text that is\n"
    "exactly one token, or #ID.\n"
    "  -o DIR   also DIR/attribute.png: the head components, layer x head, on a\n"
    "           diverging scale symmetric around 0 (red > 0, blue < 0)\n"
    "JSON: {\"target\": id, \"against\": id|null, \"pos\", \"logit\", \"components\":\n"
    "  [{\"name\", \"value\"}]} in model order (embed, bias, then per layer its\n"
    "  heads, attn_bias, mlp)\n"
    "  --no-bos  do not add the BOS token the model would add\n"
    "  --no-special  text such as <|endoftext|> stays text (default: the token)\n"
    "  -t N      threads\n";

static void comp_name(const attn_model *m, int k, char *b, size_t n) {
    int H = m->cfg.n_head;
    if (k == 0) { snprintf(b, n, "embed"); return; }
    if (k == 1) { snprintf(b, n, "bias"); return; }
    int l = (k - 2) / (H + 2), j = (k - 2) % (H + 2);
    if (j < H) snprintf(b, n, "L%dH%d", l, j);
    else snprintf(b, n, "L%d.%s", l, j == H ? "attn_bias" : "mlp");
}

static const double *sort_abs;
static int by_abs(const void *x, const void *y) {
    int i = *(const int *)x, j = *(const int *)y;
    double a = fabs(sort_abs[i]), b = fabs(sort_abs[j]);
    if (a != b) return a > b ? -1 : 1;
    return i - j;
}

static int attr_picture(const attn_model *m, const double *comp, const char *dir, int target, int against) {
    int L = m->cfg.n_layer, H = m->cfg.n_head, rc = 0;
    float *v = malloc((size_t)L * H * 4);
    char **rn = calloc(L, sizeof *rn), **cn = calloc(H, sizeof *cn), path[1100], note[160];
    if (!v || !rn || !cn) rc = attn_err(ATTN_EFAIL, "out of memory");
    for (int l = 0; !rc && l < L; l++) {
        if ((rn[l] = malloc(16))) snprintf(rn[l], 16, "L%d", l);
        for (int h = 0; h < H; h++) v[l * H + h] = (float)comp[2 + l * (H + 2) + h];
    }
    for (int h = 0; !rc && h < H; h++) if ((cn[h] = malloc(16))) snprintf(cn[h], 16, "H%d", h);
    if (against >= 0)
        snprintf(note, sizeof note, "each head's direct effect on logit(#%d) - logit(#%d), in logits", target, against);
    else snprintf(note, sizeof note, "each head's direct effect on logit(#%d), in logits", target);
    attn_grid g = { v, L, H, rn, cn, "attribution: layer x head", note, 0, NAN, NULL };
    attn_image im;
    snprintf(path, sizeof path, "%s/attribute.png", dir);
    if (!rc && !(rc = attn_grid_image(&g, &im))) {
        rc = attn_write_png(path, &im);
        attn_image_free(&im);
    }
    for (int l = 0; rn && l < L; l++) free(rn[l]);
    for (int h = 0; cn && h < H; h++) free(cn[h]);
    free(rn); free(cn); free(v);
    return rc;
}

// ---- options -> result -> print

typedef struct {
    cli_opts o;
    const char *fmt, *tgt, *ag; // --format, --target, --against
    long pos;                   // --pos (-1: the last)
} attr_opts;

typedef struct {
    attn_model *m;
    attn_pool *pool;
    int32_t *ids, target, against; // against -1: none
    int T, pos, n;                 // tokens, position, components
    double *comp, logit;           // (n) components; their sum
    char dir[1024];                // -o DIR
} attr_result;

static int attr_opt(void *p, const char *a, int argc, char **argv, int *i) {
    attr_opts *ao = p;
    if (!strcmp(a, "--target")) return cli_opt_str(argc, argv, i, &ao->tgt);
    if (!strcmp(a, "--against")) return cli_opt_str(argc, argv, i, &ao->ag);
    if (!strcmp(a, "--pos")) return cli_opt_int(argc, argv, i, 0, 1L << 24, &ao->pos);
    return 0;
}

static int attr_parse(int argc, char **argv, attr_opts *ao) {
    ao->pos = -1;
    if (cli_parse_opts(&ao->o, argc, argv, attr_opt, ao)) return CLI_PRINTED;
    if (ao->o.help) return 0;
    if (cli_format(&ao->o, "table,tsv,json", &ao->fmt)) return ATTN_EINPUT;
    if (!ao->tgt) { cli_error("attribute: --target TOKEN is required"); return CLI_PRINTED; }
    return 0;
}

static int attr_compute(const attr_opts *ao, attr_result *r) {
    r->against = -1;
    int rc = cli_setup(&ao->o, &r->m, &r->pool, &r->ids, &r->T, NULL);
    if (!rc) rc = cli_token(r->m, "--target", ao->tgt, &r->target);
    if (!rc && ao->ag) rc = cli_token(r->m, "--against", ao->ag, &r->against);
    if (!rc && ao->pos >= r->T) rc = attn_err(ATTN_EINPUT, "--pos %ld: the prompt has %d tokens (0..%d)", ao->pos, r->T, r->T - 1);
    if (!rc && ao->o.out_dir) rc = cli_out_dir(&ao->o, NULL, r->dir, sizeof r->dir);
    if (rc) return rc;
    r->n = attn_attr_n(r->m);
    if (!(r->comp = malloc((size_t)r->n * sizeof *r->comp))) return attn_err(ATTN_EFAIL, "out of memory");
    r->pos = ao->pos < 0 ? r->T - 1 : (int)ao->pos;
    return attn_attribute(r->m, r->pool, r->ids, r->T, r->pos, r->target, r->against, r->comp, &r->logit);
}

// The row printer: component k as a JSON item, a TSV line or a table row.
static void attr_row(const attr_result *r, const char *fmt, int k, int first) {
    char b[48];
    comp_name(r->m, k, b, sizeof b);
    if (!strcmp(fmt, "json")) {
        printf("%s{\"name\": \"%s\", \"value\": ", first ? "" : ", ", b);
        attn_json_numf(stdout, "%.9g", r->comp[k]);
        printf("}");
    } else printf(!strcmp(fmt, "tsv") ? "%s\t%.9g\n" : "  %-16s %+9.4f\n", b, r->comp[k]);
}

// JSON in component order; table and TSV largest |value| first.
static void attr_table(const attr_result *r, const char *fmt) {
    if (!strcmp(fmt, "json")) {
        printf("{\"target\": %d, \"against\": ", r->target);
        if (r->against >= 0) printf("%d", r->against);
        else printf("null");
        printf(", \"pos\": %d", r->pos);
        cli_json_num("logit", "%.9g", r->logit);
        printf(", \"components\": [");
        for (int k = 0; k < r->n; k++) attr_row(r, fmt, k, k == 0);
        printf("]}\n");
        return;
    }
    int *order = malloc((size_t)r->n * sizeof *order);
    if (!order) return;
    for (int k = 0; k < r->n; k++) order[k] = k;
    sort_abs = r->comp;
    qsort(order, r->n, sizeof *order, by_abs);
    if (!strcmp(fmt, "tsv")) printf("component\tvalue\n");
    else printf("logit%s at position %d: %.4f (sum of the components below, in logits)\n  %-16s %9s\n",
                r->against >= 0 ? " difference" : "", r->pos, r->logit, "component", "value");
    for (int i = 0; i < r->n; i++) attr_row(r, fmt, order[i], i == 0);
    free(order);
}

// The table, then with -o DIR the picture.
static int print_attribute(const attr_result *r, const attr_opts *ao) {
    attr_table(r, ao->fmt);
    int rc = ao->o.out_dir ? attr_picture(r->m, r->comp, r->dir, r->target, r->against) : 0;
    if (!rc && ao->o.out_dir) cli_note("wrote to %s: attribute.png", r->dir);
    return rc;
}

static void attr_result_free(attr_result *r) {
    free(r->comp);
    free(r->ids);
    attn_pool_free(r->pool);
    attn_model_free(r->m);
}

CLI_COMMAND(attribute, attr, "a logit split into the parts that wrote it", ATTRIBUTE_HELP);
