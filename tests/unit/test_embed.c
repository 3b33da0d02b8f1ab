// tests/unit/test_embed.c - a program embedding the library as the README says:
// attn.h only, no init call. Loading a model must choose the fast kernels
// (the best path this CPU runs, or $ATTN_SIMD), not leave the scalar ones.
#include "attn.h"
#include "simd/kernels.h" // only to ask which paths this CPU has
#include "tests/unit/check.h"
#include <stdlib.h>
#include <string.h>

int main(void) {
    const char *env = getenv("ATTN_SIMD");
    const attn_kernels **p = attn_kernels_available();
    int n = 0;
    while (p[n]) n++;
    const char *want = env && *env ? env : p[n - 1]->name;
    attn_model *m;
    int rc = attn_model_load(&m, "tests/fuzz/corpus_gguf/gpt2_bpe.gguf");
    check(rc == 0, "embed: load a model without any init", "%s", attn_errmsg());
    if (rc) CHECK_EXIT();
    if (n == 1 && !(env && *env)) skip("embed: the fast path without init", "this CPU runs only the scalar path");
    else
        check(!strcmp(attn_simd_name(), want) && !strcmp(attn_k->name, want),
              "embed: loading a model chose the kernels (no init call)", "path %s, expected %s", attn_simd_name(), want);
    // the forward runs on that path and gives finite logits
    int32_t ids[3] = { 1, 2, 3 };
    float *logits = malloc((size_t)3 * m->cfg.n_vocab * sizeof *logits);
    rc = logits ? attn_forward(m, NULL, ids, 3, logits, NULL) : ATTN_EFAIL;
    int finite = !rc;
    for (int i = 0; !rc && i < 3 * m->cfg.n_vocab; i++) finite &= logits[i] == logits[i];
    check(finite && !attn_nonfinite(), "embed: a forward on the chosen path", "rc %d: %s", rc, attn_errmsg());
    // a path chosen before loading is kept
    rc = attn_simd_select("scalar");
    attn_model *m2;
    if (!rc) rc = attn_model_load(&m2, "tests/fuzz/corpus_gguf/gpt2_bpe.gguf");
    check(!rc && !strcmp(attn_simd_name(), "scalar"), "embed: a path chosen by attn_simd_select is kept by load",
          "rc %d, path %s", rc, attn_simd_name());
    if (!rc) attn_model_free(m2);
    free(logits);
    attn_model_free(m);
    CHECK_EXIT();
}
