// attn_cli.c - the helpers every command shares (declared in attn_cli.h):
// the driver that runs a command's parse, compute and print, error lines
// and the one error exit, option syntax (common options, --opt=value,
// an option given twice), reading prompts and inputs, model/pool/output-dir
// set-up, display width and progress.
#include "attn.h"
#include "attn_cli.h"
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// ---------------------------------------------------------------- CLI helpers

void cli_opts_init(cli_opts *o) { memset(o, 0, sizeof *o); }

// "attn: " + the message, control characters escaped, + newline: built in
// one buffer and written at once (stderr is unbuffered: a write per byte).
static void cli_vline(const char *fmt, va_list ap) {
    char msg[2048], line[sizeof msg * 4 + 8];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = (size_t)snprintf(line, sizeof line, "attn: ");
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p == '\n') n += (size_t)snprintf(line + n, sizeof line - n, "\\n");
        else if (*p == '\t') n += (size_t)snprintf(line + n, sizeof line - n, "\\t");
        else if (*p < 0x20 || *p == 0x7f) n += (size_t)snprintf(line + n, sizeof line - n, "\\x%02x", *p);
        else line[n++] = (char)*p;
    }
    line[n++] = '\n';
    fwrite(line, 1, n, stderr);
}

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cli_vline(fmt, ap);
    va_end(ap);
}

void cli_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cli_vline(fmt, ap);
    va_end(ap);
}

void cli_json_num(const char *key, const char *fmt, double v) {
    printf(", \"%s\": ", key);
    attn_json_numf(stdout, fmt, v);
}

void cli_json_open_model(const char *name) {
    printf("{\"model\": ");
    attn_json_str(stdout, name);
}

void cli_json_candidate(int first, int id, const char *text, double prob, double logit) {
    printf("%s{\"id\": %d, \"text\": ", first ? "" : ", ", id);
    attn_json_str(stdout, text);
    cli_json_num("prob", "%.6g", prob);
    cli_json_num("logit", "%.6g", logit);
    printf("}");
}

int cli_exit(int rc) {
    if (rc == 0) return 0;
    if (rc != CLI_PRINTED) cli_error("%s", attn_errmsg());
    return rc == ATTN_EINPUT || rc == CLI_PRINTED ? 2 : 1;
}

int cli_run_command(const cli_command *c, int argc, char **argv) {
    void *opts = calloc(1, c->opts_size), *res = calloc(1, c->result_size);
    int rc = opts && res ? c->parse(argc, argv, opts) : attn_err(ATTN_EFAIL, "out of memory");
    if (!rc && ((cli_opts *)opts)->help) { // (cli_opts is the first member)
        fputs(c->help, stdout);
        fputs("\nEvery command also takes -t N (threads, default: all online cores) and\n"
              "--exact (matmuls and attention scores summed in double, bit for bit as on\n"
              "the scalar path; prefill 2-3x slower on AVX-512). See attn --help.\n", stdout);
    } else {
        while (!rc && (rc = c->compute(opts, res)) == CLI_MORE) rc = c->print(res, opts);
        if (!rc) rc = c->print(res, opts);
    }
    if (res) c->free(res);
    free(res);
    free(opts);
    return cli_exit(rc);
}

// Terminal columns of one code point: 0 for combining marks, 2 for East Asian
// wide ranges (Hangul, CJK, fullwidth forms, common emoji), else 1.
static int cp_width(uint32_t c) {
    if ((c >= 0x300 && c <= 0x36F) || (c >= 0x200B && c <= 0x200F) || (c >= 0xFE00 && c <= 0xFE0F)) return 0;
    if ((c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0xA4CF && c != 0x303F) || (c >= 0xAC00 && c <= 0xD7A3) ||
        (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
        (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1F64F) || (c >= 0x1F900 && c <= 0x1F9FF) ||
        (c >= 0x20000 && c <= 0x3FFFD))
        return 2;
    return 1;
}

int cli_display_width(const char *s) {
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        uint32_t c;
        int n = attn_utf8_decode(p, strnlen((const char *)p, 4), &c);
        w += n > 0 ? cp_width(c) : 1; // a byte that starts no character: one column
        p += n > 0 ? n : 1;
    }
    return w;
}

