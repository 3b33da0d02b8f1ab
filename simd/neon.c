// simd/neon.c - the neon kernel path (stub: scalar kernels until written).
#include "attn.h"
#include "simd/kernels.h"

const attn_kernels attn_kernels_neon = {
    .name = "neon",
    .matmul = attn_scalar_matmul,
    .attention = attn_scalar_attention,
    .rmsnorm = attn_scalar_rmsnorm,
    .layernorm = attn_scalar_layernorm,
    .gelu_tanh = attn_scalar_gelu_tanh,
    .gelu_erf = attn_scalar_gelu_erf,
    .swiglu = attn_scalar_swiglu,
    .add = attn_scalar_add,
    .softmax = attn_scalar_softmax,
    .rope = attn_scalar_rope,
    .dequant_row = attn_scalar_dequant_row,
};
