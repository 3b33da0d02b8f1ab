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
#define ATTN_Q8_0_BLOCK 32 // Q8_0: blocks of 32 weights = f16 scale + 32 x int8 (34 bytes)

// One row of the weight-type table: weights per block and bytes per block
// (F32/F16/BF16: blocks of one weight).
typedef struct { uint32_t type; const char *name; int blk, bytes; } attn_wtype_info;
// The table entry of a type attn reads, or NULL.
const attn_wtype_info *attn_wtype(uint32_t type);
// 1 for the block-quantized types (rows are whole blocks of 32 or 256).
static inline int attn_is_quant(uint32_t t) { return t != ATTN_F32 && t != ATTN_F16 && t != ATTN_BF16; }

static inline float attn_h2f(const uint8_t *p) { // f16 at p (unaligned), exact
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

// Nibble i (0..31) of a 32-weight block's qs[16]: low nibbles first.
static inline int attn_nib32(const uint8_t *qs, int i) { return i < 16 ? qs[i] & 15 : qs[i - 16] >> 4; }

// Q4_K/Q5_K 6-bit scale and min of sub-block j (0..7) from sc[12].
static inline void attn_k_scale_min(const uint8_t *sc, int j, int *s, int *m) {
    if (j < 4) { *s = sc[j] & 63; *m = sc[j + 4] & 63; }
    else { *s = (sc[j + 4] & 15) | ((sc[j - 4] >> 2) & 0x30); *m = (sc[j + 4] >> 4) | ((sc[j] >> 2) & 0x30); }
}

// 2-bit value of weight i (0..255) in Q2_K/Q3_K qs[64]: 32-byte halves, shifts 0,2,4,6.
static inline int attn_q2_at(const uint8_t *qs, int i) { return (qs[(i >> 7) * 32 + (i & 31)] >> (((i >> 5) & 3) * 2)) & 3; }

// Weights j..j+n-1 of one block b of type t (j % n == 0, n in 4, 8, 16).
static inline void attn_dq_block(const uint8_t *b, uint32_t t, int j, int n, float *out) {
    switch (t) {
    case ATTN_Q4_0: {
        float d = attn_h2f(b);
        for (int i = 0; i < n; i++) out[i] = d * (float)(attn_nib32(b + 2, j + i) - 8);
        break;
    }
    case ATTN_Q4_1: {
        float d = attn_h2f(b), m = attn_h2f(b + 2);
        for (int i = 0; i < n; i++) out[i] = d * (float)attn_nib32(b + 4, j + i) + m;
        break;
    }
    case ATTN_Q5_0: case ATTN_Q5_1: {
        int o = t == ATTN_Q5_1 ? 2 : 0;
        float d = attn_h2f(b), m = o ? attn_h2f(b + 2) : 0.0f;
        uint32_t qh;
        memcpy(&qh, b + 2 + o, 4);
        for (int i = 0; i < n; i++) {
            int q = attn_nib32(b + 6 + o, j + i) | (int)((qh >> (j + i)) & 1) << 4;
            out[i] = o ? d * (float)q + m : d * (float)(q - 16);
        }
        break;
    }
    case ATTN_Q8_0: {
        float d = attn_h2f(b);
        for (int i = 0; i < n; i++) out[i] = (float)(int8_t)b[2 + j + i] * d;
        break;
    }
    case ATTN_IQ4_NL: {
        float d = attn_h2f(b);
        for (int i = 0; i < n; i++) out[i] = d * (float)attn_iq4_kvalues[attn_nib32(b + 2, j + i)];
        break;
    }
    case ATTN_Q2_K: {
        int sc = b[j >> 4];
        float dl = attn_h2f(b + 80) * (float)(sc & 15), ml = attn_h2f(b + 82) * (float)(sc >> 4);
        for (int i = 0; i < n; i++) out[i] = dl * (float)attn_q2_at(b + 16, j + i) - ml;
        break;
    }
    case ATTN_Q3_K: {
        const uint8_t *sc = b + 96;
        int s = j >> 4, lo = s < 8 ? sc[s] & 15 : sc[s - 8] >> 4, hi = (sc[8 + (s & 3)] >> (2 * (s >> 2))) & 3;
        float dl = attn_h2f(b + 108) * (float)((int8_t)(lo | hi << 4) - 32);
        for (int i = 0; i < n; i++) {
            int k = j + i, hb = (b[k & 31] >> (k >> 5)) & 1;
            out[i] = dl * (float)(attn_q2_at(b + 32, k) - (hb ? 0 : 4));
        }
        break;
    }
    case ATTN_Q4_K: case ATTN_Q5_K: {
        int s, m, q5 = t == ATTN_Q5_K;
        attn_k_scale_min(b + 4, j >> 5, &s, &m);
        float d = attn_h2f(b) * (float)s, dm = attn_h2f(b + 2) * (float)m;
        const uint8_t *qs = b + (q5 ? 48 : 16), *qh = b + 16;
        for (int i = 0; i < n; i++) {
            int k = j + i, q = (qs[(k >> 6) * 32 + (k & 31)] >> (((k >> 5) & 1) * 4)) & 15;
            if (q5) q |= ((qh[k & 31] >> (k >> 5)) & 1) << 4;
            out[i] = d * (float)q - dm;
        }
        break;
    }
    case ATTN_Q6_K: {
        float d = attn_h2f(b + 208) * (float)(int8_t)b[192 + (j >> 4)];
        for (int i = 0; i < n; i++) {
            int k = j + i, h = k >> 7, c = (k >> 5) & 3, l = k & 31;
            int ql = (b[h * 64 + (c & 1) * 32 + l] >> ((c >> 1) * 4)) & 15;
            int qh = (b[128 + h * 32 + l] >> (2 * c)) & 3;
            out[i] = d * (float)((int8_t)(ql | qh << 4) - 32);
        }
        break;
    }
    case ATTN_IQ4_XS: {
        int s = j >> 5, lo = (b[4 + (s >> 1)] >> (4 * (s & 1))) & 15;
        uint16_t sh;
        memcpy(&sh, b + 2, 2);
        int hi = (sh >> (2 * s)) & 3;
        float dl = attn_h2f(b) * (float)((int8_t)(lo | hi << 4) - 32);
        const uint8_t *qs = b + 8 + s * 16;
        for (int i = 0; i < n; i++) {
            int l = (j + i) & 31;
            out[i] = dl * (float)attn_iq4_kvalues[l < 16 ? qs[l] & 15 : qs[l - 16] >> 4];
        }
        break;
    }
    default:
        for (int i = 0; i < n; i++) out[i] = 0.0f;
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
