// attn_cmd_maps.c - `attn maps`: one heatmap per chosen layer/head and a
// layer x head grid (PNG, SVG, or ANSI colour in the terminal), from a prompt
// or from attention recorded earlier (`run --export`, `trace --attn`).
// Also the helpers the picture commands share (declared in attn_cli.h):
// layer/head lists, --scale, capture of chosen heads, writing a figure.
#include "attn.h"
#include "attn_cli.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------- shared helpers

// One index at p: a number or "last" (n - 1); *end == p when neither.
long cli_index(const char *p, int n, char **end) {
    if (!strncmp(p, "last", 4)) { *end = (char *)p + 4; return n - 1; }
    errno = 0;
    long v = strtol(p, end, 10);
    if (errno || !isdigit((unsigned char)*p)) *end = (char *)p;
    return v;
}

int cli_index_list(const char *opt, const char *val, int n, uint8_t *mask) {
    memset(mask, 0, (size_t)n);
    if (!strcmp(val, "all")) { memset(mask, 1, (size_t)n); return 0; }
    const char *p = val;
    while (*p) {
        char *end;
        long a = cli_index(p, n, &end), b = a;
        if (end == p) break;
        p = end;
        if (*p == '-') {
            b = cli_index(++p, n, &end);
            if (end == p) break;
            p = end;
        }
        if (b < a) {
            cli_error("%s: '%s': the range %ld-%ld goes down; write %ld-%ld", opt, val, a, b, b, a);
            return -1;
        }
        if (a < 0 || b >= n) {
            cli_error("%s: %ld out of range: the model has %d (0..%d, or last)", opt, b >= n ? b : a, n, n - 1);
            return -1;
        }
        for (long i = a; i <= b; i++) mask[i] = 1;
        if (*p == ',') p++;
        else if (*p) break;
    }
    if (*p || p == val) {
        cli_error("%s: '%s' is not 'all' or a list like 0,3,5-7", opt, val);
        return -1;
    }
    return 0;
}

int cli_select(const cli_opts *o, int L, int H, uint8_t *lmask, uint8_t *hmask) {
    if (cli_index_list("--layers", o->layers ? o->layers : "all", L, lmask) ||
        cli_index_list("--heads", o->heads ? o->heads : "all", H, hmask))
        return CLI_PRINTED;
    return 0;
}

int cli_scale(const char *val, attn_scale *out) {
    static const char *const names[] = {"fixed", "row", "log"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(val, names[i])) { *out = (attn_scale)i; return 0; }
    cli_error("--scale: '%s' is not fixed, row or log", val);
    return -1;
}

void cli_mem_init(cli_mem *mem, const char *cmd) {
    const char *tmp = getenv("TMPDIR");
    *mem = (cli_mem){.cmd = cmd, .dir = tmp && *tmp ? tmp : "/tmp", .max_mem = CLI_MAX_MEM_MB * 1e6};
}

int cli_buf_new(cli_mem *mem, cli_buf *b, size_t n, const char *what) {
    memset(b, 0, sizeof *b);
    b->disk.fd = -1;
    double bytes = (double)n * sizeof(float);
    int on_disk = mem->used + bytes > mem->max_mem, rc = 0;
    if (bytes > (double)SIZE_MAX / 2) rc = attn_err(ATTN_EINPUT, "more than this machine can address");
    else if (!on_disk && !(b->p = calloc(n + 1, sizeof(float))))
        rc = attn_err(ATTN_EFAIL, "out of memory (a lower --max-mem keeps it on disk)");
    else if (on_disk && !(rc = attn_scratch_new(&b->disk, mem->dir, n * sizeof(float)))) b->p = b->disk.p;
    if (rc) { // one line: what, its size, why
        char why[600];
        snprintf(why, sizeof why, "%s", attn_errmsg());
        return attn_err(rc, "%s: %s: %.1f MB%s: %s", mem->cmd, what, bytes / 1e6, on_disk ? " on disk" : "", why);
    }
    if (on_disk)
        cli_note("%s: %s: %.1f MB, over --max-mem %.0f MB: kept in a scratch file in %s (removed at exit)",
                mem->cmd, what, bytes / 1e6, mem->max_mem / 1e6, mem->dir);
    else if (bytes > 256e6) // a large capture is worth a word
        cli_note("%s: %s: %.1f MB in memory (--max-mem %.0f MB)", mem->cmd, what, bytes / 1e6,
                mem->max_mem / 1e6);
    if (!on_disk) mem->used += bytes;
    return 0;
}

