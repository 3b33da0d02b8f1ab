// attn_write.c - section "writers" of attn (see attn.c for the table of
// contents): atomic output files, scratch files, .npy, JSON strings, mkdir -p.
//
// Atomicity: data goes to "<dir>/.<name>.tmp.<pid>.<n>" and is renamed onto
// the final name only after every byte was written and flushed, so a reader
// (or a user after Ctrl-C) never finds a partial file under the final name.
#include "attn.h"
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

// Temporary files still open, for attn_out_cleanup (from a signal handler).
// Atomic slots: files may be opened and closed from several threads.
#define MAX_OPEN_TMP 64
static _Atomic(char *) open_tmp[MAX_OPEN_TMP];

static void track(char *tmp, int on) {
    for (int i = 0; i < MAX_OPEN_TMP; i++) {
        char *expect = on ? NULL : tmp;
        if (atomic_compare_exchange_strong(&open_tmp[i], &expect, on ? tmp : NULL)) return;
    }
}

void attn_out_cleanup(void) {
    for (int i = 0; i < MAX_OPEN_TMP; i++) {
        char *t = atomic_load(&open_tmp[i]);
        if (t) unlink(t);
    }
}

static atomic_int tmp_counter; // makes temporary names unique within the process

int attn_out_open(attn_outfile *o, const char *path) {
    memset(o, 0, sizeof *o);
    if (strlen(path) >= sizeof o->path) return attn_err(ATTN_EINPUT, "%s: path too long", path);
    snprintf(o->path, sizeof o->path, "%s", path);
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    snprintf(o->tmp, sizeof o->tmp, "%.*s.%s.tmp.%ld.%d", dir_len, path, slash ? slash + 1 : path,
             (long)getpid(), atomic_fetch_add(&tmp_counter, 1));
    track(o->tmp, 1); // before the file exists, so a signal never leaves it behind
    o->fp = fopen(o->tmp, "wb");
    if (!o->fp) {
        int err = errno;
        track(o->tmp, 0);
        return attn_err(ATTN_EFAIL, "%s: cannot write: %s", path, strerror(err));
    }
    return 0;
}

void attn_out_abort(attn_outfile *o) {
    if (o->fp) fclose(o->fp);
    o->fp = NULL;
    unlink(o->tmp);
    track(o->tmp, 0);
}

int attn_out_close(attn_outfile *o) {
    if (!o->fp) return attn_err(ATTN_EFAIL, "%s: not open", o->path);
    int bad = ferror(o->fp);
    int err = errno;
    if (fflush(o->fp) != 0) bad = 1, err = errno;
    if (fclose(o->fp) != 0) bad = 1, err = errno;
    o->fp = NULL;
    if (bad) {
        unlink(o->tmp);
        track(o->tmp, 0);
        return attn_err(ATTN_EFAIL, "%s: write failed: %s", o->path, strerror(err ? err : EIO));
    }
    if (rename(o->tmp, o->path) != 0) {
        err = errno;
        unlink(o->tmp);
        track(o->tmp, 0);
        return attn_err(ATTN_EFAIL, "%s: %s", o->path, strerror(err));
    }
    track(o->tmp, 0);
    return 0;
}

int attn_scratch_new(attn_scratch *s, const char *dir, size_t n) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0 && (double)vfs.f_bavail * vfs.f_frsize < (double)n)
        return attn_err(ATTN_EINPUT, "%s: not enough free space (%.1f MB free)", dir,
                        (double)vfs.f_bavail * vfs.f_frsize / 1e6);
    char tmp[1100];
    if (snprintf(tmp, sizeof tmp, "%s/.attn-scratch.tmp.%ld.%d", dir, (long)getpid(),
                 atomic_fetch_add(&tmp_counter, 1)) >= (int)sizeof tmp)
        return attn_err(ATTN_EINPUT, "%s: path too long", dir);
    track(tmp, 1); // a signal between open and unlink still removes it
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL, 0600), err = errno;
    if (fd >= 0) unlink(tmp); // nameless from here on: freed by the kernel at exit, however it ends
    track(tmp, 0);
    if (fd < 0) return attn_err(ATTN_EFAIL, "%s: cannot make a scratch file: %s", dir, strerror(err));
    // reserve the blocks now: a full disk is an error here, not a SIGBUS when the mapping is written
#if defined(__APPLE__)
    err = ftruncate(fd, (off_t)n) ? errno : 0; // macOS has no posix_fallocate
#else
    err = n ? posix_fallocate(fd, 0, (off_t)n) : 0;
