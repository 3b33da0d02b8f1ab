// attn_builtin.c - section "built-in model": the GGUF file compiled into the
// binary (see tools/model/TRAINING.md). The Makefile passes ATTN_BUILTIN_GGUF,
// the file's path, when it exists; .incbin places its bytes in read-only data.
#include "attn.h"

#ifdef ATTN_BUILTIN_GGUF
#if defined(__APPLE__)
#define BUILTIN_SECTION ".const_data"
#define SYM(x) "_" #x
#else
#define BUILTIN_SECTION ".section .rodata"
#define SYM(x) #x
#endif
__asm__(BUILTIN_SECTION "\n"
        ".balign 64\n"
        ".globl " SYM(attn_builtin_start) "\n"
        SYM(attn_builtin_start) ":\n"
        ".incbin \"" ATTN_BUILTIN_GGUF "\"\n"
        ".globl " SYM(attn_builtin_end) "\n"
        SYM(attn_builtin_end) ":\n"
        ".byte 0\n"
        ".text\n");
extern const unsigned char attn_builtin_start[], attn_builtin_end[];

const void *attn_builtin_data(size_t *size) {
    *size = (size_t)(attn_builtin_end - attn_builtin_start);
    return attn_builtin_start;
}
#else
const void *attn_builtin_data(size_t *size) {
    *size = 0;
    return NULL;
}
#endif