void cli_buf_free(cli_buf *b) {
    if (b->disk.p) attn_scratch_free(&b->disk);
    else free(b->p);
    b->p = NULL;
}

static void capture_rows(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p) {
    cli_attn *a = ctx;
    int id = layer * a->n_head + head, k = 0;
    while (k < a->n_sel && a->sel[k] != id) k++;
    if (k == a->n_sel) return;
    float *dst = a->buf.p + (size_t)k * a->T * a->T;
    for (int i = 0; i < nq; i++) {
        memcpy(dst + (size_t)(q0 + i) * a->T, p + (size_t)i * nk, (size_t)nk * sizeof(float));
        memset(dst + (size_t)(q0 + i) * a->T + nk, 0, (size_t)(a->T - nk) * sizeof(float));
    }
}

// The chosen (layer, head) pairs into a->sel, in layer-major order.
static int select_heads(cli_attn *a, int L, int H, const uint8_t *layers, const uint8_t *heads) {
    a->n_head = H;
    if (!(a->sel = malloc((size_t)L * H * sizeof(int)))) return attn_err(ATTN_EFAIL, "out of memory");
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++)
            if (layers[l] && heads[h]) a->sel[a->n_sel++] = l * H + h;
    return 0;
}

int cli_attn_capture_logits(const attn_model *m, attn_pool *pool, const int32_t *ids, int T,
                            const uint8_t *layers, const uint8_t *heads, cli_mem *mem, cli_attn *out, float *logits) {
    memset(out, 0, sizeof *out);
    out->T = T;
    char what[120];
    int rc = select_heads(out, m->cfg.n_layer, m->cfg.n_head, layers, heads);
    snprintf(what, sizeof what, "%d heads of %d x %d attention", out->n_sel, T, T);
    if (!rc) rc = cli_buf_new(mem, &out->buf, (size_t)out->n_sel * T * T, what);
    attn_session *s = NULL;
    if (!rc) rc = attn_session_new(&s, m, T, pool);
    attn_capture cap = {.on_attn = capture_rows, .ctx = out, .layers = layers, .heads = heads};
    if (!rc) rc = attn_session_feed(s, ids, T, logits, 0, &cap);
    attn_session_free(s);
    if (rc) cli_attn_free(out);
    return rc;
}

int cli_attn_capture(const attn_model *m, attn_pool *pool, const int32_t *ids, int T, const uint8_t *layers,
                     const uint8_t *heads, cli_mem *mem, cli_attn *out) {
    return cli_attn_capture_logits(m, pool, ids, T, layers, heads, mem, out, NULL);
}

void cli_attn_free(cli_attn *a) {
    free(a->sel);
    cli_buf_free(&a->buf);
    a->sel = NULL;
}

int cli_write_figure(const attn_figure *f, const char *dir, const char *stem, int png, int svg) {
    char path[1200];
    int rc = 0;
    if (png) {
        attn_image im;
        if ((rc = attn_render_image(f, &im))) return rc;
        snprintf(path, sizeof path, "%s/%s.png", dir, stem);
        rc = attn_write_png(path, &im);
        attn_image_free(&im);
    }
    if (!rc && svg) {
        char *text;
        size_t n;
        if ((rc = attn_render_svg(f, &text, &n))) return rc;
        snprintf(path, sizeof path, "%s/%s.svg", dir, stem);
        rc = attn_write_file(path, text, n);
        free(text);
    }
    return rc;
}

// ---------------------------------------------------------------- recorded attention
// `--from DIR`: DIR/attention.npy (float32 [L,H,T,T]) and DIR/tokens.json
// ("labels": [...]), as `attn run --export npy,json` and `attn trace --attn` write them.