#endif
    void *p = err ? MAP_FAILED : mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (!err && p == MAP_FAILED) err = errno;
    if (err) {
        close(fd);
        return attn_err(ATTN_EFAIL, "%s: cannot reserve a scratch file: %s", dir, strerror(err));
    }
    s->p = p, s->n = n ? n : 1, s->fd = fd;
    return 0;
}

void attn_scratch_free(attn_scratch *s) {
    if (s->p) munmap(s->p, s->n);
    if (s->fd >= 0) close(s->fd);
    s->p = NULL, s->fd = -1;
}

int attn_write_file(const char *path, const void *data, size_t n) {
    attn_outfile o;
    int rc = attn_out_open(&o, path);
    if (rc) return rc;
    if (n && fwrite(data, 1, n, o.fp) != n) {
        int err = errno;
        attn_out_abort(&o);
        return attn_err(ATTN_EFAIL, "%s: write failed: %s", path, strerror(err));
    }
    return attn_out_close(&o);
}

int attn_npy_open(attn_outfile *o, const char *path, const int64_t *dims, int nd) {
    char shape[256] = "", hdr[512];
    for (int i = 0; i < nd; i++) {
        size_t l = strlen(shape);
        snprintf(shape + l, sizeof shape - l, "%lld%s", (long long)dims[i], nd == 1 ? "," : i + 1 < nd ? ", " : "");
    }
    // magic (6) + version (2) + header length (2) + header, padded with
    // spaces to a multiple of 64 bytes and ending in '\n' (NumPy format v1.0)
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape);
    int pad = (64 - (10 + n + 1) % 64) % 64;
    memset(hdr + n, ' ', (size_t)pad);
    hdr[n + pad] = '\n';
    uint16_t hl = (uint16_t)(n + pad + 1);
    int rc = attn_out_open(o, path);
    if (rc) return rc;
    uint8_t le[2] = { (uint8_t)(hl & 0xff), (uint8_t)(hl >> 8) };
    fwrite("\x93NUMPY\x01\x00", 1, 8, o->fp);
    fwrite(le, 1, 2, o->fp);
    fwrite(hdr, 1, hl, o->fp);
    return 0;
}

int attn_write_npy_f32(const char *path, const float *data, const int64_t *dims, int nd) {
    size_t count = 1;
    for (int i = 0; i < nd; i++) count *= (size_t)dims[i];
    attn_outfile o;
    int rc = attn_npy_open(&o, path, dims, nd);
    if (rc) return rc;
    if (count && fwrite(data, sizeof(float), count, o.fp) != count) {
        int err = errno;
        attn_out_abort(&o);
        return attn_err(ATTN_EFAIL, "%s: write failed: %s", path, strerror(err));
    }
    return attn_out_close(&o);
}

// Length of a valid UTF-8 sequence at s (1-4), or 0 if invalid.
static int utf8_len(const unsigned char *s) {
    if (s[0] < 0x80) return 1;
    int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
    if (n == 0 || s[0] > 0xf4) return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (n == 3 && s[0] == 0xe0 && s[1] < 0xa0) return 0;      // overlong
    if (n == 3 && s[0] == 0xed && s[1] >= 0xa0) return 0;     // surrogates
    if (n == 4 && s[0] == 0xf0 && s[1] < 0x90) return 0;      // overlong
    if (n == 4 && s[0] == 0xf4 && s[1] >= 0x90) return 0;     // > U+10FFFF
    return n;
}

void attn_json_str(FILE *fp, const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', fp);
    while (*s) {
        if (*s == '"' || *s == '\\') { fputc('\\', fp); fputc(*s++, fp); continue; }
        if (*s < 0x20) {
            const char *esc = *s == '\n' ? "\\n" : *s == '\t' ? "\\t" : *s == '\r' ? "\\r" : NULL;
            if (esc) fputs(esc, fp);
            else fprintf(fp, "\\u%04x", *s);
            s++;
            continue;
        }
        int n = utf8_len(s);
        if (!n) { fputs("\\ufffd", fp); s++; continue; }
        fwrite(s, 1, (size_t)n, fp);
        s += n;
    }
    fputc('"', fp);
}

int attn_mkdirs(const char *dir) {
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return attn_err(ATTN_EINPUT, "%s: path too long", dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return attn_err(ATTN_EFAIL, "%s: cannot create directory: %s", buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return attn_err(ATTN_EINPUT, "%s: not a directory", dir);
    return 0;
}
