// attn_gguf.c - section "GGUF reader" of attn (see attn.c for
// the table of contents).
//
// The GGUF v3 reader maps the file and validates everything before anything
// is used: every key/value is walked with bounds checks, counts are checked
// against what the remaining bytes could hold (so a corrupt count never
// causes a huge allocation), tensor shapes are checked for 64-bit overflow,
// and every tensor's data must lie inside the file at an aligned offset.
#include "attn.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------- types

// The weight types attn reads: weights and bytes per block (simd/quant.h).
static const attn_wtype_info wtypes[] = {
    { ATTN_F32, "F32", 1, 4 },        { ATTN_F16, "F16", 1, 2 },         { ATTN_BF16, "BF16", 1, 2 },
    { ATTN_Q4_0, "Q4_0", 32, 18 },    { ATTN_Q4_1, "Q4_1", 32, 20 },     { ATTN_Q5_0, "Q5_0", 32, 22 },
    { ATTN_Q5_1, "Q5_1", 32, 24 },    { ATTN_Q8_0, "Q8_0", 32, 34 },     { ATTN_IQ4_NL, "IQ4_NL", 32, 18 },
    { ATTN_Q2_K, "Q2_K", 256, 84 },   { ATTN_Q3_K, "Q3_K", 256, 110 },   { ATTN_Q4_K, "Q4_K", 256, 144 },
    { ATTN_Q5_K, "Q5_K", 256, 176 },  { ATTN_Q6_K, "Q6_K", 256, 210 },   { ATTN_IQ4_XS, "IQ4_XS", 256, 136 },
};

const attn_wtype_info *attn_wtype(uint32_t type) {
    for (size_t i = 0; i < sizeof wtypes / sizeof *wtypes; i++)
        if (wtypes[i].type == type) return &wtypes[i];
    return NULL;
}

uint64_t attn_type_row_bytes(uint32_t type, uint64_t n) {
    const attn_wtype_info *w = attn_wtype(type);
    if (!w || n % (uint64_t)w->blk) return 0;
    return n / (uint64_t)w->blk * (uint64_t)w->bytes;
}

const char *attn_type_name(uint32_t type) {
    const attn_wtype_info *w = attn_wtype(type);
    if (w) return w->name;
    // ggml's other types, named so the error says what the file holds
    static const char *ggml[] = {
        [9] = "Q8_1", [15] = "Q8_K", [16] = "IQ2_XXS", [17] = "IQ2_XS", [18] = "IQ3_XXS",
        [19] = "IQ1_S", [21] = "IQ3_S", [22] = "IQ2_S",
        [24] = "I8", [25] = "I16", [26] = "I32", [27] = "I64", [28] = "F64", [29] = "IQ1_M",
        [34] = "TQ1_0", [35] = "TQ2_0",
    };
    if (type < sizeof ggml / sizeof ggml[0] && ggml[type]) return ggml[type];
    return "unknown";
}

// ---------------------------------------------------------------- reader

// A cursor over the mapped bytes; every read is bounds-checked.
typedef struct {
    const uint8_t *p, *end;
    const attn_gguf_file *f;
} cursor;

static int need(cursor *c, uint64_t n, const char *what) {
    if ((uint64_t)(c->end - c->p) < n)
        return attn_err(ATTN_EINPUT, "%s: truncated file: %s runs past the end (offset %zu)",
                        c->f->path, what, (size_t)(c->p - c->f->base));
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
    if (need(c, 4, what)) return ATTN_EINPUT;
    memcpy(v, c->p, 4);
    c->p += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
    if (need(c, 8, what)) return ATTN_EINPUT;
    memcpy(v, c->p, 8);
    c->p += 8;
    return 0;
}

static int rd_str(cursor *c, attn_gguf_str *s, const char *what) {
    uint64_t n;
    if (rd_u64(c, &n, what) || need(c, n, what)) return ATTN_EINPUT;
    s->s = (const char *)c->p;
    s->len = n;
    c->p += n;
    return 0;
}

// Byte size of one scalar value of a GGUF type (0 for string/array/unknown).
static uint64_t scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    default: return 0;
    }
}

static int gstreq(attn_gguf_str a, const char *b) {
    size_t n = strlen(b);
    return a.len == n && memcmp(a.s, b, n) == 0;
}