// The header of a float32 little-endian C-order .npy of 4 dimensions: its
// shape, and *out positioned at the data (checked to be all there).
static int npy4_open(const char *path, int64_t dims[4], FILE **out) {
    // non-blocking open, regular files only: a FIFO never hangs the command
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0) return attn_err(ATTN_EINPUT, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return attn_err(ATTN_EINPUT, "%s: not a regular file", path);
    }
    FILE *fp = fdopen(fd, "rb");
    if (!fp) { close(fd); return attn_err(ATTN_EFAIL, "%s: %s", path, strerror(errno)); }
    uint8_t pre[10];
    char hdr[4096];
    int rc = 0;
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6) || pre[6] != 1) {
        fclose(fp);
        return attn_err(ATTN_EINPUT, "%s: not a version 1 .npy file", path);
    }
    size_t hl = pre[8] | pre[9] << 8;
    if (hl >= sizeof hdr || fread(hdr, 1, hl, fp) != hl) rc = attn_err(ATTN_EINPUT, "%s: bad .npy header", path);
    hdr[rc ? 0 : hl] = 0;
    const char *shape = strstr(hdr, "'shape': (");
    long long d[4];
    if (!rc && (!strstr(hdr, "'descr': '<f4'") || strstr(hdr, "'fortran_order': True") || !shape ||
                sscanf(shape, "'shape': (%lld, %lld, %lld, %lld)", &d[0], &d[1], &d[2], &d[3]) != 4))
        rc = attn_err(ATTN_EINPUT, "%s: expected float32 [L,H,T,T] in C order", path);
    if (!rc && (d[0] < 1 || d[1] < 1 || d[2] < 1 || d[2] != d[3] || d[0] > 65536 || d[1] > 65536 ||
                d[0] * d[1] > 65536 || d[2] > 65536))
        rc = attn_err(ATTN_EINPUT, "%s: shape [%lld,%lld,%lld,%lld] is not [L,H,T,T]", path, d[0], d[1], d[2], d[3]);
    off_t here = ftello(fp);
    if (!rc && (fseeko(fp, 0, SEEK_END) || ftello(fp) - here < (off_t)(d[0] * d[1] * d[2] * d[3] * 4) ||
                fseeko(fp, here, SEEK_SET)))
        rc = attn_err(ATTN_EINPUT, "%s: file is shorter than its shape", path);
    if (rc) { fclose(fp); return rc; }
    for (int i = 0; i < 4; i++) dims[i] = d[i];
    *out = fp;
    return 0;
}

// The JSON string literal at *s (advanced past it) into a malloc'ed string.
static char *json_string(const char **s) {
    const char *p = *s + 1, *e = p;
    while (*e && *e != '"') e += *e == '\\' && e[1] ? 2 : 1; // this string only: parsing stays linear
    char *out = malloc((size_t)(e - p) + 1); // escapes never grow
    if (out) attn_json_unescape(out, p, (size_t)(e - p));
    *s = *e ? e + 1 : e;
    return out;
}

// "labels": [...] of a tokens.json (exactly T of them) and its "model".
static int read_tokens_json(const char *path, int T, char ***out, char *model, size_t model_n) {
    char *buf;
    size_t n;
    int rc = cli_read_input(path, CLI_TEXT_MAX, &buf, &n);
    if (rc) return rc;
    const char *p = strstr(buf, "\"model\": \"");
    char *name = p ? (p += 9, json_string(&p)) : NULL;
    if (name) attn_escape(model, model_n, name, strlen(name)); // labels and name from a file: no controls
    free(name);
    p = strstr(buf, "\"labels\"");
    char **labels = calloc((size_t)T, sizeof *labels);
    int k = 0;
    if (p && labels && (p = strchr(p, '['))) {
        for (p++; k < T;) {
            while (*p == ' ' || *p == '\n' || *p == ',') p++;
            if (*p != '"') break;
            char *raw = json_string(&p);
            if (!raw) break;
            size_t cap = 4 * strlen(raw) + 1; // an escape is at most 6 bytes for a 2-byte character
            cap += cap / 2;
            if ((labels[k] = malloc(cap))) attn_escape(labels[k], cap, raw, strlen(raw));
            free(raw);
            if (!labels[k++]) break;
        }
    }
    free(buf);
    if (!labels || k != T) {
        if (labels) attn_labels_free(labels, k);
        return attn_err(ATTN_EINPUT, "%s: expected \"labels\" with %d strings (one per position)", path, T);
    }
    *out = labels;
    return 0;
}