void cli_print_padded(const char *s, int w) {
    int d = cli_display_width(s);
    printf("%s%*s", s, d < w ? w - d : 0, "");
}

void cli_quote(char *out, size_t n, const char *label) {
    size_t o = 0;
    if (n < 3) { if (n) *out = 0; return; }
    out[o++] = '"';
    for (const char *p = label; *p && o + 3 < n; p++) {
        if (*p == '"') out[o++] = '\\';
        out[o++] = *p;
    }
    out[o++] = '"';
    out[o] = 0;
}

int cli_bad_opt(const char *cmd, const char *opt) {
    cli_error("%s: unknown option '%s' (see attn %s --help)", cmd, opt, cmd);
    return 2;
}

const char *cli_val(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_error("option '%s' needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_int(const char *opt, const char *val, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi) {
        cli_error("%s: '%s' is not an integer in [%ld, %ld]", opt, val, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_common_opt(cli_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    long n;
#define VAL() do { if (!(v = cli_val(argc, argv, i))) return -1; } while (0)
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { o->help = 1; return 1; }
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        VAL();
        if (o->n_models == CLI_MAX_MODELS) {
            cli_error("at most %d models", CLI_MAX_MODELS);
            return -1;
        }
        o->models[o->n_models++] = v;
        return 1;
    }
    if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { VAL(); o->prompt = v; return 1; }
    if (!strcmp(a, "-f") || !strcmp(a, "--file")) { VAL(); o->prompt_file = v; return 1; }
    if (!strcmp(a, "--ids")) { VAL(); o->ids = v; return 1; }
    if (!strcmp(a, "--no-bos")) { o->no_bos = 1; return 1; }
    if (!strcmp(a, "--no-special")) { o->no_special = 1; return 1; }
    if (!strcmp(a, "--exact")) { o->exact = 1; return 1; }
    if (!strcmp(a, "-o") || !strcmp(a, "--out")) { VAL(); o->out_dir = v; return 1; }
    if (!strcmp(a, "--format")) { VAL(); o->format = v; return 1; }
    if ((!strcmp(a, "--layers") || !strcmp(a, "--heads")) && o->select) {
        VAL();
        *(a[2] == 'l' ? &o->layers : &o->heads) = v;
        return 1;
    }
    if (!strcmp(a, "--max-mem") && o->mem.cmd) {
        VAL();
        if (cli_int(a, v, 0, 1L << 30, &n)) return -1;
        o->mem.max_mem = n * 1e6;
        return 1;
    }
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        VAL();
        if (cli_int(a, v, 1, 1024, &n)) return -1;
        o->threads = (int)n;
        return 1;
    }
#undef VAL
    return 0;
}

int cli_parse_opts(cli_opts *o, int argc, char **argv, cli_own_opt own, void *opts) {
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(o, argc, argv, &i);
        if (r == 0) r = own ? own(opts, argv[i], argc, argv, &i) : 0;
        if (r == 0) cli_bad_opt(argv[0], argv[i]);
        if (r <= 0) return CLI_PRINTED;
    }
    return 0;
}

int cli_opt_str(int argc, char **argv, int *i, const char **out) {
    return (*out = cli_val(argc, argv, i)) ? 1 : CLI_PRINTED;
}

int cli_opt_int(int argc, char **argv, int *i, long lo, long hi, long *out) {
    const char *opt = argv[*i], *v = cli_val(argc, argv, i);
    return v && !cli_int(opt, v, lo, hi, out) ? 1 : CLI_PRINTED;
}

int cli_format(const cli_opts *o, const char *allowed, const char **fmt) {
    const char *f = o->format ? o->format : "table";
    size_t n = strlen(f);
    for (const char *p = allowed; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, f, n)) { *fmt = f; return 0; }
        p += l + (e ? 1 : 0);
    }
    return attn_err(ATTN_EINPUT, "--format %s: expected one of %s", f, allowed);
}

