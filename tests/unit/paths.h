// tests/unit/paths.h - for the C tests that loop over the SIMD paths
// (attn_kernels_available): one SKIP line for each path the loop will not
// reach, so a green run says whether AVX2, AVX-512 or NEON was exercised.
// Include after simd/kernels.h and check.h.
#ifndef ATTN_TEST_PATHS_H
#define ATTN_TEST_PATHS_H
#include <string.h>

// skip_absent_paths(what): "SKIP <what> <path>: CPU lacks <path>", or "not
// built for this architecture" for the other architecture's paths.
static inline void skip_absent_paths(const char *what) {
    static const struct { const char *name; int built; } all[] = {
#if defined(__x86_64__) || defined(_M_X64)
        { "avx2", 1 }, { "avx512", 1 }, { "neon", 0 },
#elif defined(__aarch64__)
        { "avx2", 0 }, { "avx512", 0 }, { "neon", 1 },
#else
        { "avx2", 0 }, { "avx512", 0 }, { "neon", 0 },
#endif
    };
    const attn_kernels **av = attn_kernels_available();
    char name[160];
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        int have = 0;
        for (int j = 0; av[j]; j++) have |= strcmp(av[j]->name, all[i].name) == 0;
        if (have) continue;
        snprintf(name, sizeof name, "%s %s", what, all[i].name);
        if (all[i].built) printf("SKIP %s: CPU lacks %s\n", name, all[i].name);
        else printf("SKIP %s: not built for this architecture\n", name);
    }
}
#endif