// ---------------------------------------------------------------- maps

static const char MAPS_HELP[] =
    "usage: attn maps [-m FILE] (-p TEXT | -f FILE | --ids 1,2,3 | --from DIR) -o DIR\n"
    "                 [--layers 0,3,5|all] [--heads 0,3,7|all] [--format png,svg]\n"
    "                 [--scale fixed|row|log] [--drop-first] [--no-grid] [--term]\n"
    "                 [--annot | --no-annot] [--max-mem MB]\n\n"
    "Heatmaps of attention: row = the query position (\"from position\"), column =\n"
    "the key position it attends to (\"attended to\"), token labels on both axes.\n"
    "Writes DIR/L<layer>_H<head>.png for each chosen head and DIR/grid.png, all\n"
    "chosen layers x heads on one shared colour scale. Cells above the diagonal\n"
    "(future positions, masked) are hatched grey, never a colour of the scale;\n"
    "so are, in a sliding-window layer (Gemma 2, Phi-3), the keys left of its\n"
    "window (not with --from, which has no model).\n"
    "  --layers, --heads  'all' (default) or a list: 0,3,5-7\n"
    "  --format LIST      png (default), svg or png,svg; SVG keeps labels as text,\n"
    "                     so any script (Korean, CJK, emoji) reads correctly there\n"
    "  --scale fixed      0..1 on every picture (default), so colours compare\n"
    "  --scale row        each row divided by its largest value\n"
    "  --scale log        log10 of attention, from 1e-4 (and below) to 1\n"
    "  --drop-first       remove key column 0 (the first token often takes most of\n"
    "                     the attention) and renormalise every row; said on the\n"
    "                     picture\n"
    "  --no-grid          only the per-head maps\n"
    "  --annot            write each cell's attention probability in it, two\n"
    "                     decimals (0.52), on pictures whose cells are large\n"
    "                     enough for that (single maps up to about 30 tokens); on\n"
    "                     by default for prompts of at most 16 tokens (--no-annot:\n"
    "                     off)\n"
    "  --term             draw the maps in the terminal (ANSI 24-bit colour); -o\n"
    "                     is then optional\n"
    "  --from DIR         draw DIR/attention.npy [L,H,T,T] with the labels of\n"
    "                     DIR/tokens.json, as written by `attn run --export npy,json`\n"
    "                     or `attn trace --attn DIR` (no model needed)\n"
    CLI_MAX_MEM_HELP
    "Long prompts: cells shrink (under 4096 pixels a side), labels thin out to\n"
    "every n-th token, stated on the picture.\n";

// ---- options -> result -> print (here: draw)

typedef struct {
    cli_opts o;
    const char *from;  // --from DIR
    attn_scale scale;
    int drop_first, grid, term, annot;     // annot -1: automatic, T <= 16
    int png, svg;                          // --format png,svg
} maps_opts;

typedef struct {
    attn_model *m;     // NULL with --from
    attn_pool *pool;
    int32_t *ids;
    char **labels;     // (T)
    char dir[1024], name[160]; // -o DIR ("" without); the model's name or the --from DIR
    FILE *npy;         // --from: DIR/attention.npy, at its data
    uint8_t *lmask, *hmask;
    cli_attn cap;      // the chosen heads' attention
    int T, L, H, n_files;
} maps_result;