// Parse one value of type t at the cursor into kv (data, n, arr_type).
static int rd_value(cursor *c, attn_gguf_kv *kv, const char *key) {
    kv->data = c->p;
    kv->n = 1;
    if (kv->type == GGUF_STRING) {
        attn_gguf_str s;
        return rd_str(c, &s, key);
    }
    if (kv->type == GGUF_ARRAY) {
        uint32_t at;
        uint64_t n;
        if (rd_u32(c, &at, key) || rd_u64(c, &n, key)) return ATTN_EINPUT;
        kv->arr_type = at;
        kv->n = n;
        kv->data = c->p;
        if (at == GGUF_STRING) {
            // each element takes at least 8 bytes: check before walking
            if (n > (uint64_t)(c->end - c->p) / 8)
                return attn_err(ATTN_EINPUT, "%s: key '%s': array of %llu strings is larger than the file",
                                c->f->path, key, (unsigned long long)n);
            for (uint64_t i = 0; i < n; i++) {
                attn_gguf_str s;
                if (rd_str(c, &s, key)) return ATTN_EINPUT;
            }
            return 0;
        }
        uint64_t es = scalar_size(at);
        if (!es)
            return attn_err(ATTN_EINPUT, "%s: key '%s': unsupported array element type %u",
                            c->f->path, key, at);
        if (n > (uint64_t)(c->end - c->p) / es)
            return attn_err(ATTN_EINPUT, "%s: key '%s': array of %llu elements is larger than the file",
                            c->f->path, key, (unsigned long long)n);
        c->p += n * es;
        return 0;
    }
    uint64_t es = scalar_size(kv->type);
    if (!es) return attn_err(ATTN_EINPUT, "%s: key '%s': unknown value type %u", c->f->path, key, kv->type);
    if (need(c, es, key)) return ATTN_EINPUT;
    c->p += es;
    return 0;
}

static void key_cstr(attn_gguf_str s, char *buf, size_t n) {
    size_t m = s.len < n - 1 ? (size_t)s.len : n - 1;
    for (size_t i = 0; i < m; i++) buf[i] = (s.s[i] >= 32 && s.s[i] < 127) ? s.s[i] : '?';
    buf[m] = 0;
}

// Names in byte order (shorter first on a common prefix).
static int name_cmp(attn_gguf_str a, attn_gguf_str b) {
    int c = memcmp(a.s, b.s, a.len < b.len ? (size_t)a.len : (size_t)b.len);
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

typedef struct { attn_gguf_str name; uint64_t i; } named;
static int named_cmp(const void *a, const void *b) {
    const named *x = a, *y = b;
    int c = name_cmp(x->name, y->name);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

// f->by_name: the tensors sorted by name, so that a duplicate name is found
// and attn_gguf_find_tensor answers in O(log n) (a file of 100k tensors took half
// a minute with pairwise checks).
static int sort_names(attn_gguf_file *f) {
    uint64_t n = f->n_tensors;
    named *v = malloc((n ? n : 1) * sizeof *v);
    f->by_name = malloc((n ? n : 1) * sizeof *f->by_name);
    if (!v || !f->by_name) { free(v); return attn_err(ATTN_EFAIL, "%s: out of memory", f->path); }
    for (uint64_t i = 0; i < n; i++) v[i] = (named){ f->tensors[i].name, i };
    qsort(v, n, sizeof *v, named_cmp);
    for (uint64_t i = 0; i < n; i++) {
        f->by_name[i] = v[i].i;
        if (i && !name_cmp(v[i].name, v[i - 1].name)) {
            char key[128];
            key_cstr(v[i].name, key, sizeof key);
            free(v);
            return attn_err(ATTN_EINPUT, "%s: tensor '%s' appears twice", f->path, key);
        }
    }
    free(v);
    return 0;
}

// Magic, version and the two counts (checked against the file's size); the
// kv and tensor arrays allocated.
static int parse_header(cursor *c, attn_gguf_file *f) {
    if (f->size < 4 || memcmp(f->base, "GGUF", 4) != 0)
        return attn_err(ATTN_EINPUT, "%s: not a GGUF file (bad magic)", f->path);
    c->p += 4;
    if (rd_u32(c, &f->version, "version")) return ATTN_EINPUT;
    if (f->version != 3 && f->version != 2)
        return attn_err(ATTN_EINPUT, "%s: unsupported GGUF version %u (attn reads v2 and v3)", f->path, f->version);
    if (rd_u64(c, &f->n_tensors, "tensor count") || rd_u64(c, &f->n_kv, "key count")) return ATTN_EINPUT;
    // a key/value takes at least 8+0+4+1 bytes, a tensor entry at least 8+4+8+4+8
    uint64_t left = (uint64_t)(c->end - c->p);
    if (f->n_kv > left / 13)
        return attn_err(ATTN_EINPUT, "%s: key count %llu is impossible for a file of %zu bytes",
                        f->path, (unsigned long long)f->n_kv, f->size);
    if (f->n_tensors > left / 32)
        return attn_err(ATTN_EINPUT, "%s: tensor count %llu is impossible for a file of %zu bytes",
                        f->path, (unsigned long long)f->n_tensors, f->size);
    f->kv = calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kv);
    f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    if (!f->kv || !f->tensors) return attn_err(ATTN_EFAIL, "%s: out of memory", f->path);
    return 0;
}

// The key/value pairs; general.alignment is applied.
static int parse_kvs(cursor *c, attn_gguf_file *f) {
    char key[128];
    f->alignment = 32;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        attn_gguf_kv *kv = &f->kv[i];
        if (rd_str(c, &kv->key, "key name") || rd_u32(c, &kv->type, "key type")) return ATTN_EINPUT;
        key_cstr(kv->key, key, sizeof key);
        if (rd_value(c, kv, key)) return ATTN_EINPUT;
        if (gstreq(kv->key, "general.alignment")) {
            uint32_t a = 0;
            if (kv->type == GGUF_U32) memcpy(&a, kv->data, 4);
            if (a == 0 || (a & (a - 1)) || a > (1u << 20))
                return attn_err(ATTN_EINPUT, "%s: general.alignment must be a u32 power of two", f->path);
            f->alignment = a;
        }
    }
    return 0;
}

