// attn_cmd_tokenize.c - CLI: `attn tokenize`, the ids and readable pieces of
// a text. Reads only the tokenizer of the GGUF file, so a vocabulary-only
// file (tools/convert.py --vocab-only) works as well as a model.
#include "attn.h"
#include "attn_cli.h"
#include <errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char TOKENIZE_HELP[] =
    "usage: attn tokenize [-m FILE] (-p TEXT | -f FILE | --ids 1,2,3) [options]\n\n"
    "The token ids of a text, with each token's vocabulary piece and readable label.\n"
    "  --ids-only   one output line per input line: its ids separated by one space,\n"
    "               exactly what the model is fed (BOS included where the model\n"
    "               adds it)\n"
    "  --no-bos     leave BOS out\n"
    "  --no-special special-token text (<|endoftext|>, <s>) stays plain text;\n"
    "               by default it becomes the token\n"
    "  --format table|tsv|json   (default table: position, id, piece, label)\n"
    "Special tokens (control, user-defined, unknown) are marked: * after the id in\n"
    "the table, special 1 in tsv, \"special\": true in json.\n"
    "  -f -         read the text from stdin\n\n"
    "Labels show a space as \"\xC2\xB7\", controls escaped (\\n, \\t, \\x1b), a character\n"
    "split over byte tokens on its first token, the others as \"\xE2\x80\xA6\".\n";

typedef struct {
    attn_gguf_file file;
    attn_tokenizer *tok;
    int open;
} tok_src;

// The tokenizer of -m FILE (or of the built-in model), without the weights.
static int open_tokenizer(const cli_opts *o, tok_src *s) {
    int rc;
    if (o->n_models > 1) return attn_err(ATTN_EINPUT, "tokenize: give one model (-m FILE), not %d", o->n_models);
    if (o->n_models) rc = attn_gguf_open(&s->file, o->models[0]);
    else {
        size_t n;
        const void *data = attn_builtin_data(&n);
        if (!data) return attn_err(ATTN_EINPUT, "no model: this build has no built-in model; give one with -m FILE.gguf");
        rc = attn_gguf_open_mem(&s->file, data, n, "built-in");
    }
    if (rc) return rc;
    s->open = 1;
    const attn_gguf_tensor *emb = attn_gguf_find_tensor(&s->file, "token_embd.weight");
    int n_vocab = emb && emb->n_dims == 2 && emb->ne[1] < (1 << 24) ? (int)emb->ne[1] : 0;
    return attn_tokenizer_load(&s->tok, &s->file, n_vocab);
}

static void print_ids(const int32_t *ids, int n) {
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    putchar('\n');
}

// The whole of fp, its final newline dropped (as for every command's -f).
static int read_text(FILE *fp, char **text, size_t *len) {
    char *buf = NULL;
    size_t n = 0, cap = 0, k;
    do {
        if (cap - n < 2) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 1 << 16);
            if (!nb) { free(buf); return attn_err(ATTN_EFAIL, "tokenize: out of memory for the input"); }
            buf = nb;
        }
        n += k = fread(buf + n, 1, cap - n - 1, fp);
        if (n > CLI_TEXT_MAX) {
            free(buf);
            return attn_err(ATTN_EINPUT, "tokenize: the input is more than %zu MB (the limit)", CLI_TEXT_MAX >> 20);
        }
    } while (k > 0);
    if (ferror(fp)) { free(buf); return attn_err(ATTN_EINPUT, "tokenize: read error"); }
    if (n && buf[n - 1] == '\n') n--;
    buf[n] = 0;
    *text = buf;
    *len = n;
    return 0;
}

static int parse_id_list(const char *s, int32_t **ids, int *n) {
    int32_t *v = malloc((strlen(s) / 2 + 1) * sizeof *v); // at most one id per two characters
    if (!v) return attn_err(ATTN_EFAIL, "tokenize: out of memory");
    int k = 0;
    for (const char *p = s; *p;) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 0 || x > INT32_MAX) {
            free(v);
            return attn_err(ATTN_EINPUT, "--ids: '%s' is not a comma-separated list of token ids", s);
        }
        v[k++] = (int32_t)x;
        for (p = end; *p == ',' || *p == ' ';) p++;
    }
    *ids = v;
    *n = k;
    return 0;
}

// A vocabulary piece for display: controls escaped, the rest as stored.
static void piece_text(attn_gguf_str p, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < p.len && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)p.s[i];
        if (c == '\n') o += (size_t)snprintf(out + o, cap - o, "\\n");
        else if (c == '\t') o += (size_t)snprintf(out + o, cap - o, "\\t");
        else if (c == '\r') o += (size_t)snprintf(out + o, cap - o, "\\r");
        else if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    out[o] = 0;
}