int cli_load_model(const cli_opts *o, int k, attn_model **out) {
    if (o->exact) attn_simd_exact(1);
    if (k < o->n_models) return attn_model_load(out, o->models[k]);
    size_t n;
    const void *data = attn_builtin_data(&n);
    if (!data) return attn_err(ATTN_EINPUT, "no model: this build has no built-in model; give one with -m FILE.gguf");
    return attn_model_load_mem(out, data, n, "built-in");
}

// Whole file (or stdin for "-") into a malloc'ed NUL-terminated buffer, at
// most max bytes: an endless input (/dev/zero, a FIFO that never ends) stops
// there with an error, in bounded memory.
int cli_read_input(const char *path, size_t max, char **buf, size_t *len) {
    FILE *fp = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!fp) return attn_err(ATTN_EINPUT, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n - 1, fp)) > 0;) {
        n += r;
        if (n > max) {
            free(b);
            if (fp != stdin) fclose(fp);
            return attn_err(ATTN_EINPUT, "%s: more than %zu MB (the limit of this input)", path, max >> 20);
        }
        if (cap - n - 1 == 0) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    int bad = ferror(fp);
    if (fp != stdin) fclose(fp);
    if (!b) return attn_err(ATTN_EFAIL, "%s: out of memory", path);
    if (bad) { free(b); return attn_err(ATTN_EINPUT, "%s: read error: %s", path, strerror(errno)); }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

ssize_t cli_getline(char **line, size_t *cap, FILE *fp, size_t max) {
    size_t n = 0;
    int ch = 0;
    while (ch != '\n' && (ch = getc_unlocked(fp)) != EOF) {
        if (n + 2 > *cap || !*line) {
            size_t nc = *line && *cap ? *cap * 2 : 4096;
            char *nl = realloc(*line, nc);
            if (!nl) return attn_err(ATTN_EFAIL, "out of memory for a line"), -2;
            *line = nl, *cap = nc;
        }
        (*line)[n++] = (char)ch;
        if (n > max) return attn_err(ATTN_EINPUT, "a line of more than %zu MB (the limit)", max >> 20), -2;
    }
    if (*line) (*line)[n] = 0;
    return n ? (ssize_t)n : -1;
}

static int parse_ids(const char *s, int32_t **ids, int *n) {
    int cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return attn_err(ATTN_EFAIL, "out of memory");
    for (const char *p = s; *p;) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX) {
            free(v);
            return attn_err(ATTN_EINPUT, "--ids: '%s' is not a comma-separated list of token ids", s);
        }
        if (k == cap) {
            int32_t *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) { free(v); return attn_err(ATTN_EFAIL, "out of memory"); }
            v = nv;
        }
        v[k++] = (int32_t)x;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') { // one comma between ids: "1,,2" and "1," are refused
            p++;
            while (*p == ' ') p++;
            if (!*p || *p == ',') { free(v); return attn_err(ATTN_EINPUT, "--ids: '%s' has an empty item (two commas, or one at the end)", s); }
        } else if (*p) {
            free(v);
            return attn_err(ATTN_EINPUT, "--ids: '%s' is not a comma-separated list of token ids", s);
        }
    }
    *ids = v;
    *n = k;
    return 0;
}

