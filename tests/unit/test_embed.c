// tests/unit/test_embed.c - a program embedding the library as the README says:
// attn.h only, no init call. Loading a model must choose the fast kernels
// (the best path this CPU runs, or $ATTN_SIMD), not leave the scalar ones.
#include "attn.h"
#include "simd/kernels.h" // only to ask which paths this CPU has
#include "tests/unit/check.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

// Whether the mapping holding addr has flag (two letters of smaps' VmFlags,
// "hg": MADV_HUGEPAGE) set: 1, 0, or -1 where /proc/self/smaps says nothing.
static int vma_flag(const void *addr, const char *flag) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int in = 0, r = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) // a mapping's first line (no field name is "hex-hex")
            in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
        else if (in && !strncmp(line, "VmFlags:", 8)) {
            char want[8];
            snprintf(want, sizeof want, " %s", flag);
            r = strstr(line + 8, want) != NULL;
            break;
        }
    }
    fclose(f);
    return r;
}

// Whether madvise(MADV_HUGEPAGE) shows in smaps here, on a probe mapping.
static int hugepage_honored(void) {
#ifdef MADV_HUGEPAGE
    size_t n = (size_t)4 << 20;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 0;
    int ok = !madvise(p, n, MADV_HUGEPAGE) && vma_flag(p, "hg") == 1;
    munmap(p, n);
    return ok;
#else
    return 0;
#endif
}

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
    // the weights are mapped asking for 2 MB pages (read from disk in 2 MB
    // pages, mapped whole: a first read per 4 KB page costs ~0.7 us on a VM)
    if (!hugepage_honored()) skip("embed: the model file is mapped with MADV_HUGEPAGE", "this system does not "
                                  "record MADV_HUGEPAGE (no THP, qemu-user, or no VmFlags in /proc/self/smaps)");
    else check(vma_flag(m->file.base, "hg") == 1, "embed: the model file is mapped with MADV_HUGEPAGE",
               "no 'hg' in its VmFlags");
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