static int utf8_width(const char *s) { // code points, for column alignment
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

// ---- options -> result -> print; --ids-only streams: one line of the
// input computed and printed at a time (compute returns CLI_MORE), so a
// large -f FILE takes the memory of one line.

typedef struct {
    cli_opts o;
    const char *fmt; // table, tsv or json
    int ids_only;    // --ids-only
} tokenize_opts;

typedef struct {
    tok_src src;
    FILE *fp;                   // -f input (NULL: -p TEXT or --ids)
    int started, done;          // the input is open; --ids-only: no line left
    char *text;                 // -f FILE, the table: the whole text
    char *line;                 // --ids-only -f: the current line
    size_t cap, pos;            // line's capacity; --ids-only -p: where the next line starts
    int32_t *ids;               // the current part: its ids, n of them (-1: nothing to print)
    int n;
    char **labels;              // the table: display label and
    char (*pieces)[256];        // vocabulary piece of each token,
    int wp;                     // the width of the piece column
} tokenize_result;

static int tokenize_opt(void *p, const char *a, int argc, char **argv, int *i) {
    (void)argc, (void)argv, (void)i;
    return strcmp(a, "--ids-only") ? 0 : (((tokenize_opts *)p)->ids_only = 1);
}

static int tokenize_parse(int argc, char **argv, tokenize_opts *to) {
    if (cli_parse_opts(&to->o, argc, argv, tokenize_opt, to)) return CLI_PRINTED;
    if (to->o.help) return 0;
    if (cli_format(&to->o, "table,tsv,json", &to->fmt)) return ATTN_EINPUT;
    int given = !!to->o.prompt + !!to->o.prompt_file + !!to->o.ids;
    if (given != 1)
        return attn_err(ATTN_EINPUT, given ? "tokenize: give only one of -p TEXT, -f FILE, --ids 1,2,3"
                                           : "tokenize: no text: give -p TEXT, -f FILE or --ids 1,2,3");
    return 0;
}

// --ids 1,2,3: the ids as given, each checked against the vocabulary.
static int tokenize_id_list(const tokenize_opts *to, tokenize_result *r) {
    int rc = parse_id_list(to->o.ids, &r->ids, &r->n);
    for (int i = 0; !rc && i < r->n; i++)
        if (r->ids[i] >= attn_tokenizer_n_vocab(r->src.tok))
            rc = attn_err(ATTN_EINPUT, "token id %d is out of range (the vocabulary has %d ids)", (int)r->ids[i],
                          attn_tokenizer_n_vocab(r->src.tok));
    return rc;
}

// The next line of the --ids-only input (-f: a line of the file, its
// newline dropped; -p: up to the next "\n") into *s, *len; *s = NULL at the end.
static int next_line(const tokenize_opts *to, tokenize_result *r, const char **s, size_t *len) {
    *s = NULL;
    if (r->fp) {
        errno = 0;
        ssize_t n = cli_getline(&r->line, &r->cap, r->fp, CLI_LINE_MAX);
        if (n == -2) return ATTN_EINPUT; // message set by cli_getline
        if (n >= 0) {
            if (n && r->line[n - 1] == '\n') n--;
            *s = r->line, *len = (size_t)n;
            return 0;
        }
        if (errno == ENOMEM) return attn_err(ATTN_EFAIL, "tokenize: out of memory for a line of the input");
        if (ferror(r->fp)) return attn_err(ATTN_EINPUT, "tokenize: read error");
        return 0;
    }
    const char *text = to->o.prompt;
    size_t all = strlen(text);
    if (r->done || !(r->pos < all || (r->pos == 0 && all == 0))) return 0;
    const char *nl = memchr(text + r->pos, '\n', all - r->pos);
    size_t end = nl ? (size_t)(nl - text) : all;
    *s = text + r->pos, *len = end - r->pos;
    r->pos = end + 1;
    r->done = !nl;
    return 0;
}

// --ids-only: the ids of the next line (CLI_MORE), or the end (0, n = -1).
static int tokenize_next(const tokenize_opts *to, tokenize_result *r) {
    const char *s;
    size_t len;
    free(r->ids);
    r->ids = NULL;
    r->n = -1;
    int rc = next_line(to, r, &s, &len);
    if (rc || !s) return rc;
    rc = attn_tokenize(r->src.tok, s, len, !to->o.no_bos, &r->ids, &r->n);
    return rc ? rc : CLI_MORE;
}

// The table's columns: each token's label and displayed piece.
static int tokenize_columns(tokenize_result *r) {
    int rc = attn_token_labels(r->src.tok, r->ids, r->n, &r->labels);
    if (rc) return rc;
    r->pieces = malloc(((size_t)r->n + 1) * sizeof *r->pieces);
    if (!r->pieces) return attn_err(ATTN_EFAIL, "tokenize: out of memory");
    r->wp = 5;
    for (int i = 0; i < r->n; i++) {
        piece_text(attn_token_piece(r->src.tok, r->ids[i]), r->pieces[i], sizeof r->pieces[i]);
        int w = utf8_width(r->pieces[i]);
        r->wp = w > r->wp ? w : r->wp;
    }
    return 0;
}

// Open the tokenizer and the input, the first time.
static int tokenize_open(const tokenize_opts *to, tokenize_result *r) {
    const cli_opts *o = &to->o;
    r->started = 1;
    int rc = open_tokenizer(o, &r->src);
    if (rc) return rc;
    attn_tokenizer_parse_special(r->src.tok, !o->no_special);
    if (o->prompt_file) {
        r->fp = strcmp(o->prompt_file, "-") ? fopen(o->prompt_file, "rb") : stdin;
        if (!r->fp) return attn_err(ATTN_EINPUT, "%s: cannot open", o->prompt_file);
    }
    return 0;
}

// --ids, or the whole text for the table: one part; --ids-only on text:
// one line at a time (CLI_MORE while lines remain).
static int tokenize_compute(const tokenize_opts *to, tokenize_result *r) {
    const cli_opts *o = &to->o;
    int rc;
    if (r->started) return tokenize_next(to, r);
    if ((rc = tokenize_open(to, r))) return rc;
    if (o->ids) {
        rc = tokenize_id_list(to, r);
        return rc || to->ids_only ? rc : tokenize_columns(r);
    }
    if (to->ids_only) return tokenize_next(to, r);
    size_t len = o->prompt ? strlen(o->prompt) : 0;
    if (r->fp && (rc = read_text(r->fp, &r->text, &len))) return rc;
    rc = attn_tokenize(r->src.tok, r->fp ? r->text : o->prompt, len, !o->no_bos, &r->ids, &r->n);
    return rc ? rc : tokenize_columns(r);
}

// Token i's row: position, id, piece, label, special.
static void tokenize_row(const tokenize_result *r, const char *fmt, int i) {
    const attn_tokenizer *t = r->src.tok;
    int special = attn_token_is_special(t, r->ids[i]);
    if (!strcmp(fmt, "json")) {
        attn_gguf_str p = attn_token_piece(t, r->ids[i]);
        char raw[256];
        snprintf(raw, sizeof raw, "%.*s", (int)(p.len < 255 ? p.len : 255), p.s);
        printf("%s\n  {\"pos\": %d, \"id\": %d, \"piece\": ", i ? "," : "", i, (int)r->ids[i]);
        attn_json_str(stdout, raw);
        printf(", \"label\": ");
        attn_json_str(stdout, r->labels[i]);
        printf(", \"special\": %s}", special ? "true" : "false");
    } else if (!strcmp(fmt, "tsv"))
        printf("%d\t%d\t%s\t%s\t%d\n", i, (int)r->ids[i], r->pieces[i], r->labels[i], special);
    else
        printf("%5d  %7d%s %s%*s  %s\n", i, (int)r->ids[i], special ? "*" : " ", r->pieces[i],
               r->wp - utf8_width(r->pieces[i]), "", r->labels[i]);
}

static int print_tokenize(const tokenize_result *r, const tokenize_opts *to) {
    const char *fmt = to->fmt;
    if (to->ids_only) {
        if (r->n >= 0) print_ids(r->ids, r->n);
        return 0;
    }
    if (!strcmp(fmt, "json")) {
        cli_json_open_model(to->o.n_models ? to->o.models[0] : "built-in");
        printf(", \"n_tokens\": %d, \"tokens\": [", r->n);
    } else if (!strcmp(fmt, "tsv")) printf("pos\tid\tpiece\tlabel\tspecial\n");
    else printf("%5s  %7s  %-*s  %s\n", "pos", "id", r->wp, "piece", "label");
    for (int i = 0; i < r->n; i++) tokenize_row(r, fmt, i);
    if (!strcmp(fmt, "json")) printf("\n]}\n");
    return 0;
}

static void tokenize_result_free(tokenize_result *r) {
    if (r->fp && r->fp != stdin) fclose(r->fp);
    free(r->text);
    free(r->line);
    free(r->ids);
    free(r->pieces);
    if (r->labels) attn_labels_free(r->labels, r->n);
    attn_tokenizer_free(r->src.tok);
    if (r->src.open) attn_gguf_close(&r->src.file);
}

CLI_COMMAND(tokenize, tokenize, "ids and readable pieces of a text", TOKENIZE_HELP);
