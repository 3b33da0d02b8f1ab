// attn_cmd_report.c - CLI command `attn report`: one forward pass of a
// prompt (and of a random init of the same architecture for the score
// baseline) into the self-contained offline HTML page of attn_report.c.
#include "attn.h"
#include "attn_cli.h"
#include "simd/kernels.h"
#include <stdlib.h>
#include <string.h>

#define REPORT_SEED 1234 // default seed of the random-init baseline (as `attn heads`)

static const char *REPORT_HELP =
    "usage: attn report [-m FILE] (-p TEXT | -f FILE | --ids 1,2,3) -o REPORT.html\n"
    "                   [options]\n\n"
    "Writes one self-contained HTML page (no network, no external script or font;\n"
    "opens offline in any current browser) to explore the prompt's attention:\n"
    "  - token view: hover a token to see where each head of a layer looks (line\n"
    "    opacity = square root of the attention probability, 0..1), or which\n"
    "    tokens look at it\n"
    "  - layer x head grid of thumbnails coloured by head type\n"
    "  - head score table (as `attn heads`: attention mass 0..1, entropy in bits,\n"
    "    beside a random init of the same architecture and uniform attention)\n"
    "  - the top-k next-token table per position (probability 0..1)\n"
    "Attention is stored quantised to 8 bits (steps of 1/255); a 6-layer 8-head\n"
    "model at 128 tokens gives a page of about 0.6 MB.\n\n"
    "options\n"
    "  -o FILE       the page to write (parent folders are created)\n"
    "  -k N          next-token candidates per position (default 5)\n"
    "  --seed S      seed of the random-init baseline (default 1234)\n"
    "  --no-bos      do not add the BOS token the model would add\n"
    "  --no-special  text such as <|endoftext|> stays text (default: the token)\n"
    "  -t N          threads\n";

// Capture: quantise every head's rows into the triangles, and score them.
typedef struct {
    uint8_t *tri; // [L][H] triangles
    int H, T;
    attn_heads_acc *acc;
} report_cap;

static void report_on_attn(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p) {
    report_cap *c = ctx;
    uint8_t *t = c->tri + ((size_t)layer * c->H + head) * ATTN_TRI(c->T);
    for (int r = 0; r < nq; r++) {
        int i = q0 + r;
        for (int j = 0; j <= i; j++) t[ATTN_TRI_ROW(i) + j] = attn_quant8(p[(size_t)r * nk + j]);
    }
    attn_heads_acc_on_attn(c->acc, layer, head, q0, nq, nk, p);
}

// Parent folders of a file path.
static int make_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return 0;
    char dir[1024];
    if ((size_t)(slash - path) >= sizeof dir) return attn_err(ATTN_EINPUT, "%s: path too long", path);
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = 0;
    return attn_mkdirs(dir);
}

int cmd_report(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    long k = 5, seed = REPORT_SEED;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return cli_exit(CLI_PRINTED);
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (!strcmp(a, "-k")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_int(a, v, 1, 100, &k)) return cli_exit(CLI_PRINTED);
        } else if (!strcmp(a, "--seed")) {
            if (!(v = cli_val(argc, argv, &i)) || cli_int(a, v, 0, 0x7fffffffL, &seed)) return cli_exit(CLI_PRINTED);
        } else return cli_bad_opt("report", a);
    }
    if (o.help) {
        fputs(REPORT_HELP, stdout);
        return 0;
    }
    if (!o.out_dir) {
        cli_error("report: give the page to write with -o REPORT.html");
        return cli_exit(CLI_PRINTED);
    }
    attn_model *m = NULL, *rnd = NULL;
    attn_pool *pool = NULL;
    attn_session *s = NULL;
    int32_t *ids = NULL, *top_id = NULL;
    char **labels = NULL, **top_labels = NULL;
    float *logits = NULL, *top_prob = NULL;
    attn_head_scores *sc = NULL, *base = NULL, unif;
    report_cap cap = {0};
    int T = 0, rc = cli_load_model(&o, 0, &m);
    if (!rc) rc = cli_prompt_ids(&o, m, &ids, &T);
    if (!rc) rc = attn_token_labels(m->tok, ids, T, &labels);
    if (!rc) rc = cli_pool(&o, &pool);
    if (rc) goto done;
    const attn_config *c = &m->cfg;
    int L = c->n_layer, H = c->n_head, V = c->n_vocab;
    if (k > V) k = V;
    cap.H = H;
    cap.T = T;
    cap.tri = malloc((size_t)L * H * ATTN_TRI(T));
    logits = malloc((size_t)T * V * sizeof *logits);
    top_id = malloc((size_t)T * k * sizeof *top_id);
    top_prob = malloc((size_t)T * k * sizeof *top_prob);
    sc = malloc((size_t)L * H * sizeof *sc);
    base = malloc((size_t)L * H * sizeof *base);
    if (!cap.tri || !logits || !top_id || !top_prob || !sc || !base) {
        rc = attn_err(ATTN_EFAIL, "out of memory for the attention of %d layers x %d heads at %d tokens", L, H, T);
        goto done;
    }
    if ((rc = attn_heads_acc_new(&cap.acc, L, H))) goto done;
    cap.acc->ids = ids;
    attn_capture capture = {.on_attn = report_on_attn, .ctx = &cap};
    if ((rc = attn_session_new(&s, m, T, pool))) goto done;
    if ((rc = attn_session_feed(s, ids, T, logits, 0, &capture))) goto done;
    attn_heads_acc_get(cap.acc, sc);
    for (int t = 0; t < T; t++) {
        float *p = logits + (size_t)t * V;
        attn_k->softmax(p, V);
        attn_top_k(p, V, (int)k, top_id + (size_t)t * k, top_prob + (size_t)t * k);
    }
    if ((rc = attn_token_labels(m->tok, top_id, T * (int)k, &top_labels))) goto done;
    // the random-init baseline
    attn_session_free(s);
    s = NULL;
    if ((rc = attn_model_random(&rnd, m, (uint64_t)seed))) goto done;
    if ((rc = attn_session_new(&s, rnd, T, pool))) goto done;
    if ((rc = attn_score_heads(rnd, s, ids, T, NULL, base))) goto done;
    attn_head_scores_uniform(ids, T, &unif);
    attn_report r = {.m = m, .T = T, .ids = ids, .labels = labels, .attn = cap.tri, .scores = sc,
                     .baseline = base, .uniform = &unif, .seed = (uint64_t)seed, .k = (int)k,
                     .top_id = top_id, .top_prob = top_prob, .top_labels = top_labels};
    if ((rc = make_parent(o.out_dir))) goto done;
    if ((rc = attn_report_write(o.out_dir, &r))) goto done;
    cli_note("wrote %s", o.out_dir);
done:
    attn_session_free(s);
    attn_heads_acc_free(cap.acc);
    free(cap.tri);
    free(logits);
    free(top_id);
    free(top_prob);
    free(sc);
    free(base);
    if (top_labels) attn_labels_free(top_labels, T * (int)k);
    if (labels) attn_labels_free(labels, T);
    free(ids);
    attn_model_free(rnd);
    attn_model_free(m);
    attn_pool_free(pool);
    return cli_exit(rc);
}
