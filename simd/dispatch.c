// simd/dispatch.c - CPU detection and the choice of kernel path: the best
// path the CPU (and the OS, for the AVX/AVX-512 register state) supports, or
// the one named by ATTN_SIMD.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attn.h"
#include "simd/kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define ATTN_X86 1
#include <cpuid.h>
#endif
#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

const attn_kernels *attn_k = &attn_kernels_scalar;
static atomic_int chosen; // 1 once a path was chosen (attn_kernels_init or _select)
static const attn_kernels *base = &attn_kernels_scalar; // the chosen path
static int exact;                                      // attn_kernels_exact
static attn_kernels exact_table;                       // base with its exact matmul and attention
static char exact_name[32];

// attn_k = the chosen path, or its exact-mode copy.
static void use(const attn_kernels *p) {
    base = p;
    if (exact) {
        exact_table = *p;
        exact_table.matmul = p->matmul_exact;
        exact_table.attention = p->attention_exact;
        snprintf(exact_name, sizeof exact_name, "%s, exact", p->name);
        exact_table.name = exact_name;
        attn_k = &exact_table;
    } else
        attn_k = p;
}

static _Thread_local uint64_t mark; // attn_kernels_set_mark
static atomic_uint_fast64_t marks;
uint64_t attn_kernels_new_mark(void) { return (uint64_t)atomic_fetch_add(&marks, 1) + 1; }
void attn_kernels_set_mark(uint64_t m) { mark = m; }
uint64_t attn_kernels_mark(void) { return mark; }

void attn_kernels_exact(int on) {
    exact = on != 0;
    use(base);
}

#if defined(__APPLE__)
// 1 if the sysctl flag is set (hw.optional.*). macOS enables the AVX-512
// register state lazily, so XCR0 does not tell; the kernel's flag does.
static int sysctl_flag(const char *name) {
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname(name, &v, &len, NULL, 0) == 0 && v != 0;
}
#endif

#ifdef ATTN_X86
static uint64_t xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

typedef struct { int avx2, avx512; } x86_caps;

static x86_caps x86_detect(void) {
    x86_caps c = { 0, 0 };
    unsigned a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d)) return c;
    int osxsave = (cx >> 27) & 1, fma = (cx >> 12) & 1, f16c = (cx >> 29) & 1, avx = (cx >> 28) & 1;
    if (!osxsave || !avx) return c;
    uint64_t xcr0 = xgetbv0();
    int os_avx = (xcr0 & 0x6) == 0x6;     // XMM and YMM state
    int os_avx512 = (xcr0 & 0xe6) == 0xe6; // + opmask, ZMM_Hi256, Hi16_ZMM
#if defined(__APPLE__)
    if (os_avx) os_avx512 = sysctl_flag("hw.optional.avx512f");
#endif
    if (__get_cpuid_max(0, NULL) < 7) return c;
    __cpuid_count(7, 0, a, b, cx, d);
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1,
        avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    c.avx2 = os_avx && avx2 && fma && f16c;
    c.avx512 = c.avx2 && os_avx512 && avx512f && avx512dq && avx512bw && avx512vl;
    return c;
}
#endif

// Paths of this build the CPU can run, best last.
static const attn_kernels *paths[5];

static void find_paths(void) {
    int n = 0;
    paths[n++] = &attn_kernels_scalar;
#ifdef ATTN_X86
    x86_caps c = x86_detect();
    if (c.avx2) paths[n++] = &attn_kernels_avx2;
    if (c.avx512) paths[n++] = &attn_kernels_avx512;
#endif
#if defined(__aarch64__)
    paths[n++] = &attn_kernels_neon; // NEON and fp16 conversion are baseline AArch64
#endif
    paths[n] = NULL;
}

const attn_kernels **attn_kernels_available(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, find_paths);
    return paths;
}

int attn_kernels_select(const char *name) {
    const attn_kernels **p = attn_kernels_available();
    for (int i = 0; p[i]; i++)
        if (strcmp(p[i]->name, name) == 0) { use(p[i]); atomic_store(&chosen, 1); return 0; }
    static const char *known[] = { "scalar", "avx2", "avx512", "neon" };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(known[i], name) == 0)
            return attn_err(ATTN_EINPUT, "ATTN_SIMD=%s: this CPU or build has no %s path", name, name);
    return attn_err(ATTN_EINPUT, "ATTN_SIMD=%s: unknown path (scalar, avx2, avx512 or neon)", name);
}

int attn_kernels_init(void) {
    const char *env = getenv("ATTN_SIMD");
    if (env && *env) return attn_kernels_select(env);
    const attn_kernels **p = attn_kernels_available();
    int n = 0;
    while (p[n]) n++;
    use(p[n - 1]);
    atomic_store(&chosen, 1);
    return 0;
}

// The public names (attn.h): model load calls attn_simd_init, so a program
// embedding the library gets the fast path without an init call of its own.
int attn_simd_init(void) { return atomic_load(&chosen) ? 0 : attn_kernels_init(); }
int attn_simd_select(const char *name) { return attn_kernels_select(name); }
const char *attn_simd_name(void) { return attn_k->name; }
void attn_simd_exact(int on) { attn_kernels_exact(on); }
