// attn_cmd_attribute.c - CLI command `attn attribute`: direct logit
// attribution, the final residual at one position split into the parts that
// wrote it (attn_attribute), each read through the frozen final norm onto the
// target's unembedding row.
#include "attn.h"
#include "attn_cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *ATTRIBUTE_HELP =
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

static void attr_print(const attn_model *m, const char *fmt, const double *comp, int n, double logit, int target,
                       int against, int pos) {
    char b[48];
    if (!strcmp(fmt, "json")) {
        printf("{\"target\": %d, \"against\": ", target);
        if (against >= 0) printf("%d", against);
        else printf("null");
        printf(", \"pos\": %d, \"logit\": ", pos);
        attn_json_numf(stdout, "%.9g", logit);
        printf(", \"components\": [");
        for (int k = 0; k < n; k++) {
            comp_name(m, k, b, sizeof b);
            printf("%s{\"name\": \"%s\", \"value\": ", k ? ", " : "", b);
            attn_json_numf(stdout, "%.9g", comp[k]);
            printf("}");
        }
        printf("]}\n");
        return;
    }
    int *order = malloc((size_t)n * sizeof *order);
    if (!order) return;
    for (int k = 0; k < n; k++) order[k] = k;
    sort_abs = comp;
    qsort(order, n, sizeof *order, by_abs);
    if (!strcmp(fmt, "tsv")) printf("component\tvalue\n");
    else printf("logit%s at position %d: %.4f (sum of the components below, in logits)\n  %-16s %9s\n",
                against >= 0 ? " difference" : "", pos, logit, "component", "value");
    for (int r = 0; r < n; r++) {
        comp_name(m, order[r], b, sizeof b);
        printf(!strcmp(fmt, "tsv") ? "%s\t%.9g\n" : "  %-16s %+9.4f\n", b, comp[order[r]]);
    }
    free(order);
}

int cmd_attribute(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    const char *tgt = NULL, *ag = NULL, *v;
    long pos = -1;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return cli_exit(CLI_PRINTED);
        if (r > 0) continue;
        const char *a = argv[i];
        if (!strcmp(a, "--target")) { if (!(tgt = cli_val(argc, argv, &i))) return cli_exit(CLI_PRINTED); }
        else if (!strcmp(a, "--against")) { if (!(ag = cli_val(argc, argv, &i))) return cli_exit(CLI_PRINTED); }
        else if (!strcmp(a, "--pos")) { if (!(v = cli_val(argc, argv, &i)) || cli_int(a, v, 0, 1L << 24, &pos)) return cli_exit(CLI_PRINTED); }
        else return cli_bad_opt("attribute", a);
    }
    if (o.help) { fputs(ATTRIBUTE_HELP, stdout); return 0; }
    const char *fmt;
    if (cli_format(&o, "table,tsv,json", &fmt)) return cli_exit(ATTN_EINPUT);
    if (!tgt) { cli_error("attribute: --target TOKEN is required"); return cli_exit(CLI_PRINTED); }
    attn_model *m = NULL;
    attn_pool *pool = NULL;
    int32_t *ids = NULL, target, against = -1;
    int T = 0;
    double *comp = NULL, logit = 0;
    char dir[1024];
    int rc = cli_load_model(&o, 0, &m);
    if (!rc) rc = cli_pool(&o, &pool);
    if (!rc) rc = cli_prompt_ids(&o, m, &ids, &T);
    if (!rc) rc = cli_token(m, "--target", tgt, &target);
    if (!rc && ag) rc = cli_token(m, "--against", ag, &against);
    if (!rc && pos >= T) rc = attn_err(ATTN_EINPUT, "--pos %ld: the prompt has %d tokens (0..%d)", pos, T, T - 1);
    if (!rc && o.out_dir) rc = cli_out_dir(&o, NULL, dir, sizeof dir);
    if (!rc && !(comp = malloc((size_t)attn_attr_n(m) * sizeof *comp))) rc = attn_err(ATTN_EFAIL, "out of memory");
    if (pos < 0) pos = T - 1;
    if (!rc) rc = attn_attribute(m, pool, ids, T, (int)pos, target, against, comp, &logit);
    if (!rc) attr_print(m, fmt, comp, attn_attr_n(m), logit, target, against, (int)pos);
    if (!rc && o.out_dir && !(rc = attr_picture(m, comp, dir, target, against)))
        cli_note("wrote to %s: attribute.png", dir);
    free(comp);
    free(ids);
    attn_pool_free(pool);
    attn_model_free(m);
    return cli_exit(rc);
}