// One tensor directory entry: name, shape, type, offset; its size in bytes.
static int parse_tensor(cursor *c, attn_gguf_file *f, attn_gguf_tensor *t) {
    char key[128];
    if (rd_str(c, &t->name, "tensor name") || rd_u32(c, &t->n_dims, "tensor dims")) return ATTN_EINPUT;
    key_cstr(t->name, key, sizeof key);
    if (t->n_dims < 1 || t->n_dims > 4)
        return attn_err(ATTN_EINPUT, "%s: tensor '%s' has %u dimensions (1 to 4 allowed)", f->path, key, t->n_dims);
    uint64_t count = 1;
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (rd_u64(c, &t->ne[d], key)) return ATTN_EINPUT;
        if (t->ne[d] == 0 || t->ne[d] > (1ull << 40) || count > UINT64_MAX / t->ne[d])
            return attn_err(ATTN_EINPUT, "%s: tensor '%s' has an impossible shape", f->path, key);
        count *= t->ne[d];
    }
    if (rd_u32(c, &t->type, key) || rd_u64(c, &t->offset, key)) return ATTN_EINPUT;
    uint64_t rb = attn_type_row_bytes(t->type, t->ne[0]);
    if (!rb) {
        const attn_wtype_info *w = attn_wtype(t->type);
        if (w)
            return attn_err(ATTN_EINPUT, "%s: tensor '%s': %s row length %llu is not a multiple of %d",
                            f->path, key, w->name, (unsigned long long)t->ne[0], w->blk);
        return attn_err(ATTN_EINPUT, "%s: tensor '%s' has type %s (%u); attn reads F32, F16, BF16, "
                        "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL and IQ4_XS",
                        f->path, key, attn_type_name(t->type), t->type);
    }
    uint64_t rows = count / t->ne[0];
    if (rows > UINT64_MAX / rb)
        return attn_err(ATTN_EINPUT, "%s: tensor '%s': byte size overflows 64 bits", f->path, key);
    t->nbytes = rb * rows;
    return 0;
}