int cli_prompt_ids(const cli_opts *o, const attn_model *m, int32_t **ids, int *n) {
    int given = !!o->prompt + !!o->prompt_file + !!o->ids, rc;
    *ids = NULL;
    if (given != 1)
        return attn_err(ATTN_EINPUT, given ? "give only one of -p TEXT, -f FILE, --ids 1,2,3" : "no prompt: give -p TEXT, -f FILE or --ids 1,2,3");
    if (o->ids) rc = parse_ids(o->ids, ids, n);
    else {
        if (attn_tokenizer_kind(m->tok) == ATTN_TOK_NONE)
            return attn_err(ATTN_EINPUT, "%s has no tokenizer (ids-only model): give the prompt as --ids 1,2,3", m->name);
        char *text = (char *)o->prompt;
        size_t len = text ? strlen(text) : 0;
        if (o->prompt_file) {
            if ((rc = cli_read_input(o->prompt_file, CLI_TEXT_MAX, &text, &len))) return rc;
            if (len && text[len - 1] == '\n') len--; // a file's final newline is not part of the prompt
        }
        attn_tokenizer_parse_special(m->tok, !o->no_special);
        rc = attn_tokenize(m->tok, text, len, !o->no_bos, ids, n);
        if (o->prompt_file) free(text);
    }
    if (rc) return rc;
    if (*n == 0) rc = attn_err(ATTN_EINPUT, "the prompt is empty");
    else if (*n > m->cfg.n_ctx)
        rc = attn_err(ATTN_EINPUT, "the prompt is %d tokens, longer than the model's context of %d", *n, m->cfg.n_ctx);
    for (int i = 0; !rc && i < *n; i++)
        if ((*ids)[i] < 0 || (*ids)[i] >= m->cfg.n_vocab)
            rc = attn_err(ATTN_EINPUT, "token id %d is out of range (the vocabulary has %d ids: 0..%d)",
                          (*ids)[i], m->cfg.n_vocab, m->cfg.n_vocab - 1);
    if (rc) { free(*ids); *ids = NULL; }
    return rc;
}

int cli_lines_open(cli_lines *it, const cli_opts *o, const attn_model *m, int count_total) {
    memset(it, 0, sizeof *it);
    it->o = o;
    it->m = m;
    int is_stdin = !strcmp(o->prompt_file, "-");
    it->fp = is_stdin ? stdin : fopen(o->prompt_file, "rb");
    if (!it->fp) return attn_err(ATTN_EINPUT, "%s: %s", o->prompt_file, strerror(errno));
    // count the lines first (a file, not a pipe) so progress can show a total
    struct stat sb;
    if (count_total && !is_stdin && !fstat(fileno(it->fp), &sb) && S_ISREG(sb.st_mode)) {
        int ch, last = '\n';
        while ((ch = getc(it->fp)) != EOF) {
            it->total += ch == '\n';
            last = ch;
        }
        it->total += last != '\n';
        rewind(it->fp);
    }
    return 0;
}

int cli_lines_fail(cli_lines *it, int rc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", attn_errmsg());
    return attn_err(rc, "%s line %ld: %s", it->o->prompt_file, it->lineno, msg);
}

int cli_lines_next(cli_lines *it, int32_t **ids, int *T) {
    ssize_t len;
    *ids = NULL;
    *T = 0;
    while ((len = cli_getline(&it->line, &it->cap, it->fp, CLI_LINE_MAX)) >= 0) {
        it->lineno++;
        while (len > 0 && (it->line[len - 1] == '\n' || it->line[len - 1] == '\r')) it->line[--len] = 0;
        if (len == 0) {
            it->n_empty++;
            continue;
        }
        cli_opts lo = *it->o;
        lo.prompt_file = NULL;
        lo.ids = NULL;
        lo.prompt = it->line;
        int rc = cli_prompt_ids(&lo, it->m, ids, T);
        return rc ? cli_lines_fail(it, rc) : 0;
    }
    if (len == -2) { // a line past CLI_LINE_MAX (message set)
        it->lineno++;
        return cli_lines_fail(it, ATTN_EINPUT);
    }
    return 0;
}

int cli_lines_close(cli_lines *it, int rc) {
    if (!rc && it->fp && ferror(it->fp)) rc = attn_err(ATTN_EINPUT, "%s: read error", it->o->prompt_file);
    if (it->fp && it->fp != stdin) fclose(it->fp);
    free(it->line);
    it->fp = NULL;
    it->line = NULL;
    return rc;
}

int cli_pool(const cli_opts *o, attn_pool **out) { return attn_pool_new(out, o->threads); }

int cli_setup(const cli_opts *o, attn_model **m, attn_pool **pool, int32_t **ids, int *T, char ***labels) {
    int rc = cli_load_model(o, 0, m);
    if (!rc && ids) rc = cli_prompt_ids(o, *m, ids, T);
    if (!rc) rc = cli_pool(o, pool);
    if (!rc && labels) rc = attn_token_labels((*m)->tok, *ids, *T, labels);
    return rc;
}

