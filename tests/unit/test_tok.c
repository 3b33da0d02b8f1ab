// tests/unit/test_tok.c - tokenizers (attn_tok.c).
//
// Without arguments: unit tests on tiny vocabularies built in memory (GPT-2
// pre-tokenizer rules and merges, SentencePiece scores, byte fallback and
// word splitting, char and ids-only vocabularies, labels, invalid UTF-8, errors).
// With arguments (tests/tok/t_tok.sh converts ../shared/models with tools/convert.py):
//   test_tok DATA_DIR gpt2=FILE llama=FILE llama2c=FILE
// parity with the references' goldens in DATA_DIR (tools/gen_tok_goldens.py):
// ids for every corpus line, round trips, sentencepiece on invalid UTF-8 and
// its decode of odd id sequences.
#include "attn.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

// ---------------------------------------------------------------- GGUF in memory

typedef struct { uint8_t *p; size_t n, cap; int n_kv; } gbuf;

static void put(gbuf *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 1024;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void put_u32(gbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(gbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(gbuf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void key(gbuf *b, const char *k, uint32_t type) { put_str(b, k); put_u32(b, type); b->n_kv++; }
static void kv_str(gbuf *b, const char *k, const char *v) { key(b, k, GGUF_STRING); put_str(b, v); }
static void kv_u32(gbuf *b, const char *k, uint32_t v) { key(b, k, GGUF_U32); put_u32(b, v); }
static void kv_bool(gbuf *b, const char *k, int v) { key(b, k, GGUF_BOOL); uint8_t c = (uint8_t)v; put(b, &c, 1); }
static void kv_strs(gbuf *b, const char *k, char **v, int n) {
    key(b, k, GGUF_ARRAY);
    put_u32(b, GGUF_STRING);
    put_u64(b, (uint64_t)n);
    for (int i = 0; i < n; i++) put_str(b, v[i]);
}
static void kv_nums(gbuf *b, const char *k, uint32_t type, const void *v, int n) { // 4-byte elements
    key(b, k, GGUF_ARRAY);
    put_u32(b, type);
    put_u64(b, (uint64_t)n);
    put(b, v, (size_t)n * 4);
}

// The file: header, then the key/values written into body.
static uint8_t *attn_gguf_bytes(gbuf *body, size_t *size) {
    gbuf h = {0};
    put(&h, "GGUF", 4);
    put_u32(&h, 3);
    put_u64(&h, 0);
    put_u64(&h, (uint64_t)body->n_kv);
    put(&h, body->p, body->n);
    free(body->p);
    *size = h.n;
    return h.p;
}

typedef struct {
    uint8_t *mem;
    attn_gguf_file f;
    attn_tokenizer *t;
} vocab;

static int vocab_open(vocab *v, gbuf *body, int n_vocab) {
    size_t size;
    v->mem = attn_gguf_bytes(body, &size);
    v->t = NULL;
    if (attn_gguf_open_mem(&v->f, v->mem, size, "test")) return -1;
    return attn_tokenizer_load(&v->t, &v->f, n_vocab);
}

static void vocab_close(vocab *v) {
    attn_tokenizer_free(v->t);
    attn_gguf_close(&v->f);
    free(v->mem);
}

// ---------------------------------------------------------------- helpers

static char *ids_str(const int32_t *ids, int n) {
    static char buf[1 << 20];
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < n && o < sizeof buf - 16; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, i ? " %d" : "%d", ids[i]);
    return buf;
}

// tokenize text (len bytes) and compare with the expected ids "1 2 3"
static void expect_ids(const attn_tokenizer *t, const char *name, const char *text, size_t len, int bos, const char *want) {
    int32_t *ids;
    int n;
    if (attn_tokenize(t, text, len, bos, &ids, &n)) {
        check(0, name, "tokenize failed: %s", attn_errmsg());
        return;
    }
    const char *got = ids_str(ids, n);
    check(!strcmp(got, want), name, "ids [%s], want [%s]", got, want);
    free(ids);
}
#define EXPECT_IDS(t, name, text, bos, want) expect_ids(t, name, text, sizeof(text) - 1, bos, want)

// labels of ids joined with " | "
static void expect_labels(const attn_tokenizer *t, const char *name, const int32_t *ids, int n, const char *want) {
    char **l, got[1024] = "";
    if (attn_token_labels(t, ids, n, &l)) {
        check(0, name, "labels failed: %s", attn_errmsg());
        return;
    }
    for (int i = 0; i < n; i++) {
        if (i) strcat(got, " | ");
        strncat(got, l[i], sizeof got - strlen(got) - 8);
    }
    attn_labels_free(l, n);
    check(!strcmp(got, want), name, "labels '%s', want '%s'", got, want);
}

// valid UTF-8 without C0 controls or DEL: what a label must be
static int label_ok(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        if (*p < 0x20 || *p == 0x7f) return 0;
        if (*p < 0x80) { p++; continue; }
        int k = *p >= 0xC2 && *p <= 0xDF ? 2 : *p >= 0xE0 && *p <= 0xEF ? 3 : *p >= 0xF0 && *p <= 0xF4 ? 4 : 0;
        if (!k) return 0;
        for (int i = 1; i < k; i++)
            if ((p[i] & 0xC0) != 0x80) return 0;
        p += k;
    }
    return 1;
}

// labels all well-formed, and detokenize gives back `want` (NULL: skip)
static int labels_and_back(const attn_tokenizer *t, const int32_t *ids, int n, const char *want, size_t want_len) {
    char **l;
    if (attn_token_labels(t, ids, n, &l)) return 0;
    int ok = 1;
    for (int i = 0; i < n; i++) ok &= l[i] && l[i][0] && label_ok(l[i]);
    attn_labels_free(l, n);
    if (!want) return ok;
    char *back;
    size_t len;
    if (attn_detokenize(t, ids, n, &back, &len)) return 0;
    ok &= len == want_len && !memcmp(back, want, len);
    free(back);
    return ok;
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

// random text from fragments: ASCII, spaces, UTF-8 pieces and broken UTF-8
static size_t random_text(char *buf, size_t cap) {
    static const char *frag[] = {"a", "b", "x", "1", "'", "'s", " ", "  ", "\t", "\n", "\r", "!", ".", "\xC3\xA9", "\xED\x95\x9C",
                                 "\xF0\x9F\xA4\x97", "\xE2\x96\x81", "\xC2\xA0", "\xC2\x85", "\xE3\x80\x80", "\xFF", "\x80",
                                 "\xC3", "\xE2\x82", "\xED\xA0\x80", "\xC0\xAF", "\xF4\x90\x80\x80", "\x00", "\x1b"};
    size_t n = 0, k = rnd() % 24;
    for (size_t i = 0; i < k; i++) {
        const char *f = frag[rnd() % (sizeof frag / sizeof frag[0])];
        size_t l = f[0] ? strlen(f) : 1;
        if (n + l > cap) break;
        memcpy(buf + n, f, l);
        n += l;
    }
    return n;
}

// 3000 random byte strings: tokenized, labelled, and given back exactly if `exact`
static int random_texts_ok(const attn_tokenizer *t, int bos, int exact) {
    char buf[256];
    for (int i = 0; i < 3000; i++) {
        size_t n = random_text(buf, sizeof buf);
        int32_t *ids;
        int k;
        int ok = !attn_tokenize(t, buf, n, bos, &ids, &k) && labels_and_back(t, ids, k, exact ? buf : NULL, n);
        free(ids);
        if (!ok) return 0;
    }
    return 1;
}

// ---------------------------------------------------------------- tiny GPT-2

static void byte_piece(int b, char *out) { // GPT-2's bytes_to_unicode of byte b, as UTF-8
    int n = 0, cp = -1;
    for (int c = 0; c < 256 && cp < 0; c++) {
        int printable = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
        if (c == b) cp = printable ? c : 256 + n;
        if (!printable) n++;
    }
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); out[2] = 0; }
}

enum { T_GA = 256, T_AB, T_GB, T_QS, T_A1, T_GC2, T_GG, T_GAB, T_XX, T_GFF, T_EOT, N_GPT2 };

static int open_tiny_gpt2(vocab *v, const char *pre) {
    static char pieces[N_GPT2][16];
    char *tok[N_GPT2];
    for (int b = 0; b < 256; b++) byte_piece(b, pieces[b]);
    const char *extra[] = {"\xC4\xA0" "a", "ab", "\xC4\xA0" "b", "'s", "a1", "\xC4\xA0\xC3\x82", "\xC4\xA0\xC4\xA0",
                           "\xC4\xA0" "ab", "xx", "\xC4\xA0\xC3\xBF", "<|endoftext|>"};
    for (int i = 256; i < N_GPT2; i++) strcpy(pieces[i], extra[i - 256]);
    for (int i = 0; i < N_GPT2; i++) tok[i] = pieces[i];
    char *merges[] = {"\xC4\xA0 a", "a b", "\xC4\xA0 b", "' s", "a 1", "\xC4\xA0 \xC3\x82", "\xC4\xA0 \xC4\xA0",
                      ("\xC4\xA0" "a b"), "x x", "\xC4\xA0 \xC3\xBF"};
    int32_t types[N_GPT2];
    for (int i = 0; i < N_GPT2; i++) types[i] = i == T_EOT ? 3 : 1;
    gbuf b = {0};
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    if (pre) kv_str(&b, "tokenizer.ggml.pre", pre);
    kv_strs(&b, "tokenizer.ggml.tokens", tok, N_GPT2);
    kv_nums(&b, "tokenizer.ggml.token_type", GGUF_I32, types, N_GPT2);
    kv_strs(&b, "tokenizer.ggml.merges", merges, 10);
    return vocab_open(v, &b, 0);
}

static void test_gpt2_tiny(void) {
    vocab v;
    if (open_tiny_gpt2(&v, "gpt-2")) {
        check(0, "tok_gpt2_tiny_load", "%s", attn_errmsg());
        return;
    }
    const attn_tokenizer *t = v.t;
    check(attn_tokenizer_kind(t) == ATTN_TOK_GPT2 && attn_tokenizer_n_vocab(t) == N_GPT2 && !attn_tokenizer_adds_bos(t) &&
              attn_tokenizer_bos(t) == T_EOT,
          "tok_gpt2_tiny_load", "kind %d, n_vocab %d, bos %d", attn_tokenizer_kind(t), attn_tokenizer_n_vocab(t),
          attn_tokenizer_bos(t));
    char want[256];
    EXPECT_IDS(t, "tok_gpt2_merge", "ab", 1, "257");
    EXPECT_IDS(t, "tok_gpt2_rank_order", " ab", 0, "263"); // (Ġ,a) before (a,b), then (Ġa,b)
    EXPECT_IDS(t, "tok_gpt2_left_to_right", "xxx", 0, "264 120");
    EXPECT_IDS(t, "tok_gpt2_letters_numbers_apart", "a1", 0, "97 49");
    EXPECT_IDS(t, "tok_gpt2_contraction", "it's", 0, "105 116 259");
    EXPECT_IDS(t, "tok_gpt2_contraction_case", "it'S", 0, "105 116 39 83");
    snprintf(want, sizeof want, "97 32 %d", T_GB);
    EXPECT_IDS(t, "tok_gpt2_spaces_before_word", "a  b", 0, want);
    snprintf(want, sizeof want, "97 %d", T_GG);
    EXPECT_IDS(t, "tok_gpt2_trailing_spaces", "a  ", 0, want);
    snprintf(want, sizeof want, "%d 133 98", T_GC2);
    EXPECT_IDS(t, "tok_gpt2_nel_is_not_space", " \xC2\x85" "b", 0, want); // U+0085: not JS \s
    EXPECT_IDS(t, "tok_gpt2_nbsp_is_space", " \xC2\xA0" "b", 0, "32 194 160 98");
    EXPECT_IDS(t, "tok_gpt2_tab_before_space", "\t b", 0, "9 258");
    snprintf(want, sizeof want, "%d 98", T_GFF);
    EXPECT_IDS(t, "tok_gpt2_invalid_byte_is_other", " \xFF" "b", 0, want);
    EXPECT_IDS(t, "tok_gpt2_invalid_bytes_kept", "a\xE2\x82\xFF\xC0", 0, "97 226 130 255 192");
    EXPECT_IDS(t, "tok_gpt2_empty", "", 1, "");
    EXPECT_IDS(t, "tok_gpt2_nul", "a\0b", 0, "97 0 98");

    int32_t l1[] = {97, 0xE2, 0x82, 0xAC};
    expect_labels(t, "tok_label_utf8_over_tokens", l1, 4, "a | \xE2\x82\xAC | \xE2\x80\xA6 | \xE2\x80\xA6");
    int32_t l2[] = {10, 9, 27, 13, 0x7F};
    expect_labels(t, "tok_label_controls", l2, 5, "\\n | \\t | \\x1b | \\r | \\x7f");
    int32_t l3[] = {0xC2, 0x85, 255, T_GAB, 32};
    expect_labels(t, "tok_label_c1_invalid_space", l3, 5, "\\u0085 | \xE2\x80\xA6 | \\xff | \xC2\xB7" "ab | \xC2\xB7");
    int32_t l4[] = {0xE2, T_EOT, 0x82, 0xAC};
    expect_labels(t, "tok_label_control_token", l4, 4, "\\xe2 | <|endoftext|> | \\x82 | \\xac");
    int32_t l5[] = {0xF0, 0x9F, 0xA4, 0x97, 0x20, 0xF0};
    expect_labels(t, "tok_label_emoji_bytes", l5, 6,
                  "\xF0\x9F\xA4\x97 | \xE2\x80\xA6 | \xE2\x80\xA6 | \xE2\x80\xA6 | \xC2\xB7 | \\xf0");
    int32_t l7[] = {0xE2, 0x80, 0xA8, 0xE2, 0x80, 0xA9};
    expect_labels(t, "tok_label_line_separators", l7, 6, "\\u2028 | \xE2\x80\xA6 | \xE2\x80\xA6 | \\u2029 | \xE2\x80\xA6 | \xE2\x80\xA6");
    int32_t l6[] = {N_GPT2};
    char **lab;
    check(attn_token_labels(t, l6, 1, &lab) == ATTN_EINPUT, "tok_label_out_of_range", "id %d accepted", N_GPT2);
    char *text;
    size_t len;
    int32_t d[] = {T_GAB, T_EOT, 0xC3, 0xA9};
    int rc = attn_detokenize(t, d, 4, &text, &len);
    check(!rc && len == 18 && !memcmp(text, " ab<|endoftext|>\xC3\xA9", 18), "tok_gpt2_detokenize", "got '%s'",
          rc ? attn_errmsg() : text);
    free(text);
    attn_gguf_str p = attn_token_piece(t, T_GA);
    check(p.len == 3 && !memcmp(p.s, "\xC4\xA0" "a", 3), "tok_piece", "piece of %d is '%.*s'", T_GA, (int)p.len, p.s);

    check(random_texts_ok(t, 0, 1), "tok_gpt2_any_bytes_round_trip", "a random byte string failed: %s", attn_errmsg());
    vocab_close(&v);

    int32_t *ids = NULL;
    int n = 0;
    check(!open_tiny_gpt2(&v, "deepseek-llm") && attn_tokenize(v.t, "a", 1, 0, &ids, &n) == ATTN_EINPUT &&
              strstr(attn_errmsg(), "deepseek-llm"),
          "tok_gpt2_unknown_pre", "pre-tokenizer deepseek-llm was not refused (%s)", attn_errmsg());
    vocab_close(&v);
}

// ---------------------------------------------------------------- tiny SentencePiece

// <unk> <s> </s> [<0x00>..<0xFF>] then pieces with scores
static int open_tiny_spm(vocab *v, int bytes, const char *extra_piece, int space_prefix) {
    char *tok[300], names[256][8];
    float score[300];
    int32_t type[300];
    int n = 0;
    const char *head[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) { tok[n] = (char *)head[i]; score[n] = 0; type[n++] = i ? 3 : 2; }
    for (int b = 0; bytes && b < 256; b++) {
        snprintf(names[b], sizeof names[b], "<0x%02X>", b);
        tok[n] = names[b]; score[n] = 0; type[n++] = 6;
    }
    const char *pieces[] = {"\xE2\x96\x81", "a", "b", "c", "\xE2\x96\x81" "a", "ab", "\xE2\x96\x81" "ab", "\xE2\x96\x81" "b",
                            "\xEF\xBF\xBD", extra_piece};
    for (int i = 0; i < 10 && pieces[i]; i++) { // the extra piece scores highest
        tok[n] = (char *)pieces[i];
        score[n] = i == 9 ? 1.0f : (float)-i;
        type[n++] = 1;
    }
    gbuf g = {0};
    kv_str(&g, "tokenizer.ggml.model", "llama");
    kv_strs(&g, "tokenizer.ggml.tokens", tok, n);
    kv_nums(&g, "tokenizer.ggml.scores", GGUF_F32, score, n);
    kv_nums(&g, "tokenizer.ggml.token_type", GGUF_I32, type, n);
    if (!space_prefix) kv_bool(&g, "tokenizer.ggml.add_space_prefix", 0);
    kv_u32(&g, "tokenizer.ggml.eos_token_id", 2);
    return vocab_open(v, &g, 0);
}

static void test_spm_tiny(void) {
    vocab v;
    if (open_tiny_spm(&v, 1, NULL, 1)) {
        check(0, "tok_spm_tiny_load", "%s", attn_errmsg());
        return;
    }
    const attn_tokenizer *t = v.t;
    enum { S = 259, A, B, C, SA, AB, SAB, SB, FFFD }; // ids of the pieces after 3 specials + 256 bytes
    check(attn_tokenizer_adds_bos(t) && attn_tokenizer_bos(t) == 1 && attn_tokenizer_eos(t) == 2, "tok_spm_defaults",
          "adds_bos %d bos %d eos %d", attn_tokenizer_adds_bos(t), attn_tokenizer_bos(t), attn_tokenizer_eos(t));
    char want[128];
    snprintf(want, sizeof want, "1 %d", SAB);
    EXPECT_IDS(t, "tok_spm_score_order", "ab", 1, want); // ▁a (score -4) first, then ▁ab
    snprintf(want, sizeof want, "%d %d %d", S, C, AB);
    EXPECT_IDS(t, "tok_spm_merge", "cab", 0, want);
    snprintf(want, sizeof want, "%d %d %d", SA, S, SB);
    EXPECT_IDS(t, "tok_spm_spaces", "a  b", 0, want);
    snprintf(want, sizeof want, "%d %d", S, FFFD);
    EXPECT_IDS(t, "tok_spm_invalid_is_fffd", "\xFF", 0, want);
    snprintf(want, sizeof want, "%d %d %d %d", SA, 3 + 0xC3, 3 + 0xA9, SB);
    EXPECT_IDS(t, "tok_spm_byte_fallback", "a\xC3\xA9 b", 0, want);
    EXPECT_IDS(t, "tok_spm_empty", "", 1, "1");
    int32_t l1[] = {1, SAB, 3 + 0xC3, 3 + 0xA9, 3 + 0x0A, 0, FFFD};
    expect_labels(t, "tok_spm_labels", l1, 7, "<s> | \xC2\xB7" "ab | \xC3\xA9 | \xE2\x80\xA6 | \\n | <unk> | \xEF\xBF\xBD");
    check(random_texts_ok(t, 1, 0), "tok_spm_any_bytes", "a random byte string failed: %s", attn_errmsg());
    vocab_close(&v);

    // a piece with "▁" inside: words can not be merged apart
    open_tiny_spm(&v, 1, "a\xE2\x96\x81", 1);
    snprintf(want, sizeof want, "%d %d %d", S, 268, B);
    EXPECT_IDS(v.t, "tok_spm_piece_across_words", "a b", 0, want);
    vocab_close(&v);
    // no byte tokens: a run of unknown characters is one <unk>
    open_tiny_spm(&v, 0, NULL, 0);
    EXPECT_IDS(v.t, "tok_spm_unk_run", "ab\xC3\xA9\xC3\xA9" "c", 0, "8 0 6");
    vocab_close(&v);
}

// ---------------------------------------------------------------- char, ids-only, errors

// ---------------------------------------------------------------- Split behaviors (Rust's)
// The five SplitDelimiterBehavior of Hugging Face tokenizers on
// "The-final--countdown" split on "-", as its own tests (normalizer.rs)
// state them; transformers.js runs only Removed and Isolated. A "bpe"
// vocabulary holding each expected piece whole, with ignore_merges, shows
// the pieces as ids.
static void test_split_behaviors(void) {
    static const struct { const char *behavior, *invert, *want; } cases[] = {
        {"removed", "0", "The final countdown"},
        {"isolated", "0", "The - final - - countdown"},
        {"merged_with_previous", "0", "The- final- - countdown"},
        {"merged_with_next", "0", "The -final - -countdown"},
        {"contiguous", "0", "The - final -- countdown"},
        {"removed", "1", "- - -"}, // invert: the text between the "-" is the delimiter
    };
    char *tok[] = {"T", "h", "e", "-", "f", "i", "n", "a", "l", "c", "o", "u", "t", "d", "w", "The", "final",
                   "countdown", "The-", "final-", "-final", "-countdown", "--"};
    enum { N = sizeof tok / sizeof tok[0] };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char step[128], *steps[1] = {step}, got[256] = "", name[96];
        snprintf(step, sizeof step, "split\t%s\t%s\t-", cases[c].behavior, cases[c].invert);
        gbuf b = {0};
        kv_str(&b, "tokenizer.ggml.model", "bpe");
        kv_strs(&b, "tokenizer.ggml.tokens", tok, N);
        kv_strs(&b, "tokenizer.ggml.merges", tok, 0);
        kv_strs(&b, "attn.tokenizer.pre", steps, 1);
        kv_bool(&b, "attn.tokenizer.ignore_merges", 1);
        vocab v;
        int32_t *ids = NULL;
        int n = 0, rc = vocab_open(&v, &b, 0) || attn_tokenize(v.t, "The-final--countdown", 20, 0, &ids, &n);
        for (int i = 0; !rc && i < n; i++) {
            attn_gguf_str p = attn_token_piece(v.t, ids[i]);
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%.*s", i ? " " : "", (int)p.len, p.s);
        }
        snprintf(name, sizeof name, "tok_split_%s%s", cases[c].behavior, cases[c].invert[0] == '1' ? "_invert" : "");
        check(!rc && !strcmp(got, cases[c].want), name, "pieces '%s', want '%s' (%s)", got, cases[c].want,
              rc ? attn_errmsg() : "");
        free(ids);
        vocab_close(&v);
    }
}

