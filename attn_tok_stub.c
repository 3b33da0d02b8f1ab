// attn_tok_stub.c - TEMPORARY weak ids-only tokenizer so the build links
// until attn_tok.c lands (its strong definitions replace these). To delete.
#include "attn.h"
#include <stdio.h>
#include <stdlib.h>
struct attn_tokenizer { int n_vocab; };
__attribute__((weak)) int attn_tokenizer_load(attn_tokenizer **out, const gguf_file *f, int n_vocab) {
    (void)f; *out = calloc(1, sizeof **out); if (!*out) return ATTN_EFAIL; (*out)->n_vocab = n_vocab; return 0; }
__attribute__((weak)) void attn_tokenizer_free(attn_tokenizer *t) { free(t); }
__attribute__((weak)) attn_tok_kind attn_tokenizer_kind(const attn_tokenizer *t) { (void)t; return ATTN_TOK_NONE; }
__attribute__((weak)) int attn_tokenize(const attn_tokenizer *t, const char *text, size_t len, int add_bos, int32_t **ids, int *n) {
    (void)t; (void)text; (void)len; (void)add_bos; (void)ids; (void)n; return attn_err(ATTN_EINPUT, "no tokenizer"); }
__attribute__((weak)) gguf_str attn_token_piece(const attn_tokenizer *t, int32_t id) { (void)t; (void)id; gguf_str s = { "", 0 }; return s; }
__attribute__((weak)) int attn_token_labels(const attn_tokenizer *t, const int32_t *ids, int n, char ***labels) {
    (void)t; *labels = calloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) { (*labels)[i] = malloc(16); snprintf((*labels)[i], 16, "#%d", ids[i]); } return 0; }
__attribute__((weak)) void attn_labels_free(char **labels, int n) { for (int i = 0; i < n; i++) free(labels[i]); free(labels); }