int cli_out_dir(const cli_opts *o, const char *dflt, char *dir, size_t n) {
    const char *d = o->out_dir ? o->out_dir : dflt;
    if (!d) return attn_err(ATTN_EINPUT, "no output directory: give -o DIR");
    if (strlen(d) >= n) return attn_err(ATTN_EINPUT, "%s: path too long", d);
    snprintf(dir, n, "%s", d);
    return attn_mkdirs(dir);
}

void cli_progress(const char *what, long done, long total) {
    static time_t start;
    static int shown;
    static int enabled = -1;
    if (enabled < 0) {
        const char *e = getenv("ATTN_PROGRESS");
        enabled = e ? atoi(e) != 0 : isatty(2);
    }
    if (!enabled) return;
    time_t now = time(NULL);
    if (done == 0) { start = now; shown = 0; }
    if (now - start < 1 && done < total) return;
    if (done >= total) {
        if (shown) fprintf(stderr, "\r%s: %ld/%ld done\n", what, done, total);
        return;
    }
    shown = 1;
    fprintf(stderr, "\r%s: %ld/%ld", what, done, total);
}

// ---------------------------------------------------------------- option syntax

// Options that take a value (their next argument is never an option name);
// -m is the one option that may be given more than once (compare).
static const char *const VALUED[] = { "-p", "--prompt", "-f", "--file", "--ids", "-o", "--out", "-m", "--model",
                                      "--format", "-t", "--threads", NULL };
static const char *const ALIASES[][2] = { { "-p", "--prompt" }, { "-f", "--file" }, { "-o", "--out" },
                                          { "-t", "--threads" }, { "-h", "--help" } };

static int in_list(const char *const *l, const char *a) {
    for (; *l; l++)
        if (!strcmp(*l, a)) return 1;
    return 0;
}

static const char *canonical_opt(const char *a) {
    for (size_t k = 0; k < sizeof ALIASES / sizeof ALIASES[0]; k++)
        if (!strcmp(a, ALIASES[k][0])) return ALIASES[k][1];
    return a;
}

// An option name: -x or --word (not a negative number, not a lone "-").
static int is_opt(const char *a) {
    return a[0] == '-' && (isalpha((unsigned char)a[1]) || (a[1] == '-' && isalpha((unsigned char)a[2])));
}

// One home for the syntax every command shares: "--opt=value" becomes
// "--opt" "value", and an option given twice is refused (only -m repeats).
// argv[0] (the command) is kept; *out is malloc'ed; returns the new argc or -1.
int cli_split_args(int argc, char **argv, char ***out) {
    char **a = malloc(((size_t)argc * 2 + 1) * sizeof *a);
    if (!a) { cli_error("out of memory"); return -1; }
    int n = 0;
    for (int i = 0; i < argc; i++) {
        char *eq = argv[i][0] == '-' && argv[i][1] == '-' && i > 0 && !in_list(VALUED, argv[i - 1])
                   ? strchr(argv[i], '=') : NULL;
        if (eq && eq > argv[i] + 2) {
            *eq = 0; // argv strings are ours to modify
            a[n++] = argv[i];
            a[n++] = eq + 1;
        } else a[n++] = argv[i];
    }
    a[n] = NULL;
    for (int i = 1; i < n; i++) {
        if (!is_opt(a[i]) || (i > 1 && in_list(VALUED, a[i - 1]) && is_opt(a[i - 1]))) continue;
        if (!strcmp(a[i], "-m") || !strcmp(a[i], "--model")) continue;
        for (int j = 1; j < i; j++)
            if (is_opt(a[j]) && !(j > 1 && in_list(VALUED, a[j - 1])) && !strcmp(canonical_opt(a[j]), canonical_opt(a[i]))) {
                cli_error("%s: option '%s' given twice (give it once)", argv[0], a[i]);
                free(a);
                return -1;
            }
    }
    *out = a;
    return n;
}
