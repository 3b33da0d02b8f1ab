// attn_write.c - section "writers" of attn (see attn.c for the table of
// contents): atomic output files, scratch files, .npy, JSON strings and
// numbers (NaN as null), mkdir -p.
//
// Atomicity: data goes to "<dir>/.<name>.tmp.<pid>.<random>", made with
// O_EXCL (never opening or following what is there), and is renamed onto the
// final name only after every byte was written and flushed, so a reader (or
// a user after Ctrl-C) never finds a partial file under the final name. An
// output that is a character device or FIFO is written through; any other
// non-regular file (directory, socket, block device) is refused, never replaced.
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE // fallocate
#endif
#include "attn.h"
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <time.h>
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

// A hard-to-guess 64-bit suffix for temporary names (splitmix64 of the time,
// pid, a counter and an address). O_EXCL is what keeps them safe; this only
// makes a planted name unlikely to be hit at all.
static unsigned long long tmp_suffix(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 17) ^
                 (uint64_t)(uintptr_t)&ts ^ ((uint64_t)atomic_fetch_add(&tmp_counter, 1) * 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (unsigned long long)(z ^ (z >> 31));
}

// Create a new file: O_CREAT|O_EXCL never opens or follows what is already
// there (a planted file or symbolic link). Signals are blocked from the
// open to the tracking, so a handler removes only files we made.
static int create_tmp(char *tmp, size_t cap, const char *dir_part, int dir_len, const char *base, int flags,
                      mode_t mode) {
    for (int tries = 0; tries < 100; tries++) {
        if (snprintf(tmp, cap, "%.*s.%s.tmp.%ld.%016llx", dir_len, dir_part, base, (long)getpid(), tmp_suffix()) >=
            (int)cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        int fd = open(tmp, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode), err = errno;
        if (fd >= 0) track(tmp, 1);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (fd >= 0 || err != EEXIST) {
            errno = err;
            return fd;
        }
    }
    errno = EEXIST;
    return -1;
}

// What to do with an output path: 0 = a new or regular file, replaced
// atomically; 1 = a character device or FIFO (/dev/stdout, a pipe), written
// through; otherwise an error (a directory, socket, block device is never
// replaced). A symbolic link is followed: *real is the file it names.
static int out_target(const char *path, char *real, size_t cap) {
    struct stat st;
    snprintf(real, cap, "%s", path);
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -attn_err(ATTN_EINPUT, "%s: %s", path, strerror(errno));
    if (S_ISLNK(st.st_mode)) {
        if (stat(path, &st) != 0)
            return -attn_err(ATTN_EINPUT, "%s: a symbolic link to a missing file (not written)", path);
        char buf[PATH_MAX];
        if (S_ISREG(st.st_mode)) {
            if (!realpath(path, buf) || strlen(buf) >= cap)
                return -attn_err(ATTN_EINPUT, "%s: cannot resolve the symbolic link", path);
            snprintf(real, cap, "%s", buf);
        }
    }
    if (S_ISREG(st.st_mode)) return 0;
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) return 1;
    const char *what = S_ISDIR(st.st_mode) ? "a directory" : S_ISSOCK(st.st_mode) ? "a socket"
                       : S_ISBLK(st.st_mode) ? "a block device" : "not a regular file";
    return -attn_err(ATTN_EINPUT, "%s: is %s, not replaced (give a file name)", path, what);
}

int attn_out_open(attn_outfile *o, const char *path) {
    memset(o, 0, sizeof *o);
    if (strlen(path) >= sizeof o->path) return attn_err(ATTN_EINPUT, "%s: path too long", path);
    int kind = out_target(path, o->path, sizeof o->path);
    if (kind < 0) return ATTN_EINPUT;
    if (kind == 1) { // write through: nothing to rename, nothing to remove
        int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 || !(o->fp = fdopen(fd, "wb"))) {
            int err = errno;
            if (fd >= 0) close(fd);
            return attn_err(ATTN_EFAIL, "%s: cannot write: %s", path, strerror(err));
        }
        o->direct = 1;
        return 0;
    }
    const char *slash = strrchr(o->path, '/');
    int dir_len = slash ? (int)(slash - o->path + 1) : 0;
    int fd = create_tmp(o->tmp, sizeof o->tmp, o->path, dir_len, slash ? slash + 1 : o->path, O_WRONLY, 0666);
    if (fd < 0 || !(o->fp = fdopen(fd, "wb"))) {
        int err = errno;
        if (fd >= 0) close(fd), unlink(o->tmp), track(o->tmp, 0);
        return attn_err(ATTN_EFAIL, "%s: cannot write: %s", path, strerror(err));
    }
    return 0;
}

