// attn_arch.c - section "architectures" of attn (see attn.c for the table of
// contents): one row per architecture (the llama.cpp general.architecture
// name, the defaults of its switches, which per-layer tensors it has) and the
// one table of per-layer tensors that the loader, the random init and `info`
// read. Adding an architecture: README "Adding an architecture".
#include "attn.h"
#include <stddef.h>
#include <string.h>

#define S_(suffix, rows, cols, init, field) { suffix, ATTN_DIM_##rows, ATTN_DIM_##cols, ATTN_INIT_##init, offsetof(attn_layer, field) }

// Order = the random init's draw order (new tensors that draw nothing, i.e.
// ONE/ZERO, may go anywhere; NORMAL/RESID ones only at the end).
const attn_tensor_spec attn_layer_tensors[] = {
    S_("attn_norm.weight", 1, D, ONE, attn_norm),                 //  0
    S_("attn_norm.bias", 1, D, ZERO, attn_norm_b),                //  1
    S_("attn_qkv.weight", QKV, D, NORMAL, wqkv),                  //  2 [q; k; v] rows
    S_("attn_qkv.bias", 1, QKV, ZERO, bqkv),                      //  3
    S_("attn_q.weight", Q, D, NORMAL, wq),                        //  4
    S_("attn_k.weight", KV, D, NORMAL, wk),                       //  5
    S_("attn_v.weight", KV, D, NORMAL, wv),                       //  6
    S_("attn_q.bias", 1, Q, ZERO, bq),                            //  7
    S_("attn_k.bias", 1, KV, ZERO, bk),                           //  8
    S_("attn_v.bias", 1, KV, ZERO, bv),                           //  9
    S_("attn_q_norm.weight", 1, Q, ONE, q_norm),                  // 10
    S_("attn_k_norm.weight", 1, KV, ONE, k_norm),                 // 11
    S_("attn_output.weight", D, Q, RESID, wo),                    // 12
    S_("attn_output.bias", 1, D, ZERO, bo),                       // 13
    S_("post_attention_norm.weight", 1, D, ONE, post_attn_norm),  // 14
    S_("ffn_norm.weight", 1, D, ONE, ffn_norm),                   // 15
    S_("ffn_norm.bias", 1, D, ZERO, ffn_norm_b),                  // 16
    S_("ffn_up.weight", UP, D, NORMAL, w_up),                     // 17 F rows, 2F when fused [gate; up]
    S_("ffn_up.bias", 1, F, ZERO, b_up),                          // 18
    S_("ffn_gate.weight", F, D, NORMAL, w_gate),                  // 19
    S_("ffn_down.weight", D, F, RESID, w_down),                   // 20
    S_("ffn_down.bias", 1, D, ZERO, b_down),                      // 21
    S_("post_ffw_norm.weight", 1, D, ONE, post_ffn_norm),         // 22
};
const int attn_n_layer_tensors = (int)(sizeof attn_layer_tensors / sizeof *attn_layer_tensors);
#undef S_

#define B_(i) (1u << (i))
// groups of the table above
#define PRE_LN (B_(0) | B_(15))             // attn_norm, ffn_norm
#define PRE_LN_B (B_(1) | B_(16))           // their biases
#define QKV_SEP (B_(4) | B_(5) | B_(6))     // attn_q/k/v.weight
#define QKV_SEP_B (B_(7) | B_(8) | B_(9))
#define QKV_ANY (B_(2) | B_(3) | QKV_SEP | QKV_SEP_B) // fused or separate, with or without biases
#define MLP_B (B_(18) | B_(21))             // ffn_up.bias, ffn_down.bias
#define OUT_W (B_(12) | B_(17) | B_(20))    // attn_output, ffn_up, ffn_down
#define POST (B_(14) | B_(22))              // post_attention_norm, post_ffw_norm