static void test_char_and_none(void) {
    char *tok[] = {"\n", " ", "a", "b", "\xED\x95\x9C"};
    gbuf g = {0};
    kv_str(&g, "tokenizer.ggml.model", "char");
    kv_strs(&g, "tokenizer.ggml.tokens", tok, 5);
    vocab v;
    if (vocab_open(&v, &g, 65)) {
        check(0, "tok_char_load", "%s", attn_errmsg());
        return;
    }
    check(attn_tokenizer_kind(v.t) == ATTN_TOK_CHAR && attn_tokenizer_n_vocab(v.t) == 65 && attn_tokenizer_bos(v.t) < 0,
          "tok_char_load", "kind %d n_vocab %d", attn_tokenizer_kind(v.t), attn_tokenizer_n_vocab(v.t));
    EXPECT_IDS(v.t, "tok_char_ids", "ab \xED\x95\x9C\n", 1, "2 3 1 4 0");
    int32_t *ids;
    int n;
    check(attn_tokenize(v.t, "abc", 3, 0, &ids, &n) == ATTN_EINPUT && strstr(attn_errmsg(), "'c' (U+0063) at byte 2"),
          "tok_char_unknown", "message: %s", attn_errmsg());
    check(attn_tokenize(v.t, "a\xFF", 2, 0, &ids, &n) == ATTN_EINPUT && strstr(attn_errmsg(), "0xFF at byte 1"),
          "tok_char_invalid_utf8", "message: %s", attn_errmsg());
    int32_t l[] = {2, 1, 0, 4, 64};
    expect_labels(v.t, "tok_char_labels", l, 5, "a | \xC2\xB7 | \\n | \xED\x95\x9C | [64]");
    check(labels_and_back(v.t, l, 4, "a \n\xED\x95\x9C", 6), "tok_char_detokenize", "not given back");
    vocab_close(&v);

    gbuf h = {0};
    kv_str(&h, "general.architecture", "gpt2");
    check(!vocab_open(&v, &h, 100) && attn_tokenizer_kind(v.t) == ATTN_TOK_NONE && attn_tokenizer_n_vocab(v.t) == 100,
          "tok_none_load", "%s", attn_errmsg());
    check(attn_tokenize(v.t, "a", 1, 1, &ids, &n) == ATTN_EINPUT, "tok_none_refuses_text", "text tokenized");
    int32_t l2[] = {5, 99};
    expect_labels(v.t, "tok_none_labels", l2, 2, "[5] | [99]");
    char *s;
    check(attn_detokenize(v.t, l2, 2, &s, NULL) == ATTN_EINPUT, "tok_none_detokenize", "decoded");
    vocab_close(&v);

    char *toks[] = {"a", "b"};
    gbuf e1 = {0};
    kv_str(&e1, "tokenizer.ggml.model", "rwkv");
    kv_strs(&e1, "tokenizer.ggml.tokens", toks, 2);
    check(vocab_open(&v, &e1, 0) == ATTN_EINPUT && strstr(attn_errmsg(), "rwkv"), "tok_unknown_model", "%s", attn_errmsg());
    vocab_close(&v);
    gbuf e2 = {0};
    kv_str(&e2, "tokenizer.ggml.model", "gpt2");
    kv_strs(&e2, "tokenizer.ggml.tokens", toks, 2);
    check(vocab_open(&v, &e2, 0) == ATTN_EINPUT && strstr(attn_errmsg(), "merges"), "tok_gpt2_needs_merges", "%s",
          attn_errmsg());
    vocab_close(&v);
    gbuf e3 = {0};
    kv_str(&e3, "tokenizer.ggml.model", "char");
    kv_strs(&e3, "tokenizer.ggml.tokens", toks, 2);
    check(vocab_open(&v, &e3, 1) == ATTN_EINPUT && strstr(attn_errmsg(), "embedding rows"), "tok_more_tokens_than_rows",
          "%s", attn_errmsg());
    vocab_close(&v);
}