// Every tensor's data inside the data section, which starts at the next
// multiple of the alignment after the directory (c->p).
static int place_data(const cursor *c, attn_gguf_file *f) {
    char key[128];
    uint64_t off = (uint64_t)(c->p - f->base);
    off = (off + f->alignment - 1) / f->alignment * f->alignment;
    if (f->n_tensors && off > f->size)
        return attn_err(ATTN_EINPUT, "%s: truncated file: no tensor data section", f->path);
    uint64_t data_size = off <= f->size ? f->size - off : 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        attn_gguf_tensor *t = &f->tensors[i];
        key_cstr(t->name, key, sizeof key);
        if (t->offset % f->alignment)
            return attn_err(ATTN_EINPUT, "%s: tensor '%s': data offset %llu is not aligned to %llu",
                            f->path, key, (unsigned long long)t->offset, (unsigned long long)f->alignment);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return attn_err(ATTN_EINPUT, "%s: tensor '%s': data runs past the end of the file (truncated?)",
                            f->path, key);
        t->data = f->base + off + t->offset;
    }
    return 0;
}

static int parse(attn_gguf_file *f) {
    cursor c = { f->base, f->base + f->size, f };
    int rc = parse_header(&c, f);
    if (!rc) rc = parse_kvs(&c, f);
    for (uint64_t i = 0; !rc && i < f->n_tensors; i++) rc = parse_tensor(&c, f, &f->tensors[i]);
    if (!rc) rc = place_data(&c, f);
    return rc ? rc : sort_names(f);
}

int attn_gguf_open_mem(attn_gguf_file *f, const void *buf, size_t size, const char *name) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", name);
    f->base = buf;
    f->size = size;
    int rc = parse(f);
    if (rc) attn_gguf_close(f);
    return rc;
}

