// simd/scalar.c - the reference kernels: plain C, one loop per formula, no
// instruction-set assumptions. Every fast path is tested against these.
// The row-wise ops here (norms, activations, softmax, RoPE) are also the ones
// the fast paths use where the work is too small to matter.
#include <math.h>
#include <string.h>
#include "attn.h"
#include "simd/kernels.h"

// ---------------------------------------------------------------- weights

// Weights k..k+n-1 of a row of type wtype as f32 (quantized types: k % n == 0,
// n in 4, 8, 16; simd/quant.h).
static void weights_at(const void *row, uint32_t wtype, int k, int n, float *out) {
    for (int i = 0; i < n; i++) {
        switch (wtype) {
        case ATTN_F16: out[i] = attn_f16_to_f32(((const uint16_t *)row)[k + i]); break;
        case ATTN_BF16: out[i] = attn_bf16_to_f32(((const uint16_t *)row)[k + i]); break;
        case ATTN_F32: out[i] = ((const float *)row)[k + i]; break;
        default: attn_dq(row, wtype, k, n, out); return;
        }
    }
}

void attn_scalar_dequant_row(const void *W, uint32_t wtype, float *out, int n) {
    int step = attn_is_quant(wtype) ? 16 : 1; // quantized rows are whole blocks
    for (int k = 0; k < n; k += step) weights_at(W, wtype, k, step, out + k);
}

// C[m][n] = sum_k A[m][k] W[n][k] (+ bias[n]); one sequential sum per element
// in double (each product exact, one rounding per step and one to float at
// the end: the reference the fast paths' float sums are measured against),
// for up to 64 rows of A at a time while the row's weights are decoded 16 at
// a time on the stack.
#define SCALAR_MB 64
void attn_scalar_matmul(const float *A, int lda, const void *W, uint32_t wtype, const float *bias,
                          float *C, int ldc, int M, int K, int n0, int n1) {
    size_t row_bytes = attn_type_row_bytes(wtype, (uint64_t)K);
    float wk[16];
    double wd[16], acc[SCALAR_MB];
    for (int n = n0; n < n1; n++) {
        const void *w = (const uint8_t *)W + (size_t)n * row_bytes;
        for (int m0 = 0; m0 < M; m0 += SCALAR_MB) {
            int mn = M - m0 < SCALAR_MB ? M - m0 : SCALAR_MB;
            for (int m = 0; m < mn; m++) acc[m] = 0.0;
            for (int k0 = 0; k0 < K; k0 += 16) {
                int kn = K - k0 < 16 ? K - k0 : 16; // quantized K: whole blocks, kn = 16
                weights_at(w, wtype, k0, kn, wk);
                for (int k = 0; k < kn; k++) wd[k] = wk[k];
                for (int m = 0; m < mn; m++) {
                    const float *a = A + (size_t)(m0 + m) * lda + k0;
                    double s = acc[m];
                    for (int k = 0; k < kn; k++) s += (double)a[k] * wd[k];
                    acc[m] = s;
                }
            }
            for (int m = 0; m < mn; m++) C[(size_t)(m0 + m) * ldc + n] = (float)acc[m] + (bias ? bias[n] : 0.0f);
        }
    }
}

// ---------------------------------------------------------------- row ops

void attn_scalar_softmax(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++) if (x[i] > max) max = x[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - max); sum += x[i]; }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

// One head, causal: query i (position q0+i) sees keys 0..q0+i.
void attn_scalar_attention(const float *q, int qs, const float *k, int ks, const float *v, int vs,
                             int nq, int q0, int hd, float scale, float *probs, float *out, int os) {
    int nk = q0 + nq;
    for (int i = 0; i < nq; i++) {
        const float *qi = q + (size_t)i * qs;
        float *p = probs + (size_t)i * nk, *o = out + (size_t)i * os;
        int nvis = q0 + i + 1; // keys this query sees
        for (int j = 0; j < nvis; j++) {
            const float *kj = k + (size_t)j * ks;
            double s = 0.0; // as attn_scalar_matmul: in double
            for (int d = 0; d < hd; d++) s += (double)qi[d] * kj[d];
            p[j] = (float)s * scale;
        }
        attn_scalar_softmax(p, nvis);
        for (int j = nvis; j < nk; j++) p[j] = 0.0f;
        for (int d = 0; d < hd; d++) o[d] = 0.0f;
        for (int j = 0; j < nvis; j++) {
            const float *vj = v + (size_t)j * vs;
            for (int d = 0; d < hd; d++) o[d] += p[j] * vj[d];
        }
    }
}

