// simd/quant.h - ggml's block-quantized weight types, decoded exactly as
// llama.cpp's reference (gguf-py gguf.quants.dequantize: every weight is
// f16 scale(s) times a small integer, in f32, one rounding per operation and
// no fused multiply-add, so the bits are the reference's).
//
// A row of K weights is K / blk blocks of `bytes` bytes (attn_wtype_info).
// attn_dq(row, type, k, n, out) decodes weights k..k+n-1 of a row, where n is
// 4, 8 or 16 and k % n == 0: such a run never straddles a block or a
// sub-block scale (the smallest sub-block is 16 weights), so the scale is
// found once per call. Everything decodes in registers or the caller's small
// buffer; no expanded copy of the weights is ever made.
//
// Block layouts (offsets in bytes; d, dmin: f16; ql/qs nibbles low then high):
//   Q4_0   32 w, 18 B: d, qs[16]             w = d * (nib - 8); w[i+16]: high nibble
//   Q4_1   32 w, 20 B: d, m, qs[16]          w = d * nib + m
//   Q5_0   32 w, 22 B: d, qh u32, qs[16]     w = d * ((nib | bit i of qh << 4) - 16)
//   Q5_1   32 w, 24 B: d, m, qh u32, qs[16]  w = d * (nib | bit << 4) + m
//   Q8_0   32 w, 34 B: d, int8[32]           w = q * d
//   IQ4_NL 32 w, 18 B: d, qs[16]             w = d * kvalues[nib]
//   Q2_K  256 w, 84 B: sc[16], qs[64], d, dmin      16 sub-blocks of 16:
//          w = (d * (sc & 15)) * q2 - dmin * (sc >> 4)
//   Q3_K  256 w, 110 B: hmask[32], qs[64], sc[12], d  w = (d * (s6 - 32)) * (q2 - 4 * !hbit)
//   Q4_K  256 w, 144 B: d, dmin, sc[12], qs[128]      8 sub-blocks of 32, 6-bit
//          scale/min pairs: w = (d * sc) * q4 - dmin * mn
//   Q5_K  256 w, 176 B: d, dmin, sc[12], qh[32], qs[128]  as Q4_K with a 5th bit
//   Q6_K  256 w, 210 B: ql[128], qh[64], sc int8[16], d   w = (d * sc) * (q6 - 32)
//   IQ4_XS 256 w, 136 B: d, sc_h u16, sc_l[4], qs[128]  w = (d * (s6 - 32)) * kvalues[nib]
#ifndef ATTN_QUANT_H
#define ATTN_QUANT_H

#include <stdint.h>
#include <string.h>

// Tensor types (ggml numbering) that attn reads.
enum {
    ATTN_F32 = 0, ATTN_F16 = 1, ATTN_Q4_0 = 2, ATTN_Q4_1 = 3, ATTN_Q5_0 = 6, ATTN_Q5_1 = 7,
    ATTN_Q8_0 = 8, ATTN_Q2_K = 10, ATTN_Q3_K = 11, ATTN_Q4_K = 12, ATTN_Q5_K = 13, ATTN_Q6_K = 14,
    ATTN_IQ4_NL = 20, ATTN_IQ4_XS = 23, ATTN_BF16 = 30,
};
#define ATTN_Q8_0_BLOCK 32
// X(type) for each quantized type: kernels keep one loop per type, so that the
// type is a constant in each and its decoding inlines.
#define ATTN_QTYPES(X) X(ATTN_Q4_0) X(ATTN_Q4_1) X(ATTN_Q5_0) X(ATTN_Q5_1) X(ATTN_Q2_K) X(ATTN_Q3_K) \
    X(ATTN_Q4_K) X(ATTN_Q5_K) X(ATTN_Q6_K) X(ATTN_IQ4_NL) X(ATTN_IQ4_XS) // Q8_0: blocks of 32 weights = f16 scale + 32 x int8 (34 bytes)

