// attn_cmd_report.c - CLI command `attn report`: one forward pass of a
// prompt (and of a random init of the same architecture for the score
// baseline) into the self-contained offline HTML page of attn_report.c.
#include "attn.h"
#include "attn_cli.h"
#include "simd/kernels.h"
#include <stdlib.h>
#include <string.h>

#define REPORT_SEED 1234 // default seed of the random-init baseline (as `attn heads`)

static const char REPORT_HELP[] =
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

// Capture: quantise every head's rows into the triangles (the model's
// forward; NULL: the random init's), score them, and show progress by layer
// over both forwards (steps first + layer of 2L).
typedef struct {
    uint8_t *tri; // [L][H] triangles
    int H, T;
    attn_heads_acc *acc;
    long first, total;
} report_cap;

static void report_on_attn(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p) {
    report_cap *c = ctx;
    if (head == 0) cli_progress("report: layers", c->first + layer, c->total);
    uint8_t *t = c->tri ? c->tri + ((size_t)layer * c->H + head) * ATTN_TRI(c->T) : NULL;
    for (int r = 0; t && r < nq; r++) {
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

// ---- options -> result (attn_report) -> print (the page)

typedef struct {
    cli_opts o;   // o.out_dir: the page
    long k, seed; // -k candidates, --seed of the random-init baseline
} report_opts;

typedef struct {
    attn_model *m, *rnd;
    attn_pool *pool;
    attn_session *s;
    int32_t *ids, *top_id;        // (T); (T, k)
    char **labels, **top_labels;  // (T); (T, k)
    float *logits, *top_prob;     // (T, V); (T, k)
    attn_head_scores *sc, *base, unif; // (L*H) model, random init; uniform attention
    report_cap cap;
    int T, k;
} report_result;

static int report_opt(void *p, const char *a, int argc, char **argv, int *i) {
    report_opts *ro = p;
    if (!strcmp(a, "-k")) return cli_opt_int(argc, argv, i, 1, 100, &ro->k);
    if (!strcmp(a, "--seed")) return cli_opt_int(argc, argv, i, 0, 0x7fffffffL, &ro->seed);
    return 0;
}

static int report_parse(int argc, char **argv, report_opts *ro) {
    ro->k = 5, ro->seed = REPORT_SEED;
    if (cli_parse_opts(&ro->o, argc, argv, report_opt, ro)) return CLI_PRINTED;
    if (!ro->o.help && !ro->o.out_dir) {
        cli_error("report: give the page to write with -o REPORT.html");
        return CLI_PRINTED;
    }
    return 0;
}

// The model's forward: every head's attention (lower triangles), its scores,
// and the top-k next tokens of every position.
static int report_forward(const report_opts *ro, report_result *r) {
    int rc = cli_setup(&ro->o, &r->m, &r->pool, &r->ids, &r->T, &r->labels);
    if (rc) return rc;
    const attn_config *c = &r->m->cfg;
    int L = c->n_layer, H = c->n_head, V = c->n_vocab, T = r->T, k;
    k = r->k = ro->k > V ? V : (int)ro->k;
    r->cap.H = H;
    r->cap.T = T;
    r->cap.total = 2L * L;
    r->cap.tri = malloc((size_t)L * H * ATTN_TRI(T));
    r->logits = malloc((size_t)T * V * sizeof *r->logits);
    r->top_id = malloc((size_t)T * k * sizeof *r->top_id);
    r->top_prob = malloc((size_t)T * k * sizeof *r->top_prob);
    r->sc = malloc((size_t)L * H * sizeof *r->sc);
    r->base = malloc((size_t)L * H * sizeof *r->base);
    if (!r->cap.tri || !r->logits || !r->top_id || !r->top_prob || !r->sc || !r->base)
        return attn_err(ATTN_EFAIL, "out of memory for the attention of %d layers x %d heads at %d tokens", L, H, T);
    if ((rc = attn_heads_acc_new(&r->cap.acc, L, H))) return rc;
    r->cap.acc->ids = r->ids;
    attn_capture capture = {.on_attn = report_on_attn, .ctx = &r->cap};
    if ((rc = attn_session_new(&r->s, r->m, T, r->pool))) return rc;
    if ((rc = attn_session_feed(r->s, r->ids, T, r->logits, 0, &capture))) return rc;
    attn_heads_acc_get(r->cap.acc, r->sc);
    for (int t = 0; t < T; t++) {
        float *p = r->logits + (size_t)t * V;
        attn_k->softmax(p, V);
        attn_top_k(p, V, k, r->top_id + (size_t)t * k, r->top_prob + (size_t)t * k);
    }
    return attn_token_labels(r->m->tok, r->top_id, T * k, &r->top_labels);
}

static int report_compute(const report_opts *ro, report_result *r) {
    int rc = report_forward(ro, r);
    if (rc) return rc;
    // the random-init baseline
    attn_session_free(r->s);
    r->s = NULL;
    if ((rc = attn_model_random(&r->rnd, r->m, (uint64_t)ro->seed, r->pool))) return rc;
    if ((rc = attn_session_new(&r->s, r->rnd, r->T, r->pool))) return rc;
    report_cap rnd = r->cap; // the same accumulators, no triangles
    rnd.tri = NULL;
    rnd.first = r->m->cfg.n_layer;
    attn_heads_acc_reset(rnd.acc);
    attn_capture capture = {.on_attn = report_on_attn, .ctx = &rnd};
    if ((rc = attn_session_feed(r->s, r->ids, r->T, NULL, 0, &capture))) return rc;
    attn_heads_acc_get(r->cap.acc, r->base);
    cli_progress("report: layers", r->cap.total, r->cap.total);
    attn_head_scores_uniform(r->ids, r->T, &r->unif);
    return 0;
}

static int print_report(const report_result *r, const report_opts *ro) {
    attn_report rep = {.m = r->m, .T = r->T, .ids = r->ids, .labels = r->labels, .attn = r->cap.tri,
                       .scores = r->sc, .baseline = r->base, .uniform = &r->unif, .seed = (uint64_t)ro->seed,
                       .k = r->k, .top_id = r->top_id, .top_prob = r->top_prob, .top_labels = r->top_labels};
    int rc = make_parent(ro->o.out_dir);
    if (!rc) rc = attn_report_write(ro->o.out_dir, &rep);
    if (!rc) cli_note("wrote %s", ro->o.out_dir);
    return rc;
}

static void report_result_free(report_result *r) {
    attn_session_free(r->s);
    attn_heads_acc_free(r->cap.acc);
    free(r->cap.tri), free(r->sc), free(r->base);                // attention, scores
    free(r->logits), free(r->top_id), free(r->top_prob);         // the top-k tables
    if (r->top_labels) attn_labels_free(r->top_labels, r->T * r->k);
    if (r->labels) attn_labels_free(r->labels, r->T);
    free(r->ids);
    attn_model_free(r->rnd);
    attn_model_free(r->m);
    attn_pool_free(r->pool);
}

CLI_COMMAND(report, report, "one self-contained offline HTML page of a prompt's attention", REPORT_HELP);