// Four interleaved chains in double (products exact), then (s0 + s1) + (s2 + s3).
double attn_sumsq(const float *x, int n) {
    double s[4] = { 0, 0, 0, 0 };
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s[j] += (double)x[i + j] * x[i + j];
    for (; i < n; i++) s[i % 4] += (double)x[i] * x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

// out = x / sqrt(mean(x^2) + eps) * w   (out may be x); the mean in double
// (attn_sumsq), as llama.cpp's: a float sum over n loses digits that large
// attention scores amplify (issue 16)
void attn_scalar_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    float r = 1.0f / sqrtf((float)(attn_sumsq(x, n) / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * r * w[i];
}

// out = (x - mean) / sqrt(var + eps) * w + b, biased variance (out may be x)
void attn_scalar_layernorm(float *out, const float *x, const float *w, const float *b, int n, float eps) {
    float mean = 0.0f;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= (float)n;
    float var = 0.0f;
    for (int i = 0; i < n; i++) { float d = x[i] - mean; var += d * d; }
    var /= (float)n;
    float r = 1.0f / sqrtf(var + eps);
    for (int i = 0; i < n; i++) out[i] = (x[i] - mean) * r * w[i] + (b ? b[i] : 0.0f);
}

// 0.5 x (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3), computed as
// x / (1 + e^(-2u)) (the same function; no cancellation for x << 0)
void attn_scalar_gelu_tanh(float *x, int n) {
    const float c = 0.7978845608028654f; // sqrt(2/pi)
    for (int i = 0; i < n; i++) {
        float v = x[i];
        x[i] = v / (1.0f + expf(-2.0f * c * (v + 0.044715f * v * v * v)));
    }
}

// 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2) (no cancellation for x << 0)
void attn_scalar_gelu_erf(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = 0.5f * x[i] * erfcf(-x[i] * 0.7071067811865476f);
}

// gate = silu(gate) * up, silu(g) = g / (1 + e^-g)
void attn_scalar_swiglu(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void attn_scalar_add(float *y, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += x[i];
}

// cos and sin of pos * freqs[i], i < half, kept per thread for the last
// position: the forward pass rotates q and then k at the same position.
#define ROPE_CACHE 512
static _Thread_local struct { int pos, half; float freqs[ROPE_CACHE], c[ROPE_CACHE], s[ROPE_CACHE]; } rope_cache = { -1, 0, { 0 }, { 0 }, { 0 } };

static const float *rope_angles(int pos, const float *freqs, int half, const float **sin_out) {
    if (half > ROPE_CACHE) return NULL;
    if (rope_cache.pos != pos || rope_cache.half != half || memcmp(rope_cache.freqs, freqs, sizeof(float) * half)) {
        for (int i = 0; i < half; i++) {
            float ang = (float)pos * freqs[i];
            rope_cache.c[i] = cosf(ang);
            rope_cache.s[i] = sinf(ang);
        }
        memcpy(rope_cache.freqs, freqs, sizeof(float) * half);
        rope_cache.pos = pos;
        rope_cache.half = half;
    }
    *sin_out = rope_cache.s;
    return rope_cache.c;
}

// Rotate pairs by angle pos * freqs[i]: (a, b) -> (a cos - b sin, a sin + b cos).
void attn_scalar_rope(float *x, int n_heads, int head_dim, int rot_dims, int pos, const float *freqs,
                      int halves) {
    int half = rot_dims / 2;
    const float *sn, *cs = rope_angles(pos, freqs, half, &sn);
    for (int i = 0; i < half; i++) {
        float ang = (float)pos * freqs[i], c = cs ? cs[i] : cosf(ang), s = cs ? sn[i] : sinf(ang);
        int ia = halves ? i : 2 * i, ib = halves ? i + half : 2 * i + 1;
        for (int h = 0; h < n_heads; h++) {
            float *xh = x + (size_t)h * head_dim;
            float a = xh[ia], b = xh[ib];
            xh[ia] = a * c - b * s;
            xh[ib] = a * s + b * c;
        }
    }
}

// ---------------------------------------------------------------- normals

static uint64_t splitmix_at(uint64_t seed, uint64_t k) {
    uint64_t z = seed + (k + 1) * ATTN_SPLITMIX_GAMMA;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Box-Muller's pair from numbers x, y of the stream (attn_kernels.normals);
// simd/avx512.c makes 8 at once with these operations in this order.
static void normal_pair(uint64_t x, uint64_t y, double out[2]) {
    double u1 = (double)((x >> 11) + 1) * 0x1p-53, u2 = (double)(y >> 11) * 0x1p-53;
    // ln u1 = e ln 2 + ln m, m in [sqrt(1/2), sqrt(2))
    uint64_t b;
    memcpy(&b, &u1, 8);
    double e = (double)(b >> 52) - 1023, m;
    b = (b & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
    memcpy(&m, &b, 8);
    if (m > ATTN_SQRT2) m = m * 0.5, e = e + 1;
    double s = (m - 1) / (m + 1), z = s * s, p = attn_ln_series[0];
    for (int i = 1; i < 6; i++) p = p * z + attn_ln_series[i];
    p = p * z + 1;
    double r = sqrt(-2 * (e * ATTN_LN2 + 2 * s * p));
    // angle 2 pi u2 = k pi/2 + x, k = round(4 u2), |x| <= pi/4
    double t = 4 * u2, k = (double)(int64_t)(t + 0.5), a = (t - k) * ATTN_PI_2, aa = a * a;
    double sn = attn_sin_series[0], cs = attn_cos_series[0];
    for (int i = 1; i < 5; i++) sn = sn * aa + attn_sin_series[i];
    for (int i = 1; i < 6; i++) cs = cs * aa + attn_cos_series[i];
    sn = (sn * aa + 1) * a;
    cs = cs * aa + 1;
    int q = (int)k & 3;
    double c = q & 1 ? sn : cs, si = q & 1 ? cs : sn;
    if (q == 1 || q == 2) c = -c;
    if (q >= 2) si = -si;
    out[0] = r * c, out[1] = r * si;
}

void attn_scalar_normals(uint64_t seed, uint64_t first, size_t n, double std, float *w) {
    for (uint64_t j = first & ~1ull; j < first + n; j += 2) { // pair j / 2
        double v[2];
        normal_pair(splitmix_at(seed, j), splitmix_at(seed, j + 1), v);
        if (j >= first) w[j - first] = (float)(std * v[0]);
        if (j + 1 < first + n) w[j + 1 - first] = (float)(std * v[1]);
    }
}

const attn_kernels attn_kernels_scalar = {
    .name = "scalar",
    .matmul = attn_scalar_matmul,
    .matmul_exact = attn_scalar_matmul,
    .attention = attn_scalar_attention,
    .attention_exact = attn_scalar_attention,
    .rmsnorm = attn_scalar_rmsnorm,
    .layernorm = attn_scalar_layernorm,
    .gelu_tanh = attn_scalar_gelu_tanh,
    .gelu_erf = attn_scalar_gelu_erf,
    .swiglu = attn_scalar_swiglu,
    .add = attn_scalar_add,
    .softmax = attn_scalar_softmax,
    .rope = attn_scalar_rope,
    .dequant_row = attn_scalar_dequant_row,
    .normals = attn_scalar_normals,
};
