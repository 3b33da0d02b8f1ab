// attn_err.c - section "errors" of attn (see attn.c for the table of
// contents): the calling thread's last error message.
#include "attn.h"
#include <stdarg.h>
#include <stdio.h>

static _Thread_local char err_buf[1024];

const char *attn_errmsg(void) { return err_buf[0] ? err_buf : "unknown error"; }

int attn_err(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return code;
}