static const attn_arch_info archs[ATTN_ARCH_N] = {
    // id, gguf, models, norm, positions, mlp, parallel, qkv, embd_scale, swa_every, required, optional
    { ATTN_ARCH_GPT2, "gpt2", "GPT-2, nanoGPT", ATTN_NORM_LAYER, ATTN_POS_LEARNED, ATTN_MLP_GELU_TANH,
      ATTN_PAR_NONE, 0, 0, 0, PRE_LN | OUT_W, PRE_LN_B | QKV_ANY | B_(13) | MLP_B | B_(19) },
    { ATTN_ARCH_LLAMA, "llama", "LLaMA, Llama 3, SmolLM2, TinyLlama, llama2.c", ATTN_NORM_RMS,
      ATTN_POS_ROPE_PAIRS, ATTN_MLP_SWIGLU, ATTN_PAR_NONE, 0, 0, 0, PRE_LN | OUT_W,
      PRE_LN_B | QKV_ANY | B_(13) | MLP_B | B_(19) },
    { ATTN_ARCH_GPTNEOX, "gptneox", "Pythia, GPT-NeoX", ATTN_NORM_LAYER, ATTN_POS_ROPE_HALVES,
      ATTN_MLP_GELU_TANH, ATTN_PAR_TWO, 1, 0, 0, PRE_LN | OUT_W | B_(2), PRE_LN_B | B_(3) | B_(13) | MLP_B },
    { ATTN_ARCH_QWEN2, "qwen2", "Qwen2, Qwen2.5", ATTN_NORM_RMS, ATTN_POS_ROPE_HALVES, ATTN_MLP_SWIGLU,
      ATTN_PAR_NONE, 2, 0, 0, PRE_LN | OUT_W | QKV_SEP | B_(19), QKV_SEP_B },
    { ATTN_ARCH_GEMMA, "gemma", "Gemma", ATTN_NORM_RMS, ATTN_POS_ROPE_HALVES, ATTN_MLP_GEGLU,
      ATTN_PAR_NONE, 2, 1, 0, PRE_LN | OUT_W | QKV_SEP | B_(19), 0 },
    { ATTN_ARCH_GEMMA2, "gemma2", "Gemma 2", ATTN_NORM_RMS, ATTN_POS_ROPE_HALVES, ATTN_MLP_GEGLU,
      ATTN_PAR_NONE, 2, 1, 2, PRE_LN | OUT_W | QKV_SEP | B_(19) | POST, 0 },
    { ATTN_ARCH_PHI2, "phi2", "Phi-2", ATTN_NORM_LAYER, ATTN_POS_ROPE_HALVES, ATTN_MLP_GELU_TANH,
      ATTN_PAR_SHARED, 0, 0, 0, B_(0) | OUT_W, B_(1) | QKV_ANY | B_(13) | MLP_B },
    { ATTN_ARCH_PHI3, "phi3", "Phi-3", ATTN_NORM_RMS, ATTN_POS_ROPE_HALVES, ATTN_MLP_SWIGLU_FUSED,
      ATTN_PAR_NONE, 0, 0, 1, PRE_LN | OUT_W, B_(2) | QKV_SEP },
    { ATTN_ARCH_OLMO2, "olmo2", "OLMo-2", ATTN_NORM_RMS, ATTN_POS_ROPE_HALVES, ATTN_MLP_SWIGLU,
      ATTN_PAR_NONE, 2, 0, 0, OUT_W | QKV_SEP | B_(19) | B_(10) | B_(11) | POST, 0 },
};
#undef B_

const attn_arch_info *attn_arch_get(attn_arch a) {
    return (unsigned)a < ATTN_ARCH_N ? &archs[a] : NULL;
}

const attn_arch_info *attn_arch_find(const char *gguf, size_t len) {
    for (int i = 0; i < ATTN_ARCH_N; i++)
        if (strlen(archs[i].gguf) == len && !memcmp(archs[i].gguf, gguf, len)) return &archs[i];
    return NULL;
}

int attn_dim(const attn_config *c, int code) {
    int q = c->n_head * c->head_dim, kv = c->n_head_kv * c->head_dim;
    switch (code) {
    case ATTN_DIM_D: return c->n_embd;
    case ATTN_DIM_Q: return q;
    case ATTN_DIM_KV: return kv;
    case ATTN_DIM_QKV: return q + 2 * kv;
    case ATTN_DIM_F: return c->n_ff;
    case ATTN_DIM_UP: return c->mlp == ATTN_MLP_SWIGLU_FUSED ? 2 * c->n_ff : c->n_ff;
    default: return 1;
    }
}