// ---------------------------------------------------------------- parity with the references

typedef struct { char **line; size_t *len; int n; char *mem; } lines;

static int read_lines(const char *path, lines *L) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    L->mem = malloc((size_t)size + 1);
    size_t got = fread(L->mem, 1, (size_t)size, fp);
    fclose(fp);
    L->n = 0;
    for (size_t i = 0; i < got; i++) L->n += L->mem[i] == '\n';
    L->line = malloc(((size_t)L->n + 1) * sizeof *L->line);
    L->len = malloc(((size_t)L->n + 1) * sizeof *L->len);
    size_t start = 0;
    for (int k = 0; k < L->n; k++) { // every line ends with "\n"
        char *nl = memchr(L->mem + start, '\n', got - start);
        L->line[k] = L->mem + start;
        L->len[k] = (size_t)(nl - (L->mem + start));
        *nl = 0;
        start += L->len[k] + 1;
    }
    return 0;
}

static void free_lines(lines *L) { free(L->line); free(L->len); free(L->mem); }

static int hexval(char c) { return c >= 'a' ? c - 'a' + 10 : c - '0'; }

// "<hex>" into bytes
static size_t unhex(const char *h, size_t n, char *out) {
    for (size_t i = 0; i + 1 < n; i += 2) out[i / 2] = (char)(hexval(h[i]) * 16 + hexval(h[i + 1]));
    return n / 2;
}

