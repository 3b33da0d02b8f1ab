// llama.cpp's tokenizer on each line of a file: lcpp_tok_lines MODEL FILE -> one line of ids per line
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static void quiet(enum ggml_log_level l, const char *s, void *u) { (void)l, (void)s, (void)u; }
int main(int argc, char **argv) {
    if (argc != 3) return fprintf(stderr, "usage: lcpp_tok_lines MODEL FILE\n"), 2;
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = 1;
    struct llama_model *m = llama_model_load_from_file(argv[1], mp);
    FILE *f = fopen(argv[2], "rb");
    if (!m || !f) return fprintf(stderr, "lcpp_tok_lines: cannot load %s or open %s\n", argv[1], argv[2]), 1;
    const struct llama_vocab *v = llama_model_get_vocab(m);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        if (n && line[n - 1] == '\n') n--;
        int k = (int)n + 16;
        llama_token *t = malloc((size_t)k * sizeof *t);
        k = llama_tokenize(v, line, (int32_t)n, t, k, 0, 1); // no BOS/EOS, special tokens parsed
        for (int i = 0; i < k; i++) printf(i ? " %d" : "%d", t[i]);
        putchar('\n');
        free(t);
        if (k < 0) return fprintf(stderr, "lcpp_tok_lines: llama_tokenize failed\n"), 1;
    }
    return 0;
}