void attn_out_abort(attn_outfile *o) {
    if (o->fp) fclose(o->fp);
    o->fp = NULL;
    if (o->direct) return;
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
    if (o->direct) return bad ? attn_err(ATTN_EFAIL, "%s: write failed: %s", o->path, strerror(err ? err : EIO)) : 0;
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
    char tmp[1100], d[1030];
    if (snprintf(d, sizeof d, "%s/", dir) >= (int)sizeof d) return attn_err(ATTN_EINPUT, "%s: path too long", dir);
    int fd = create_tmp(tmp, sizeof tmp, d, (int)strlen(d), "attn-scratch", O_RDWR, 0600), err = errno;
    if (fd >= 0) unlink(tmp); // nameless from here on: freed by the kernel at exit, however it ends
    if (fd >= 0) track(tmp, 0);
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

// Blocks for n bytes allocated before the file is written, its size left
// as written (a hint: errors are the writes' to report). On ext4 a file
// whose blocks are allocated has no delayed allocation for a rename over an
// older file to force out (auto_da_alloc): renaming an 18.9 MB attention.npy
// into place took 8-13 ms with it, 2-4 ms without.
static void reserve_blocks(attn_outfile *o, uint64_t n) {
#if defined(__linux__) && defined(FALLOC_FL_KEEP_SIZE)
    if (!o->direct && n > 0 && n <= (uint64_t)INT64_MAX) (void)fallocate(fileno(o->fp), FALLOC_FL_KEEP_SIZE, 0, (off_t)n);
#else
    (void)o, (void)n;
#endif
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
    uint64_t bytes = 4;
    for (int i = 0; i < nd; i++) bytes *= (uint64_t)dims[i];
    reserve_blocks(o, 10 + (uint64_t)hl + bytes);
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
        uint32_t cp;
        int n = attn_utf8_decode(s, strnlen((const char *)s, 4), &cp);
        if (n < 0) { fputs("\\ufffd", fp); s++; continue; }
        fwrite(s, 1, (size_t)n, fp);
        s += n;
    }
    fputc('"', fp);
}

void attn_json_numf(FILE *fp, const char *fmt, double v) {
    if (!isfinite(v)) fputs("null", fp); // JSON has no NaN or Infinity
    else fprintf(fp, fmt, v);
}

void attn_json_num(FILE *fp, double v) { attn_json_numf(fp, "%.8g", v); }

void attn_json_scores(FILE *fp, const attn_head_scores *h) {
    fputc('{', fp);
    for (int s = 0; s < ATTN_S_N; s++) {
        fprintf(fp, "%s\"%s\": ", s ? ", " : "", attn_score_names[s]);
        attn_json_num(fp, h->s[s]);
        if (s == ATTN_S_OFFSET) {
            fputs(", \"offset_k\": ", fp);
            if (h->offset_k) fprintf(fp, "%d", h->offset_k);
            else fputs("null", fp);
        }
    }
    fputc('}', fp);
}

void attn_escape(char *out, size_t cap, const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    size_t o = 0;
    while (s < end && *s && cap) {
        char tmp[8];
        uint32_t cp;
        int n = attn_utf8_decode(s, (size_t)(end - s), &cp); // the sequence must lie inside len
        if (n < 0) n = 0;
        int take = n ? n : 1;
        if (*s == '\n') snprintf(tmp, sizeof tmp, "\\n");
        else if (*s == '\t') snprintf(tmp, sizeof tmp, "\\t");
        else if (*s == '\r') snprintf(tmp, sizeof tmp, "\\r");
        else if (*s < 0x20 || *s == 0x7f || !n) snprintf(tmp, sizeof tmp, "\\x%02x", *s);
        else if (n == 2 && s[0] == 0xc2 && s[1] < 0xa0) snprintf(tmp, sizeof tmp, "\\u%04x", s[1]); // C1 controls
        else memcpy(tmp, s, (size_t)n), tmp[n] = 0;
        size_t l = strlen(tmp);
        if (o + l + 1 > cap) break;
        memcpy(out + o, tmp, l);
        o += l;
        s += take;
    }
    if (cap) out[o] = 0;
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
