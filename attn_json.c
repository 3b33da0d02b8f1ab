// attn_json.c - the one JSON reader: a whole document into a flat node
// array in one pass (linear time, nesting bounded), lookups by key, string
// values unescaped. Used for tokenizer.huggingface.json and tokens.json.
#include "attn.h"

#include <stdlib.h>
#include <string.h>

#define JSON_DEPTH 128

static int json_grow(attn_json *j) {
    if (j->n < j->cap) return 0;
    size_t cap = j->cap ? 2 * j->cap : 64;
    attn_json_node *p = realloc(j->node, cap * sizeof *p);
    if (!p) return attn_err(ATTN_EFAIL, "json: out of memory");
    j->node = p, j->cap = cap;
    return 0;
}

static size_t json_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

// The end of the scalar at s[i] (string with its quotes, number, literal); 0 if malformed.
static size_t json_scalar_end(const char *s, size_t n, size_t i, uint8_t *type) {
    if (s[i] == '"') {
        *type = ATTN_JSON_STR;
        for (i++; i < n && s[i] != '"'; i++)
            if (s[i] == '\\') i++;
        return i < n ? i + 1 : 0;
    }
    static const char *const lit[] = {"null", "true", "false"};
    for (int k = 0; k < 3; k++)
        if (n - i >= strlen(lit[k]) && !memcmp(s + i, lit[k], strlen(lit[k]))) {
            *type = k ? ATTN_JSON_BOOL : ATTN_JSON_NULL;
            return i + strlen(lit[k]);
        }
    size_t a = i;
    while (i < n && strchr("+-0123456789.eE", s[i]) && s[i]) i++;
    *type = ATTN_JSON_NUM;
    return i > a ? i : 0;
}

// Containers open and close on a stack of node indices; each node links to
// its next sibling, so a parent's children are first, next, next...
int attn_json_parse(attn_json *j, const char *s, size_t n) {
    memset(j, 0, sizeof *j);
    int32_t stack[JSON_DEPTH], last[JSON_DEPTH]; // open containers, their last child
    int depth = 0, rc = 0;
    size_t i = json_ws(s, n, 0);
    while (!rc && i < n) {
        char c = s[i];
        if (c == ',' || c == ':') { i = json_ws(s, n, i + 1); continue; }
        if (c == ']' || c == '}') {
            if (!depth || (j->node[stack[depth - 1]].type == ATTN_JSON_ARR) != (c == ']')) break;
            depth--, i = json_ws(s, n, i + 1);
            if (!depth) break;
            continue;
        }
        if ((rc = json_grow(j))) break;
        int32_t id = (int32_t)j->n++;
        attn_json_node *x = &j->node[id];
        *x = (attn_json_node){0, -1, -1, 0, s + i, 0};
        size_t e = i + 1;
        if (c == '[' || c == '{') x->type = c == '[' ? ATTN_JSON_ARR : ATTN_JSON_OBJ;
        else if (!(e = json_scalar_end(s, n, i, &x->type))) break;
        x->len = e - i;
        if (depth) {
            attn_json_node *p = &j->node[stack[depth - 1]];
            if (last[depth - 1] < 0) p->first = id;
            else j->node[last[depth - 1]].next = id;
            last[depth - 1] = id, p->n++;
        } else if (id) break; // a second value at the top
        if (x->type == ATTN_JSON_ARR || x->type == ATTN_JSON_OBJ) {
            if (depth == JSON_DEPTH) break;
            stack[depth] = id, last[depth++] = -1;
        } else if (!depth) {
            i = json_ws(s, n, e);
            break;
        }
        i = json_ws(s, n, e);
    }
    if (!rc && (depth || !j->n || json_ws(s, n, i) < n))
        rc = attn_err(ATTN_EINPUT, "json: malformed near byte %zu", i);
    if (rc) attn_json_free(j);
    return rc;
}

void attn_json_free(attn_json *j) {
    free(j->node);
    memset(j, 0, sizeof *j);
}

// An object's members are key, value, key, value... among its children.
int32_t attn_json_get(const attn_json *j, int32_t obj, const char *key) {
    if (obj < 0 || j->node[obj].type != ATTN_JSON_OBJ) return -1;
    size_t kn = strlen(key);
    for (int32_t k = j->node[obj].first; k >= 0 && j->node[k].next >= 0; k = j->node[j->node[k].next].next) {
        const attn_json_node *x = &j->node[k];
        if (x->type == ATTN_JSON_STR && x->len == kn + 2 && !memcmp(x->s + 1, key, kn)) return x->next;
    }
    return -1;
}

// Exactly 4 hex digits at p (before end) into *v.
static int hex4(const char *p, const char *end, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++, p++) {
        int d = p >= end ? -1 : *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
              : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : -1;
        if (d < 0) return 0;
        *v = *v << 4 | (unsigned)d;
    }
    return 1;
}

size_t attn_json_unescape(char *out, const char *p, size_t n) {
    const char *end = p + n;
    char *o = out;
    while (p < end) {
        if (*p != '\\') { *o++ = *p++; continue; }
        if (++p == end) break; // a backslash at the end
        char e = *p++;
        if (e == 'u') {
            unsigned c = 0, c2 = 0;
            if (!hex4(p, end, &c)) break;
            p += 4;
            if (c >= 0xD800 && c < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, end, &c2) &&
                c2 >= 0xDC00 && c2 < 0xE000)
                c = 0x10000 + ((c - 0xD800) << 10) + (c2 - 0xDC00), p += 6;
            o += attn_utf8_encode(o, c >= 0xD800 && c < 0xE000 ? 0xFFFD : c);
        } else *o++ = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : e;
    }
    *o = 0;
    return (size_t)(o - out);
}

char *attn_json_string(const attn_json *j, int32_t node, size_t *len) {
    if (node < 0 || j->node[node].type != ATTN_JSON_STR) return NULL;
    const attn_json_node *x = &j->node[node];
    char *out = malloc(x->len); // escapes never grow; the quotes leave room for the NUL
    if (!out) return NULL;
    size_t k = attn_json_unescape(out, x->s + 1, x->len - 2);
    if (len) *len = k;
    return out;
}

int attn_json_bool(const attn_json *j, int32_t node, int dflt) {
    if (node < 0 || j->node[node].type != ATTN_JSON_BOOL) return dflt;
    return j->node[node].s[0] == 't';
}

int attn_json_is(const attn_json *j, int32_t node, const char *str) {
    size_t k = strlen(str);
    return node >= 0 && j->node[node].type == ATTN_JSON_STR && j->node[node].len == k + 2 &&
           !memcmp(j->node[node].s + 1, str, k);
}