static int maps_opt(void *p, const char *a, int argc, char **argv, int *i) {
    maps_opts *mo = p;
    const char *v;
    if (!strcmp(a, "--from")) return cli_opt_str(argc, argv, i, &mo->from);
    if (!strcmp(a, "--drop-first")) return mo->drop_first = 1;
    if (!strcmp(a, "--no-grid")) return mo->grid = 0, 1;
    if (!strcmp(a, "--term")) return mo->term = 1;
    if (!strcmp(a, "--annot") || !strcmp(a, "--no-annot")) return mo->annot = a[2] == 'a', 1;
    if (strcmp(a, "--scale")) return 0;
    return (v = cli_val(argc, argv, i)) && !cli_scale(v, &mo->scale) ? 1 : CLI_PRINTED;
}

static int maps_parse(int argc, char **argv, maps_opts *mo) {
    mo->o.select = 1, mo->scale = ATTN_SCALE_FIXED, mo->grid = 1, mo->annot = -1;
    cli_mem_init(&mo->o.mem, "maps");
    if (cli_parse_opts(&mo->o, argc, argv, maps_opt, mo)) return CLI_PRINTED;
    if (mo->o.help) return 0;
    for (const char *p = mo->o.format ? mo->o.format : "png"; *p;) {
        size_t l = strcspn(p, ",");
        if (l == 3 && !strncmp(p, "png", 3)) mo->png = 1;
        else if (l == 3 && !strncmp(p, "svg", 3)) mo->svg = 1;
        else {
            cli_error("maps: --format '%s': expected png, svg or png,svg", mo->o.format);
            return CLI_PRINTED;
        }
        p += l + (p[l] == ',');
    }
    if (!mo->o.out_dir && !mo->term) {
        cli_error("maps: no output directory: give -o DIR (or --term)");
        return CLI_PRINTED;
    }
    return 0;
}

// The tokens and the shape: from DIR (recorded attention, no model) or a model.
static int maps_load(const maps_opts *mo, maps_result *r) {
    int rc;
    if (mo->from) {
        int64_t d[4];
        char path[1100];
        snprintf(path, sizeof path, "%s/attention.npy", mo->from);
        if ((rc = npy4_open(path, d, &r->npy))) return rc;
        r->L = (int)d[0], r->H = (int)d[1], r->T = (int)d[2];
        snprintf(path, sizeof path, "%s/tokens.json", mo->from);
        snprintf(r->name, sizeof r->name, "%s", mo->from);
        return read_tokens_json(path, r->T, &r->labels, r->name, sizeof r->name);
    }
    if ((rc = cli_setup(&mo->o, &r->m, &r->pool, &r->ids, &r->T, &r->labels))) return rc;
    r->L = r->m->cfg.n_layer, r->H = r->m->cfg.n_head;
    snprintf(r->name, sizeof r->name, "%s", r->m->name);
    return 0;
}

// --from: the chosen heads of the recorded array, in the layout cli_attn_capture gives.
static int maps_read_from(maps_opts *mo, maps_result *r) {
    char what[160];
    size_t tt = (size_t)r->T * r->T;
    off_t data = ftello(r->npy);
    int rc;
    r->cap.T = r->T;
    if ((rc = select_heads(&r->cap, r->L, r->H, r->lmask, r->hmask))) return rc;
    snprintf(what, sizeof what, "%d heads of %d x %d attention from %s", r->cap.n_sel, r->T, r->T, mo->from);
    if ((rc = cli_buf_new(&mo->o.mem, &r->cap.buf, (size_t)r->cap.n_sel * tt, what))) return rc;
    for (int k = 0; k < r->cap.n_sel && !rc; k++)
        if (fseeko(r->npy, data + (off_t)(r->cap.sel[k] * tt * sizeof(float)), SEEK_SET) ||
            fread(r->cap.buf.p + k * tt, sizeof(float), tt, r->npy) != tt)
            rc = attn_err(ATTN_EINPUT, "%s/attention.npy: cannot read: %s", mo->from, strerror(errno ? errno : EIO));
    return rc;
}

