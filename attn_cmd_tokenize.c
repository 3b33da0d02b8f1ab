// attn_cmd_tokenize.c - CLI: `attn tokenize`, the ids and readable pieces of
// a text. Reads only the tokenizer of the GGUF file, so a vocabulary-only
// file (tools/convert.py --vocab-only) works as well as a model.
#include "attn.h"
#include "attn_cli.h"
#include <errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *HELP =
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

// --ids-only on text: one line of ids per line of text ("\n" ends a line).
static int ids_per_line(const attn_tokenizer *t, const char *text, size_t len, int bos) {
    for (size_t pos = 0; pos < len || (pos == 0 && len == 0);) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        int32_t *ids;
        int n, rc = attn_tokenize(t, text + pos, end - pos, bos, &ids, &n);
        if (rc) return rc;
        print_ids(ids, n);
        free(ids);
        pos = end + 1;
        if (!nl) break;
    }
    return 0;
}

static int ids_per_file_line(const attn_tokenizer *t, FILE *fp, int bos) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    errno = 0;
    while (!rc && (n = cli_getline(&line, &cap, fp, CLI_LINE_MAX)) >= 0) {
        if (n && line[n - 1] == '\n') n--;
        rc = ids_per_line(t, line, (size_t)n, bos);
        errno = 0;
    }
    if (!rc && n == -2) rc = ATTN_EINPUT; // message set by cli_getline
    if (!rc && errno == ENOMEM) rc = attn_err(ATTN_EFAIL, "tokenize: out of memory for a line of the input");
    if (!rc && ferror(fp)) rc = attn_err(ATTN_EINPUT, "tokenize: read error");
    free(line);
    return rc;
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

static int print_table(const attn_tokenizer *t, const char *name, const int32_t *ids, int n, const char *fmt) {
    char **labels;
    int rc = attn_token_labels(t, ids, n, &labels);
    if (rc) return rc;
    char (*pieces)[256] = malloc(((size_t)n + 1) * sizeof *pieces);
    if (!pieces) { attn_labels_free(labels, n); return attn_err(ATTN_EFAIL, "tokenize: out of memory"); }
    int wp = 5;
    for (int i = 0; i < n; i++) {
        piece_text(attn_token_piece(t, ids[i]), pieces[i], sizeof pieces[i]);
        int w = utf8_width(pieces[i]);
        wp = w > wp ? w : wp;
    }
    if (!strcmp(fmt, "json")) {
        printf("{\"model\": ");
        attn_json_str(stdout, name);
        printf(", \"n_tokens\": %d, \"tokens\": [", n);
        for (int i = 0; i < n; i++) {
            attn_gguf_str p = attn_token_piece(t, ids[i]);
            char raw[256];
            snprintf(raw, sizeof raw, "%.*s", (int)(p.len < 255 ? p.len : 255), p.s);
            printf("%s\n  {\"pos\": %d, \"id\": %d, \"piece\": ", i ? "," : "", i, (int)ids[i]);
            attn_json_str(stdout, raw);
            printf(", \"label\": ");
            attn_json_str(stdout, labels[i]);
            printf(", \"special\": %s}", attn_token_is_special(t, ids[i]) ? "true" : "false");
        }
        printf("\n]}\n");
    } else if (!strcmp(fmt, "tsv")) {
        printf("pos\tid\tpiece\tlabel\tspecial\n");
        for (int i = 0; i < n; i++)
            printf("%d\t%d\t%s\t%s\t%d\n", i, (int)ids[i], pieces[i], labels[i], attn_token_is_special(t, ids[i]));
    } else {
        printf("%5s  %7s  %-*s  %s\n", "pos", "id", wp, "piece", "label");
        for (int i = 0; i < n; i++)
            printf("%5d  %7d%s %s%*s  %s\n", i, (int)ids[i], attn_token_is_special(t, ids[i]) ? "*" : " ", pieces[i],
                   wp - utf8_width(pieces[i]), "", labels[i]);
    }
    free(pieces);
    attn_labels_free(labels, n);
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    int ids_only = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return cli_exit(CLI_PRINTED);
        if (r > 0) continue;
        if (!strcmp(argv[i], "--ids-only")) ids_only = 1;
        else return cli_bad_opt("tokenize", argv[i]);
    }
    if (o.help) {
        fputs(HELP, stdout);
        return 0;
    }
    const char *fmt;
    if (cli_format(&o, "table,tsv,json", &fmt)) return cli_exit(ATTN_EINPUT);
    int given = !!o.prompt + !!o.prompt_file + !!o.ids;
    if (given != 1) {
        return cli_exit(attn_err(ATTN_EINPUT, given ? "tokenize: give only one of -p TEXT, -f FILE, --ids 1,2,3"
                                                    : "tokenize: no text: give -p TEXT, -f FILE or --ids 1,2,3"));
    }
    tok_src s = {0};
    FILE *fp = NULL;
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    int n = 0, bos = !o.no_bos;
    int rc = open_tokenizer(&o, &s);
    if (!rc) attn_tokenizer_parse_special(s.tok, !o.no_special);
    if (!rc && o.prompt_file) {
        fp = strcmp(o.prompt_file, "-") ? fopen(o.prompt_file, "rb") : stdin;
        if (!fp) rc = attn_err(ATTN_EINPUT, "%s: cannot open", o.prompt_file);
    }
    if (rc) goto done;
    if (o.ids) {
        if (!(rc = parse_id_list(o.ids, &ids, &n))) {
            for (int i = 0; i < n && !rc; i++)
                if (ids[i] >= attn_tokenizer_n_vocab(s.tok))
                    rc = attn_err(ATTN_EINPUT, "token id %d is out of range (the vocabulary has %d ids)", (int)ids[i],
                                  attn_tokenizer_n_vocab(s.tok));
            if (!rc && ids_only) print_ids(ids, n);
        }
    } else if (ids_only) {
        rc = fp ? ids_per_file_line(s.tok, fp, bos) : ids_per_line(s.tok, o.prompt, strlen(o.prompt), bos);
    } else {
        if (fp) rc = read_text(fp, &text, &len);
        if (!rc) rc = attn_tokenize(s.tok, fp ? text : o.prompt, fp ? len : strlen(o.prompt), bos, &ids, &n);
    }
    if (!rc && !ids_only) rc = print_table(s.tok, o.n_models ? o.models[0] : "built-in", ids, n, fmt);
done:
    if (fp && fp != stdin) fclose(fp);
    free(text);
    free(ids);
    attn_tokenizer_free(s.tok);
    if (s.open) attn_gguf_close(&s.file);
    if (rc) return cli_exit(rc);
    return 0; // main() reports a failed write to stdout (exit 1)
}