// One row of the weight-type table: weights per block and bytes per block
// (F32/F16/BF16: blocks of one weight).
typedef struct { uint32_t type; const char *name; int blk, bytes; } attn_wtype_info;
// The table entry of a type attn reads, or NULL.
const attn_wtype_info *attn_wtype(uint32_t type);
// 1 for the block-quantized types (rows are whole blocks of 32 or 256).
static inline int attn_is_quant(uint32_t t) { return t != ATTN_F32 && t != ATTN_F16 && t != ATTN_BF16; }

#define ATTN_QINLINE static inline __attribute__((always_inline))

ATTN_QINLINE float attn_h2f(const uint8_t *p) { // f16 at p (unaligned), exact
    uint16_t h;
    memcpy(&h, p, 2);
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else {
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    union { uint32_t u; float f; } v = { bits };
    return v.f;
}

static const int8_t attn_iq4_kvalues[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };

// Q4_K/Q5_K 6-bit scale and min of sub-block j (0..7) from sc[12].
ATTN_QINLINE void attn_k_scale_min(const uint8_t *sc, int j, int *s, int *m) {
    if (j < 4) { *s = sc[j] & 63; *m = sc[j + 4] & 63; }
    else { *s = (sc[j + 4] & 15) | ((sc[j - 4] >> 2) & 0x30); *m = (sc[j + 4] >> 4) | ((sc[j] >> 2) & 0x30); }
}

// attn_k_scale_min of all 8 sub-blocks at once, four bytes a (little-endian)
// word: v[0], v[1] the scales of sub-blocks 0..3, 4..7; v[2], v[3] the mins.
ATTN_QINLINE void attn_k_scales_mins(const uint8_t *sc, uint32_t v[4]) {
    uint32_t u[3];
    memcpy(u, sc, 12);
    v[0] = u[0] & 0x3f3f3f3f, v[1] = (u[2] & 0x0f0f0f0f) | ((u[0] >> 2) & 0x30303030);
    v[2] = u[1] & 0x3f3f3f3f, v[3] = ((u[2] >> 4) & 0x0f0f0f0f) | ((u[1] >> 2) & 0x30303030);
}

// Q3_K signed scale (s6 - 32) of sub-block s (0..15) from sc[12]: the low 4
// bits nibble s / 8 of sc[s % 8], the high 2 bits at 2 (s / 4) of sc[8 + s % 4].
ATTN_QINLINE int attn_q3k_scale(const uint8_t *sc, int s) {
    int lo = s < 8 ? sc[s] & 15 : sc[s - 8] >> 4, hi = (sc[8 + (s & 3)] >> (2 * (s >> 2))) & 3;
    return (int8_t)(lo | hi << 4) - 32;
}

// attn_q3k_scale of all 16 sub-blocks at once, before the - 32: s6 of
// sub-block s in byte s of the (little-endian) words v[0] (s < 8), v[1].
ATTN_QINLINE void attn_q3k_scales(const uint8_t *sc, uint64_t v[2]) {
    uint64_t x;
    uint32_t y;
    memcpy(&x, sc, 8);
    memcpy(&y, sc + 8, 4);
    const uint32_t m2 = 0x03030303u;
    v[0] = (x & 0x0f0f0f0f0f0f0f0full) | ((uint64_t)(y & m2) | (uint64_t)((y >> 2) & m2) << 32) << 4;
    v[1] = ((x >> 4) & 0x0f0f0f0f0f0f0f0full) | ((uint64_t)((y >> 4) & m2) | (uint64_t)((y >> 6) & m2) << 32) << 4;
}

// IQ4_XS signed scale (s6 - 32) of sub-block s (0..7): the low 4 bits are
// nibble s of sc_l (bytes 4..7), the high 2 bits are bits 2s of sc_h (bytes 2..3).
ATTN_QINLINE int attn_iq4xs_scale(const uint8_t *b, int s) {
    int lo = (b[4 + (s >> 1)] >> (4 * (s & 1))) & 15, sh = b[2] | b[3] << 8;
    return (int8_t)(lo | ((sh >> (2 * s)) & 3) << 4) - 32;
}

// A run of n (4, 8 or 16) weights of one block, j % n == 0, as the kernels
// decode it: for i < n, a byte
//   q = (lo[i] >> lo_sh) & lo_mask                    (unsigned bytes)
//     | ((hi[i] >> hi_sh) & hi_mask) << hi_pos          (if hi)
//     | (bit i of hbits) << 4                         (Q5_0, Q5_1)
//   q = q - bias  (wrapping), as int8;  lut: q = attn_iq4_kvalues[q]
// then the weight  d * q  (ATTN_DQ_MUL),  d * q + m  (ADD)  or  d * q - m  (SUB).
// Every field's shifts keep within a byte, so SIMD code may shift 16-bit lanes.
enum { ATTN_DQ_MUL, ATTN_DQ_ADD, ATTN_DQ_SUB };
typedef struct {
    const uint8_t *lo, *hi;
    uint32_t hbits;
    uint8_t lo_sh, lo_mask, hi_sh, hi_mask, hi_pos, bias, lut, mode;
    float d, m;
} attn_dq_run;

// The run at weight j of block b of quantized type t.
ATTN_QINLINE attn_dq_run attn_dq_at(const uint8_t *b, uint32_t t, int j) {
    attn_dq_run r = { 0 };
    r.lo_mask = 15;
    switch (t) {
    case ATTN_Q4_0: case ATTN_IQ4_NL: case ATTN_Q4_1: { // nibbles: qs[j] low, qs[j-16] high
        int o = t == ATTN_Q4_1 ? 4 : 2;
        r.lo = b + o + (j & 15), r.lo_sh = j < 16 ? 0 : 4;
        r.d = attn_h2f(b);
        if (t == ATTN_Q4_1) r.m = attn_h2f(b + 2), r.mode = ATTN_DQ_ADD;
        else if (t == ATTN_Q4_0) r.bias = 8;
        else r.lut = 1;
        break;
    }
    case ATTN_Q5_0: case ATTN_Q5_1: {
        int o = t == ATTN_Q5_1 ? 2 : 0;
        uint32_t qh;
        memcpy(&qh, b + 2 + o, 4);
        r.lo = b + 6 + o + (j & 15), r.lo_sh = j < 16 ? 0 : 4, r.hbits = qh >> j;
        r.d = attn_h2f(b);
        if (o) r.m = attn_h2f(b + 2), r.mode = ATTN_DQ_ADD;
        else r.bias = 16;
        break;
    }
    case ATTN_Q8_0:
        r.lo = b + 2 + j, r.lo_mask = 255, r.d = attn_h2f(b);
        break;
    case ATTN_Q2_K: case ATTN_Q3_K: { // 2 bits: qs[32 h + l] >> 2 s for j = 128 h + 32 s + l
        const uint8_t *qs = b + (t == ATTN_Q2_K ? 16 : 32);
        r.lo = qs + (j >> 7) * 32 + (j & 31), r.lo_sh = (uint8_t)(((j >> 5) & 3) * 2), r.lo_mask = 3;
        int s = j >> 4;
        if (t == ATTN_Q2_K) {
            r.d = attn_h2f(b + 80) * (float)(b[s] & 15), r.m = attn_h2f(b + 82) * (float)(b[s] >> 4);
            r.mode = ATTN_DQ_SUB;
        } else { // q2 - 4 where the hmask bit is 0: (q2 | hbit << 2) - 4
            r.d = attn_h2f(b + 108) * (float)attn_q3k_scale(b + 96, s);
            r.hi = b + (j & 31), r.hi_sh = (uint8_t)(j >> 5), r.hi_mask = 1, r.hi_pos = 2, r.bias = 4;
        }
        break;
    }
    case ATTN_Q4_K: case ATTN_Q5_K: { // nibbles qs[32 c + l] (>> 4 in odd sub-blocks), j = 64 c + 32 h + l
        int sc, mn, q5 = t == ATTN_Q5_K;
        attn_k_scale_min(b + 4, j >> 5, &sc, &mn);
        r.d = attn_h2f(b) * (float)sc, r.m = attn_h2f(b + 2) * (float)mn, r.mode = ATTN_DQ_SUB;
        r.lo = b + (q5 ? 48 : 16) + (j >> 6) * 32 + (j & 31), r.lo_sh = (uint8_t)(((j >> 5) & 1) * 4);
        if (q5) r.hi = b + 16 + (j & 31), r.hi_sh = (uint8_t)(j >> 5), r.hi_mask = 1, r.hi_pos = 4;
        break;
    }
    case ATTN_Q6_K: { // j = 128 h + 32 c + l: ql[64 h + 32 (c & 1) + l] >> 4 (c >> 1), qh[128 + 32 h + l] >> 2 c
        int h = j >> 7, c = (j >> 5) & 3, l = j & 31;
        r.d = attn_h2f(b + 208) * (float)(int8_t)b[192 + (j >> 4)];
        r.lo = b + h * 64 + (c & 1) * 32 + l, r.lo_sh = (uint8_t)((c >> 1) * 4);
        r.hi = b + 128 + h * 32 + l, r.hi_sh = (uint8_t)(2 * c), r.hi_mask = 3, r.hi_pos = 4, r.bias = 32;
        break;
    }
    case ATTN_IQ4_XS: { // sub-block s of 32: nibbles of qs[16 s ..], low then high
        int s = j >> 5;
        r.d = attn_h2f(b) * (float)attn_iq4xs_scale(b, s);
        r.lo = b + 8 + s * 16 + (j & 15), r.lo_sh = (j & 31) < 16 ? 0 : 4, r.lut = 1;
        break;
    }
    default: r.lo = b, r.lo_mask = 0; // (not reached: types are checked at open)
    }
    return r;
}

// Weights j..j+n-1 of one block b of type t (j % n == 0, n in 4, 8, 16).
static inline void attn_dq_block(const uint8_t *b, uint32_t t, int j, int n, float *out) {
    attn_dq_run r = attn_dq_at(b, t, j);
    for (int i = 0; i < n; i++) {
        int q = (r.lo[i] >> r.lo_sh) & r.lo_mask;
        if (r.hi) q |= ((r.hi[i] >> r.hi_sh) & r.hi_mask) << r.hi_pos;
        q |= (int)((r.hbits >> i) & 1) << 4;
        q = (int8_t)(uint8_t)(q - r.bias);
        if (r.lut) q = attn_iq4_kvalues[q];
        float w = r.d * (float)q;
        out[i] = r.mode == ATTN_DQ_ADD ? w + r.m : r.mode == ATTN_DQ_SUB ? w - r.m : w;
    }
}

// Weights per block and bytes per block of a quantized type (the table in
// attn_gguf.c says the same; this one inlines into the kernels).
static inline int attn_qblk(uint32_t t) {
    return t == ATTN_Q2_K || t == ATTN_Q3_K || t == ATTN_Q4_K || t == ATTN_Q5_K || t == ATTN_Q6_K ||
           t == ATTN_IQ4_XS ? 256 : 32;
}
static inline int attn_qbytes(uint32_t t) {
    switch (t) {
    case ATTN_Q4_0: case ATTN_IQ4_NL: return 18;
    case ATTN_Q4_1: return 20;
    case ATTN_Q5_0: return 22;
    case ATTN_Q5_1: return 24;
    case ATTN_Q8_0: return 34;
    case ATTN_Q2_K: return 84;
    case ATTN_Q3_K: return 110;
    case ATTN_Q4_K: return 144;
    case ATTN_Q5_K: return 176;
    case ATTN_Q6_K: return 210;
    case ATTN_IQ4_XS: return 136;
    default: return 0;
    }
}

// Weights k..k+n-1 of a row of quantized type t (k % n == 0, n in 4, 8, 16).
static inline void attn_dq(const uint8_t *row, uint32_t t, int k, int n, float *out) {
    int blk = attn_qblk(t);
    attn_dq_block(row + (size_t)(k / blk) * (size_t)attn_qbytes(t), t, k % blk, n, out);
}

#endif