static int maps_compute(maps_opts *mo, maps_result *r) {
    int rc = maps_load(mo, r), T = r->T;
    if (rc) return rc;
    r->lmask = malloc((size_t)r->L), r->hmask = malloc((size_t)r->H);
    if (!r->lmask || !r->hmask) return attn_err(ATTN_EFAIL, "out of memory");
    if (cli_select(&mo->o, r->L, r->H, r->lmask, r->hmask)) return CLI_PRINTED;
    if (mo->drop_first && T < 2) return attn_err(ATTN_EINPUT, "--drop-first needs at least 2 tokens");
    if (mo->o.out_dir && (rc = cli_out_dir(&mo->o, NULL, r->dir, sizeof r->dir))) return rc;
    if (r->dir[0]) mo->o.mem.dir = r->dir;
    if (mo->from) rc = maps_read_from(mo, r);
    else rc = cli_attn_capture(r->m, r->pool, r->ids, T, r->lmask, r->hmask, &mo->o.mem, &r->cap);
    // optionally without key 0 (in place: each head's block starts with its (T-1, T-1) map)
    if (!rc && mo->drop_first)
        for (int k = 0; k < r->cap.n_sel; k++)
            attn_drop_first(r->cap.buf.p + (size_t)k * T * T, T, r->cap.buf.p + (size_t)k * T * T);
    return rc;
}

typedef struct {
    int (*fill)(void *ctx, int k, cli_figure_item *it);
    void *ctx;
    const char *what, *dir;
    int png, svg, n, done, written, rc;
    char err[1024];
    pthread_mutex_t mu;
} figures_job;

static void figure_item(void *ctx, int k) {
    figures_job *j = ctx;
    cli_figure_item it;
    memset(&it, 0, sizeof it);
    pthread_mutex_lock(&j->mu);
    int stop = j->rc != 0;
    pthread_mutex_unlock(&j->mu);
    int rc = 0, wrote = !stop && j->fill(j->ctx, k, &it);
    if (wrote) rc = cli_write_figure(&it.f, j->dir, it.stem, j->png, j->svg);
    pthread_mutex_lock(&j->mu);
    if (rc && !j->rc) j->rc = rc, snprintf(j->err, sizeof j->err, "%s", attn_errmsg());
    j->written += wrote && !rc;
    cli_progress(j->what, ++j->done, j->n);
    pthread_mutex_unlock(&j->mu);
}

int cli_write_figures(attn_pool *pool, const char *what, int n, int (*fill)(void *ctx, int k, cli_figure_item *it),
                      void *ctx, const char *dir, int png, int svg, int *n_files) {
    figures_job j = { fill, ctx, what, dir, png, svg, n, 0, 0, 0, "", PTHREAD_MUTEX_INITIALIZER };
    cli_progress(what, 0, n);
    attn_pool_run(pool, n, figure_item, &j);
    *n_files += j.written;
    return j.rc ? attn_err(j.rc, "%s", j.err) : 0;
}

// Item k of maps' per-head figures: the k-th chosen head alone.
typedef struct { const maps_result *r; const attn_figure *f; } head_figures;

static int head_figure(void *ctx, int k, cli_figure_item *it) {
    const head_figures *hf = ctx;
    const maps_result *r = hf->r;
    int l = r->cap.sel[k] / r->H, h = r->cap.sel[k] % r->H;
    it->f = *hf->f;
    snprintf(it->title, sizeof it->title, "%s - layer %d, head %d", r->name, l, h);
    snprintf(it->stem, sizeof it->stem, "L%02d_H%02d", l, h);
    it->f.title = it->title, it->f.panels = &hf->f->panels[k], it->f.rows = it->f.cols = 1;
    return 1;
}