// "1 2 3" (up to a tab or the end) into ids
static int parse_ids(const char *s, int32_t *ids, int cap) {
    int n = 0;
    while (*s && *s != '\t' && n < cap) {
        char *end;
        ids[n++] = (int32_t)strtol(s, &end, 10);
        s = *end == ' ' ? end + 1 : end;
    }
    return n;
}

// Corpus line i tokenized (add_bos) into *ids, *n and compared with gold's
// line i: 1 if the same, 0 if not, -1 if tokenizing failed (*ids not set).
// The first 3 misses are printed (*shown counts them).
static int vs_gold(attn_tokenizer *t, const char *name, const lines *corpus, const lines *gold, int i, int add_bos,
                   int32_t **ids, int *n, int *shown) {
    if (attn_tokenize(t, corpus->line[i], corpus->len[i], add_bos, ids, n)) {
        if ((*shown)++ < 3) printf("  %s line %d: %s\n", name, i + 1, attn_errmsg());
        return -1;
    }
    const char *got = ids_str(*ids, *n);
    if (!strcmp(got, gold->line[i])) return 1;
    if ((*shown)++ < 3) printf("  %s line %d: ids [%.200s]\n    want [%.200s]\n", name, i + 1, got, gold->line[i]);
    return 0;
}

static void parity(const char *name, const char *gguf, const char *dir, const lines *corpus, int decode_is_text,
                   int is_llama) {
    char path[1024], tname[128];
    attn_gguf_file f;
    attn_tokenizer *t;
    snprintf(tname, sizeof tname, "tok_%s_load", name);
    if (attn_gguf_open(&f, gguf) || attn_tokenizer_load(&t, &f, 0)) {
        check(0, tname, "%s: %s", gguf, attn_errmsg());
        return;
    }
    attn_tokenizer_parse_special(t, 0); // the references encode "<s>" etc. as plain text
    lines gold;
    snprintf(path, sizeof path, "%s/tok_%s.golden", dir, is_llama ? "llama" : name);
    if (read_lines(path, &gold) || gold.n != corpus->n) {
        check(0, tname, "%s: missing or not one line per corpus line", path);
        return;
    }
    int same = 0, back = 0, labels = 0, shown = 0;
    for (int i = 0; i < corpus->n; i++) {
        int32_t *ids;
        int n, r = vs_gold(t, name, corpus, &gold, i, 1, &ids, &n, &shown);
        if (r < 0) continue;
        same += r;
        int bos = is_llama && n > 0;
        back += labels_and_back(t, ids + bos, n - bos, corpus->line[i], corpus->len[i]);
        labels += labels_and_back(t, ids, n, NULL, 0);
        free(ids);
    }
    printf("# %s: ids equal to the reference on %d/%d corpus lines (%.2f%%)\n", name, same, corpus->n,
           100.0 * same / corpus->n);
    snprintf(tname, sizeof tname, "tok_%s_parity", name);
    check(same == corpus->n, tname, "%d of %d lines differ", corpus->n - same, corpus->n);
    snprintf(tname, sizeof tname, "tok_%s_round_trip", name);
    if (decode_is_text) check(back == corpus->n, tname, "%d of %d lines not given back", corpus->n - back, corpus->n);
    snprintf(tname, sizeof tname, "tok_%s_labels", name);
    check(labels == corpus->n, tname, "%d lines with a bad label", corpus->n - labels);
    free_lines(&gold);

    if (is_llama) { // sentencepiece on invalid UTF-8, and its decode of odd sequences
        static int32_t ids_want[4096];
        char bytes[4096];
        lines g;
        snprintf(path, sizeof path, "%s/tok_llama_bytes.golden", dir);
        int ok = !read_lines(path, &g) && g.n > 0;
        for (int i = 0; ok && i < g.n; i++) {
            const char *tab = strchr(g.line[i], '\t');
            size_t nb = unhex(g.line[i], (size_t)(tab - g.line[i]), bytes);
            int32_t *ids;
            int n;
            ok = !attn_tokenize(t, bytes, nb, 1, &ids, &n) && !strcmp(ids_str(ids, n), tab + 1);
            if (!ok) printf("  %s invalid UTF-8 line %d: [%s] want [%s]\n", name, i + 1, ids_str(ids, n), tab + 1);
            free(ids);
        }
        snprintf(tname, sizeof tname, "tok_%s_invalid_utf8", name);
        check(ok, tname, "differs from sentencepiece");
        free_lines(&g);
        snprintf(path, sizeof path, "%s/tok_llama_decode.golden", dir);
        ok = !read_lines(path, &g) && g.n > 0;
        for (int i = 0; ok && i < g.n; i++) {
            const char *tab = strchr(g.line[i], '\t');
            int n = parse_ids(g.line[i], ids_want, 4096);
            size_t nb = unhex(tab + 1, strlen(tab + 1), bytes);
            char *text;
            size_t len;
            ok = !attn_detokenize(t, ids_want, n, &text, &len) && len == nb && !memcmp(text, bytes, nb);
            if (!ok) printf("  %s decode line %d: [%s] differs\n", name, i + 1, g.line[i]);
            free(text);
        }
        snprintf(tname, sizeof tname, "tok_%s_decode", name);
        check(ok, tname, "differs from sentencepiece's decode");
        free_lines(&g);
    }
    attn_tokenizer_free(t);
    attn_gguf_close(&f);
}