int attn_gguf_open(attn_gguf_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    // O_NONBLOCK: opening a FIFO with no writer must not hang (refused below)
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return attn_err(ATTN_EINPUT, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return attn_err(ATTN_EINPUT, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return attn_err(ATTN_EINPUT, "%s: empty file", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return attn_err(ATTN_EFAIL, "%s: mmap: %s", path, strerror(errno));
#ifdef MADV_HUGEPAGE
    // Parts of the file not yet in the page cache are then read in 2 MB
    // pages, mapped 2 MB at a time: on a VM with shadow page tables the first
    // read of each 4 KB page mapped alone costs ~0.7 us (tools/bench.sh, cold start).
    madvise(p, (size_t)st.st_size, MADV_HUGEPAGE);
#endif
    f->base = p;
    f->size = (size_t)st.st_size;
    f->mapped = 1;
    int rc = parse(f);
    if (rc) attn_gguf_close(f);
    return rc;
}

// Page-table entries for the whole mapping made in one call (a caller about
// to read every tensor: a forward pass) instead of one fault per 64 KB read.
// Only a hint: errors are ignored, and a repeat costs one page-table walk.
void attn_gguf_prefault(const attn_gguf_file *f) {
#ifdef MADV_POPULATE_READ
    if (f->mapped && f->base) madvise((void *)f->base, f->size, MADV_POPULATE_READ);
#else
    (void)f;
#endif
}

void attn_gguf_close(attn_gguf_file *f) {
    if (f->mapped && f->base) munmap((void *)f->base, f->size);
    free(f->kv);
    free(f->tensors);
    free(f->by_name);
    f->kv = NULL;
    f->tensors = NULL;
    f->by_name = NULL;
    f->base = NULL;
    f->mapped = 0;
}

// ---------------------------------------------------------------- lookups

const attn_gguf_kv *attn_gguf_find(const attn_gguf_file *f, const char *key) {
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (gstreq(f->kv[i].key, key)) return &f->kv[i];
    return NULL;
}

const attn_gguf_tensor *attn_gguf_find_tensor(const attn_gguf_file *f, const char *name) {
    attn_gguf_str want = { name, strlen(name) };
    if (!f->by_name) return NULL;
    for (uint64_t lo = 0, hi = f->n_tensors; lo < hi;) { // binary search of the sorted names
        uint64_t mid = lo + (hi - lo) / 2;
        const attn_gguf_tensor *t = &f->tensors[f->by_name[mid]];
        int c = name_cmp(t->name, want);
        if (!c) return t;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

// One numeric element of type t at p, as int64 and double.
static int num_at(uint32_t t, const uint8_t *p, int64_t *iv, double *dv) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
            float f32; uint64_t u64; int64_t i64; double f64; } v;
    uint64_t es = scalar_size(t);
    if (!es || t == GGUF_STRING || t == GGUF_ARRAY) return ATTN_EINPUT;
    memcpy(&v, p, es);
    switch (t) {
    case GGUF_U8: case GGUF_BOOL: *iv = v.u8; *dv = v.u8; break;
    case GGUF_I8: *iv = v.i8; *dv = v.i8; break;
    case GGUF_U16: *iv = v.u16; *dv = v.u16; break;
    case GGUF_I16: *iv = v.i16; *dv = v.i16; break;
    case GGUF_U32: *iv = v.u32; *dv = v.u32; break;
    case GGUF_I32: *iv = v.i32; *dv = v.i32; break;
    case GGUF_U64: *iv = v.u64 > INT64_MAX ? INT64_MAX : (int64_t)v.u64; *dv = (double)v.u64; break;
    case GGUF_I64: *iv = v.i64; *dv = (double)v.i64; break;
    // floats: only *dv is meaningful (a cast of a large float to int64 is undefined)
    case GGUF_F32: *iv = 0; *dv = v.f32; break;
    case GGUF_F64: *iv = 0; *dv = v.f64; break;
    }
    return 0;
}

static int is_int_type(uint32_t t) {
    return t == GGUF_U8 || t == GGUF_I8 || t == GGUF_U16 || t == GGUF_I16 || t == GGUF_U32 ||
           t == GGUF_I32 || t == GGUF_U64 || t == GGUF_I64;
}

int attn_gguf_get_i64(const attn_gguf_file *f, const char *key, int64_t *out) {
    const attn_gguf_kv *kv = attn_gguf_find(f, key);
    double d;
    if (!kv || !is_int_type(kv->type)) return ATTN_EINPUT;
    return num_at(kv->type, kv->data, out, &d);
}

int attn_gguf_get_f32(const attn_gguf_file *f, const char *key, float *out) {
    const attn_gguf_kv *kv = attn_gguf_find(f, key);
    int64_t i;
    double d;
    if (!kv || (kv->type != GGUF_F32 && kv->type != GGUF_F64)) return ATTN_EINPUT;
    num_at(kv->type, kv->data, &i, &d);
    *out = (float)d;
    return 0;
}

int attn_gguf_get_bool(const attn_gguf_file *f, const char *key, int *out) {
    const attn_gguf_kv *kv = attn_gguf_find(f, key);
    if (!kv || (kv->type != GGUF_BOOL && !is_int_type(kv->type))) return ATTN_EINPUT;
    int64_t i;
    double d;
    num_at(kv->type, kv->data, &i, &d);
    *out = i != 0;
    return 0;
}

int attn_gguf_get_str(const attn_gguf_file *f, const char *key, attn_gguf_str *out) {
    const attn_gguf_kv *kv = attn_gguf_find(f, key);
    if (!kv || kv->type != GGUF_STRING) return ATTN_EINPUT;
    uint64_t n;
    memcpy(&n, kv->data, 8);
    out->s = (const char *)kv->data + 8;
    out->len = n;
    return 0;
}

int attn_gguf_arr_strs(const attn_gguf_kv *kv, attn_gguf_str *out) {
    if (kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING) return ATTN_EINPUT;
    const uint8_t *p = kv->data; // validated at open
    for (uint64_t i = 0; i < kv->n; i++) {
        uint64_t n;
        memcpy(&n, p, 8);
        out[i].s = (const char *)p + 8;
        out[i].len = n;
        p += 8 + n;
    }
    return 0;
}

// Elements of a numeric array as float (f) or int32 (i), whichever is non-NULL.
static int arr_numbers(const attn_gguf_kv *kv, float *f, int32_t *i32) {
    uint64_t es = scalar_size(kv->arr_type);
    for (uint64_t i = 0; (f || i32) && i < kv->n; i++) {
        int64_t iv;
        double d;
        num_at(kv->arr_type, kv->data + i * es, &iv, &d);
        if (f) f[i] = (float)d;
        else if (i32) i32[i] = (int32_t)iv;
    }
    return 0;
}

int attn_gguf_arr_f32(const attn_gguf_kv *kv, float *out) {
    if (kv->type != GGUF_ARRAY || !scalar_size(kv->arr_type) || kv->arr_type == GGUF_BOOL) return ATTN_EINPUT;
    return arr_numbers(kv, out, NULL);
}

int attn_gguf_arr_i32(const attn_gguf_kv *kv, int32_t *out) {
    if (kv->type != GGUF_ARRAY || !is_int_type(kv->arr_type)) return ATTN_EINPUT;
    return arr_numbers(kv, NULL, out);
}