// One figure per chosen head, then the grid of them all, then --term.
static int maps_draw_all(const maps_opts *mo, maps_result *r, attn_figure *f, const char **rn, const char **cn) {
    int nl = f->rows, nh = f->cols;
    int n = r->cap.n_sel, H = r->H, grid = mo->grid, rc = 0;
    char title[320], note[200];
    snprintf(note, sizeof note, "%d tokens", r->T);
    f->note = note;
    head_figures hf = { r, f };
    if (r->dir[0]) rc = cli_write_figures(r->pool, "maps", n, head_figure, &hf, r->dir, mo->png, mo->svg, &r->n_files);
    f->rows = nl, f->cols = nh, f->row_names = rn, f->col_names = cn;
    snprintf(note, sizeof note, "%d tokens; one colour scale for every panel", r->T);
    if (n == 1) snprintf(title, sizeof title, "%s - layer %d, head %d", r->name, r->cap.sel[0] / H, r->cap.sel[0] % H);
    else snprintf(title, sizeof title, "%s - %d layer%s x %d head%s", r->name, nl, nl > 1 ? "s" : "", nh, nh > 1 ? "s" : "");
    f->title = title;
    if (!rc && r->dir[0] && grid && n > 1 && !(rc = cli_write_figure(f, r->dir, "grid", mo->png, mo->svg)))
        r->n_files++;
    if (!rc && mo->term) {
        char *text;
        size_t len;
        if (!(rc = attn_render_term(f, &text, &len))) {
            fwrite(text, 1, len, stdout);
            free(text);
        }
    }
    return rc;
}

// The panels and their row/column names; then the pictures.
static int draw_maps(const maps_opts *mo, maps_result *r) {
    int n = r->cap.n_sel, T = r->T, H = r->H, df = mo->drop_first, PT = df ? T - 1 : T, nl = 0, nh = 0, rc;
    for (int l = 0; l < r->L; l++) nl += r->lmask[l];
    for (int h = 0; h < H; h++) nh += r->hmask[h];
    attn_panel *panels = calloc((size_t)n, sizeof *panels);
    char (*rnames)[24] = calloc((size_t)nl, sizeof *rnames), (*cnames)[24] = calloc((size_t)nh, sizeof *cnames);
    const char **rn = calloc((size_t)nl, sizeof *rn), **cn = calloc((size_t)nh, sizeof *cn);
    if (!panels || !rnames || !cnames || !rn || !cn) rc = attn_err(ATTN_EFAIL, "out of memory");
    else {
        for (int k = 0; k < n; k++) { // --from has no model, so no window to draw
            panels[k].p = r->cap.buf.p + (size_t)k * T * T;
            panels[k].window = r->m ? attn_layer_window(&r->m->cfg, r->cap.sel[k] / H) : 0;
        }
        for (int l = 0, i = 0; l < r->L; l++)
            if (r->lmask[l]) snprintf(rnames[i], 24, "layer %d", l), rn[i] = rnames[i], i++;
        for (int h = 0, i = 0; h < H; h++)
            if (r->hmask[h]) snprintf(cnames[i], 24, "head %d", h), cn[i] = cnames[i], i++;
        attn_figure f = {.T = PT, .labels = (const char *const *)r->labels + df, .label0 = df, .scale = mo->scale,
                         .causal = 1, .drop_first = df, .rows = nl, .cols = nh,
                         .annot = mo->annot < 0 ? PT <= 16 : mo->annot, .panels = panels};
        rc = maps_draw_all(mo, r, &f, rn, cn);
    }
    free(panels), free(rnames), free(cnames), free(rn), free(cn);
    return rc;
}

// The pictures (or the terminal view), and where they went.
static int print_maps(maps_result *r, const maps_opts *mo) {
    int rc = draw_maps(mo, r);
    if (!rc && r->dir[0])
        cli_note("maps: wrote %d %s%s%s picture%s to %s", r->n_files, mo->png ? "PNG" : "", mo->png && mo->svg ? " + " : "",
                 mo->svg ? "SVG" : "", r->n_files == 1 ? "" : "s", r->dir);
    return rc;
}

static void maps_result_free(maps_result *r) {
    free(r->lmask), free(r->hmask);
    if (r->npy) fclose(r->npy);
    cli_attn_free(&r->cap);
    if (r->labels) attn_labels_free(r->labels, r->T);
    free(r->ids);
    attn_pool_free(r->pool);
    attn_model_free(r->m);
}

CLI_COMMAND(maps, maps, "heatmap images of chosen layers/heads, and a layer x head grid", MAPS_HELP);