// CPU seconds to tokenize n bytes of text (-1 on error).
static double cpu_tokenize(attn_tokenizer *t, const char *text, size_t n) {
    int32_t *ids;
    int k;
    clock_t c0 = clock();
    int rc = attn_tokenize(t, text, n, 0, &ids, &k);
    double s = (double)(clock() - c0) / CLOCKS_PER_SEC;
    if (rc) return -1;
    free(ids);
    return s;
}

// No quadratic blow-up: 1 MB of one repeated character in under 1 CPU
// second; Llama 3: 1 MB of English (the corpus's ASCII lines) under 0.5.
static void hf_speed(const char *name, attn_tokenizer *t, const lines *corpus) {
    enum { MB = 1000000 };
    static const char *const reps[] = {"a", " ", "\n", "<", "\xCC\x81"};
    char *buf = malloc(MB), tname[128];
    if (!buf) return;
    attn_tokenizer_parse_special(t, 1);
    double worst = 0;
    const char *worst_rep = "";
    for (size_t r = 0; r < sizeof reps / sizeof reps[0]; r++) {
        size_t k = strlen(reps[r]), n = MB / k * k;
        for (size_t i = 0; i < n; i += k) memcpy(buf + i, reps[r], k);
        double s = cpu_tokenize(t, buf, n);
        if (s < 0 || s > worst) worst = s < 0 ? 99 : s, worst_rep = reps[r];
    }
    snprintf(tname, sizeof tname, "tok_%s_repeated_1mb", name);
    check(worst < 1.0, tname, "1 MB of one repeated character took %.2f CPU s (> 1)", worst);
    printf("# %s: 1 MB of one repeated character: at most %.3f CPU s ('%s')\n", name, worst,
           worst_rep[0] == '\n' ? "\\n" : worst_rep);
    if (!strcmp(name, "llama3")) {
        size_t n = 0;
        for (int i = 0; n < MB; i = (i + 1) % corpus->n) {
            int ascii = corpus->len[i] > 20;
            for (size_t j = 0; j < corpus->len[i]; j++) ascii &= (unsigned char)corpus->line[i][j] < 0x80;
            if (!ascii) continue;
            size_t k = corpus->len[i] + 1 < MB - n ? corpus->len[i] + 1 : MB - n;
            memcpy(buf + n, corpus->line[i], k - 1 < corpus->len[i] ? k : corpus->len[i]);
            if (k > corpus->len[i]) buf[n + corpus->len[i]] = '\n';
            n += k;
        }
        double s = cpu_tokenize(t, buf, n);
        check(s >= 0 && s < 0.5, "tok_llama3_speed_1mb_english", "1 MB of English took %.2f CPU s (> 0.5)", s);
        printf("# llama3: 1 MB of English in %.3f CPU s\n", s);
    }
    free(buf);
}

