"""Random Hugging Face folders of the model families llama.cpp names (gptneox,
qwen2, llama, gemma, gemma2, phi2, phi3, olmo2): each family's real config.json
keys and tensor names, small shapes but the real configs' features (head size
!= d_model/heads, GQA, partial rotary, a sliding window shorter than the
prompt, soft-caps that bite, Llama 3 rope scaling). Needs numpy.

make_folder(name, out) writes config.json, the weights (F32, BF16 or sharded
safetensors, as the case says) and the SentencePiece tokenizer.model of
tests/parity/families/ into out, and returns the case. Weights come from
numpy's legacy RandomState(seed), which numpy keeps stable across versions;
the sha256 of every weight file is in tests/parity/families/index.json, so a
changed generator is noticed before any number is compared.
"""
import json
import math
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "families")
TOKENIZER = os.path.join(DATA, "tokenizer.model")
V = 384   # the vocabulary of tokenizer.model
T = 24    # prompt length of the goldens (longer than every sliding window)

# name: (gguf arch, seed, storage, HF config). storage: f32 | bf16 | shards.
CASES = {
    "pythia": ("gptneox", 11, "f32", {
        "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "hidden_size": 64,
        "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 256, "rotary_pct": 0.25,
        "rotary_emb_base": 10000, "max_position_embeddings": 64, "layer_norm_eps": 1e-5,
        "use_parallel_residual": True, "hidden_act": "gelu", "vocab_size": V, "tie_word_embeddings": False}),
    "qwen2": ("qwen2", 12, "bf16", {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64,
        "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2, "intermediate_size": 160,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "hidden_act": "silu",
        "vocab_size": V, "tie_word_embeddings": True, "use_sliding_window": False}),
    "llama3": ("llama", 13, "shards", {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
        "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "num_hidden_layers": 2,
        "intermediate_size": 128, "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "hidden_act": "silu", "vocab_size": V, "tie_word_embeddings": True}),
    "smollm2": ("llama", 14, "f32", {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 48,
        "num_attention_heads": 3, "num_key_value_heads": 1, "num_hidden_layers": 2, "intermediate_size": 128,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "hidden_act": "silu",
        "vocab_size": V, "tie_word_embeddings": True}),
    "llama_linear": ("llama", 20, "f32", {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
        "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2, "intermediate_size": 128,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "rope_scaling": {"type": "linear", "factor": 4.0}, "hidden_act": "silu", "vocab_size": V,
        "tie_word_embeddings": False}),
    "gemma": ("gemma", 15, "f32", {
        "architectures": ["GemmaForCausalLM"], "model_type": "gemma", "hidden_size": 32,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32, "num_hidden_layers": 2,
        "intermediate_size": 128, "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", "vocab_size": V}),
    # 26 layers: llama.cpp's graph knows Gemma 2 only at 2B/9B/27B depths
    "gemma2": ("gemma2", 16, "f32", {
        "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "hidden_size": 32,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32, "num_hidden_layers": 26,
        "intermediate_size": 64, "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": 32, "sliding_window": 8,
        "attn_logit_softcapping": 4.0, "final_logit_softcapping": 5.0, "vocab_size": V}),
    "phi2": ("phi2", 17, "f32", {
        "architectures": ["PhiForCausalLM"], "model_type": "phi", "hidden_size": 64, "num_attention_heads": 4,
        "num_hidden_layers": 2, "intermediate_size": 256, "partial_rotary_factor": 0.4,
        "max_position_embeddings": 64, "layer_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "gelu_new",
        "vocab_size": V, "tie_word_embeddings": False}),
    "phi3": ("phi3", 18, "f32", {
        "architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 64, "num_attention_heads": 4,
        "num_key_value_heads": 4, "num_hidden_layers": 2, "intermediate_size": 128,
        "max_position_embeddings": 64, "original_max_position_embeddings": 64, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "sliding_window": 8, "hidden_act": "silu", "vocab_size": V,
        "tie_word_embeddings": False}),
    "olmo2": ("olmo2", 19, "f32", {
        "architectures": ["Olmo2ForCausalLM"], "model_type": "olmo2", "hidden_size": 64,
        "num_attention_heads": 4, "num_key_value_heads": 4, "num_hidden_layers": 2, "intermediate_size": 128,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 500000.0, "hidden_act": "silu",
        "vocab_size": V, "tie_word_embeddings": False}),
}


def _gen(seed):
    import numpy as np
    rs = np.random.RandomState(seed)

    def w(*shape, std=0.1):
        return (rs.standard_normal(shape) * std).astype(np.float32)

    def norm(n, one=True):  # Gemma stores w for (1 + w)
        return (float(one) + rs.standard_normal(n) * 0.1).astype(np.float32)
    return w, norm


def _weights(name, c):
    """OrderedDict HF name -> float32 array."""
    import collections
    w, norm = _gen(CASES[name][1])
    D, H, L, F = c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"], c["intermediate_size"]
    Hkv = c.get("num_key_value_heads", H)
    hd = c.get("head_dim", D // H)
    Q, KV = H * hd, Hkv * hd
    sd = collections.OrderedDict()
    mt = c["model_type"]
    if mt == "gpt_neox":
        sd["gpt_neox.embed_in.weight"] = w(V, D, std=1.0)
        for i in range(L):
            p = "gpt_neox.layers.%d." % i
            for n in ("input_layernorm", "post_attention_layernorm"):
                sd[p + n + ".weight"], sd[p + n + ".bias"] = norm(D), w(D)
            qkv = w(H, 3, hd, D, std=0.3)  # per head [q; k; v] rows, as GPT-NeoX stores them
            qkv[:, 2] /= 3
            sd[p + "attention.query_key_value.weight"] = qkv.reshape(3 * D, D)
            sd[p + "attention.query_key_value.bias"] = w(3 * D)
            sd[p + "attention.dense.weight"], sd[p + "attention.dense.bias"] = w(D, D), w(D)
            sd[p + "mlp.dense_h_to_4h.weight"], sd[p + "mlp.dense_h_to_4h.bias"] = w(F, D), w(F)
            sd[p + "mlp.dense_4h_to_h.weight"], sd[p + "mlp.dense_4h_to_h.bias"] = w(D, F), w(D)
        sd["gpt_neox.final_layer_norm.weight"], sd["gpt_neox.final_layer_norm.bias"] = norm(D), w(D)
        sd["embed_out.weight"] = w(V, D)
        return sd
    if mt == "phi":
        sd["model.embed_tokens.weight"] = w(V, D, std=1.0)
        for i in range(L):
            p = "model.layers.%d." % i
            sd[p + "input_layernorm.weight"], sd[p + "input_layernorm.bias"] = norm(D), w(D)
            for n, r, s in (("q_proj", Q, 0.3), ("k_proj", KV, 0.3), ("v_proj", KV, 0.1)):
                sd[p + "self_attn.%s.weight" % n], sd[p + "self_attn.%s.bias" % n] = w(r, D, std=s), w(r)
            sd[p + "self_attn.dense.weight"], sd[p + "self_attn.dense.bias"] = w(D, Q), w(D)
            sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"] = w(F, D), w(F)
            sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"] = w(D, F), w(D)
        sd["model.final_layernorm.weight"], sd["model.final_layernorm.bias"] = norm(D), w(D)
        sd["lm_head.weight"], sd["lm_head.bias"] = w(V, D), w(V)
        return sd
    gemma = mt.startswith("gemma")
    sd["model.embed_tokens.weight"] = w(V, D, std=0.5 if gemma else 1.0)
    for i in range(L):
        p = "model.layers.%d." % i
        if mt != "olmo2":  # OLMo-2 norms only the sub-blocks' outputs
            sd[p + "input_layernorm.weight"] = norm(D, not gemma)
        if mt == "phi3":
            qkv = w(Q + 2 * KV, D, std=0.3)
            qkv[Q + KV:] /= 3
            sd[p + "self_attn.qkv_proj.weight"] = qkv
        else:
            sd[p + "self_attn.q_proj.weight"] = w(Q, D, std=0.3)
            sd[p + "self_attn.k_proj.weight"] = w(KV, D, std=0.3)
            sd[p + "self_attn.v_proj.weight"] = w(KV, D)
            if mt == "qwen2":
                for n, r in (("q_proj", Q), ("k_proj", KV), ("v_proj", KV)):
                    sd[p + "self_attn.%s.bias" % n] = w(r, std=0.3)
            if mt == "olmo2":
                sd[p + "self_attn.q_norm.weight"], sd[p + "self_attn.k_norm.weight"] = norm(Q), norm(KV)
        sd[p + "self_attn.o_proj.weight"] = w(D, Q)
        sd[p + "post_attention_layernorm.weight"] = norm(D, not gemma)
        if mt == "gemma2":
            sd[p + "pre_feedforward_layernorm.weight"] = norm(D, False)
            sd[p + "post_feedforward_layernorm.weight"] = norm(D, False)
        if mt == "phi3":
            sd[p + "mlp.gate_up_proj.weight"] = w(2 * F, D)
        else:
            sd[p + "mlp.gate_proj.weight"], sd[p + "mlp.up_proj.weight"] = w(F, D), w(F, D)
        sd[p + "mlp.down_proj.weight"] = w(D, F)
        if mt == "olmo2":
            sd[p + "post_feedforward_layernorm.weight"] = norm(D)
    sd["model.norm.weight"] = norm(D, not gemma)
    if not c.get("tie_word_embeddings", gemma):
        sd["lm_head.weight"] = w(V, D)
    return sd


def _bf16(a):
    """float32 array -> bf16 bits (round to nearest even), as uint16."""
    import numpy as np
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def _write_safetensors(path, tensors, dtype):
    header, blobs, off = {}, [], 0
    for n, a in tensors:
        b = (_bf16(a) if dtype == "BF16" else a.astype("<f4")).tobytes()
        header[n] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def make_folder(name, out):
    """The HF folder of case name in out (created); returns (gguf arch, config)."""
    arch, seed, storage, cfg = CASES[name]
    os.makedirs(out, exist_ok=True)
    # not the case name: llama.cpp's vocabulary loader wants Phi-3's special
    # tokens in any model whose name says phi3
    cfg = dict(cfg, torch_dtype="bfloat16" if storage == "bf16" else "float32",
               _name_or_path="random-model-%d" % seed)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    shutil.copy(TOKENIZER, os.path.join(out, "tokenizer.model"))
    items = list(_weights(name, cfg).items())
    if storage == "shards":
        half = len(items) // 2
        wm = {}
        for k, part in enumerate((items[:half], items[half:])):
            fn = "model-%05d-of-00002.safetensors" % (k + 1)
            _write_safetensors(os.path.join(out, fn), part, "F32")
            wm.update({n: fn for n, _ in part})
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": wm}, f, indent=1)
    else:
        _write_safetensors(os.path.join(out, "model.safetensors"), items, "BF16" if storage == "bf16" else "F32")
    return arch, cfg


def weights_sha(folder):
    import hashlib
    h = hashlib.sha256()
    for fn in sorted(os.listdir(folder)):
        if fn.endswith(".safetensors"):
            with open(os.path.join(folder, fn), "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def prompt_ids(name):
    """T ids of the goldens, from a fixed stream per case (not numpy)."""
    import random
    r = random.Random(1000 + CASES[name][1])
    return [r.randrange(V) for _ in range(T)]
