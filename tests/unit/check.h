// tests/unit/check.h - the tiny test protocol shared by the C tests: each check
// prints "PASS <name>" or "FAIL <name>: <why>"; tests/run.sh counts them.
#ifndef ATTN_CHECK_H
#define ATTN_CHECK_H
#include <stdio.h>
#include <stdarg.h>

static int check_failures;

// check(cond, name, fmt, ...): the message is printed only on failure.
static inline void check(int ok, const char *name, const char *fmt, ...) {
    if (ok) { printf("PASS %s\n", name); return; }
    check_failures++;
    printf("FAIL %s: ", name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}
static inline void skip(const char *name, const char *why) { printf("SKIP %s: %s\n", name, why); }
#define CHECK_EXIT() return check_failures ? 1 : 0
#endif