// A tokenizer converted from a real tokenizer.json against the ids of
// @huggingface/transformers (ids_path, special tokens parsed as it does), and
// round trips with special-token text kept plain: detokenize(tokenize(line))
// must be back_path's line (the corpus line through the tokenizer's Unicode
// normalizer, by Python's unicodedata).
static void hf_parity(const char *name, const char *gguf, const char *ids_path, const char *back_path,
                      const lines *corpus) {
    char tname[128];
    attn_gguf_file f;
    attn_tokenizer *t;
    lines gold, back;
    snprintf(tname, sizeof tname, "tok_%s_load", name);
    if (attn_gguf_open(&f, gguf) || attn_tokenizer_load(&t, &f, 0)) {
        check(0, tname, "%s: %s", gguf, attn_errmsg());
        return;
    }
    if (read_lines(ids_path, &gold) || gold.n != corpus->n || read_lines(back_path, &back) || back.n != corpus->n) {
        check(0, tname, "%s or %s: missing or not one line per corpus line", ids_path, back_path);
        return;
    }
    int same = 0, trips = 0, labels = 0, shown = 0;
    for (int i = 0; i < corpus->n; i++) {
        int32_t *ids;
        int n;
        attn_tokenizer_parse_special(t, 1);
        int r = vs_gold(t, name, corpus, &gold, i, 0, &ids, &n, &shown);
        if (r < 0) continue;
        same += r;
        labels += labels_and_back(t, ids, n, NULL, 0);
        free(ids);
        attn_tokenizer_parse_special(t, 0);
        if (attn_tokenize(t, corpus->line[i], corpus->len[i], 0, &ids, &n)) continue;
        int ok = labels_and_back(t, ids, n, back.line[i], back.len[i]);
        trips += ok;
        if (!ok && shown++ < 3) printf("  %s line %d: not given back\n", name, i + 1);
        free(ids);
    }
    printf("# %s: ids equal to @huggingface/transformers on %d/%d corpus lines (%.2f%%), %d round trips exact\n",
           name, same, corpus->n, 100.0 * same / corpus->n, trips);
    snprintf(tname, sizeof tname, "tok_%s_parity", name);
    check(same == corpus->n, tname, "%d of %d lines differ", corpus->n - same, corpus->n);
    snprintf(tname, sizeof tname, "tok_%s_round_trip", name);
    check(trips == corpus->n, tname, "%d of %d lines not given back", corpus->n - trips, corpus->n);
    snprintf(tname, sizeof tname, "tok_%s_labels", name);
    check(labels == corpus->n, tname, "%d lines with a bad label", corpus->n - labels);
    free_lines(&gold);
    free_lines(&back);
    if (!getenv("ATTN_SANITIZE")) hf_speed(name, t, corpus);
    attn_tokenizer_free(t);
    attn_gguf_close(&f);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        test_gpt2_tiny();
        test_spm_tiny();
        test_char_and_none();
        test_split_behaviors();
        CHECK_EXIT();
    }
    const char *dir = argv[1];
    char path[1024];
    lines corpus;
    snprintf(path, sizeof path, "%s/tokenizer_corpus.txt", dir);
    if (read_lines(path, &corpus)) {
        check(0, "tok_corpus", "cannot read %s", path);
        CHECK_EXIT();
    }
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) continue;
        *eq = 0;
        if (!strncmp(argv[i], "hf:", 3)) { // hf:NAME=GGUF,IDS,BACK
            char *c1 = strchr(eq + 1, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
            if (!c2) continue;
            *c1 = *c2 = 0;
            hf_parity(argv[i] + 3, eq + 1, c1 + 1, c2 + 1, &corpus);
            continue;
        }
        parity(argv[i], eq + 1, dir, &corpus, 1, strncmp(argv[i], "llama", 5) == 0);
    }
    free_lines(&corpus);
    CHECK_EXIT();
}
