"""Random models built with the reference implementations in ../shared/ref/
(nanoGPT's and llama2.c's model.py, llama2.c's export.py), saved the way those
projects save them, plus Hugging Face folders written from the same weights
with HF's tensor names and layouts. Used by tests/parity/t_parity.py and
tests/convert/t_convert*.py; needs torch and numpy (Debian python3-torch, /usr/bin/python3).

Attention probabilities are not returned by either reference, so capture()
registers forward hooks on the reference attention modules and recomputes the
probabilities from each module's own weights and inputs.
"""
import contextlib
import importlib.util
import io
import json
import math
import os
import struct
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REF = os.path.join(ROOT, "..", "shared", "ref")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    with contextlib.redirect_stdout(io.StringIO()):
        spec.loader.exec_module(mod)
    return mod


def refs_missing():
    for p in ("nanoGPT/model.py", "llama2.c/model.py", "llama2.c/export.py"):
        if not os.path.exists(os.path.join(REF, p)):
            return "../shared/ref/%s not found" % p
    return None


if refs_missing():  # an ImportError, so that a test prints SKIP
    raise ImportError(refs_missing())
nanogpt = _load("ref_nanogpt_model", os.path.join(REF, "nanoGPT", "model.py"))
llama = _load("ref_llama2c_model", os.path.join(REF, "llama2.c", "model.py"))
sys.modules["model"] = llama  # export.py does `from model import ModelArgs, Transformer`
export = _load("ref_llama2c_export", os.path.join(REF, "llama2.c", "export.py"))
del sys.modules["model"]


def quiet(fn, *a, **k):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*a, **k)


# ---------------------------------------------------------------- nanoGPT


def rope_rotate(x, theta, mode):
    """RoPE on (B, nh, T, hs) in float64: mode 'pairs' rotates (2i, 2i+1),
    'halves' rotates (i, i + hs/2) (rotate_half, GPT-NeoX / HF style)."""
    T, hs = x.shape[-2], x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, hs, 2, dtype=torch.float64) / hs))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]  # (T, hs/2)
    cos, sin = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
    if mode == "pairs":
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
    a, b = x[..., :hs // 2], x[..., hs // 2:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class RopeAttention(nanogpt.CausalSelfAttention):
    """nanoGPT's attention with RoPE on q and k (a 'GPTMini'-style model)."""

    def qk(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        return rope_rotate(q, self.rope_theta, self.rope_mode), rope_rotate(k, self.rope_theta, self.rope_mode), v

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.qk(x)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).tril().logical_not(), float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class NoPositions(torch.nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.n_embd = n_embd

    def forward(self, pos):
        return torch.zeros(pos.shape[0], self.n_embd)


def perturb(model, seed):
    """Random norms/biases (defaults are ones/zeros) and larger q/k weights so
    attention is far from uniform."""
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "ln" in name or "norm" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 2:
                p.mul_(2.0)


def scale_rows(w, std):
    """Rescales a weight to standard deviation std (in place)."""
    w.mul_(std / w.std())


# q and k weights get std QK_STD/sqrt(dim): with unit-RMS normalised inputs, q and
# k entries then have std ~QK_STD and scores q.k/sqrt(hd) std ~QK_STD^2 = 3, so
# attention is clearly peaked but not saturated (which would hide errors).
QK_STD = 1.7


def make_nanogpt(seed=0, n_layer=2, n_head=4, n_embd=64, block_size=16, vocab_size=97, bias=True,
                 tied=True, rope=None, rope_theta=10000.0):
    torch.manual_seed(seed)
    cfg = nanogpt.GPTConfig(block_size=block_size, vocab_size=vocab_size, n_layer=n_layer, n_head=n_head,
                            n_embd=n_embd, dropout=0.0, bias=bias)
    m = quiet(nanogpt.GPT, cfg)
    if not tied:
        m.lm_head.weight = torch.nn.Parameter(0.05 * torch.randn(vocab_size, n_embd))
    perturb(m, seed)
    with torch.no_grad():
        for blk in m.transformer.h:
            scale_rows(blk.attn.c_attn.weight[:n_embd], QK_STD / math.sqrt(n_embd))
            scale_rows(blk.attn.c_attn.weight[n_embd:2 * n_embd], QK_STD / math.sqrt(n_embd))
            if rope:
                blk.attn.__class__ = RopeAttention
                blk.attn.rope_mode, blk.attn.rope_theta = rope, rope_theta
    if rope:
        m.transformer.wpe = NoPositions(n_embd)
    m.eval()
    return m


def nanogpt_args(m):
    c = m.config
    return dict(n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd, block_size=c.block_size, bias=c.bias,
                vocab_size=c.vocab_size, dropout=c.dropout)


def save_nanogpt(m, path, orig_mod=False, with_optimizer=False):
    """As nanoGPT's train.py saves: {'model', 'optimizer', 'model_args', 'iter_num', 'best_val_loss', 'config'}."""
    sd = m.state_dict()
    if orig_mod:  # what torch.compile'd models save
        sd = type(sd)(("_orig_mod." + k, v) for k, v in sd.items())
    ckpt = {"model": sd, "model_args": nanogpt_args(m), "iter_num": 5, "best_val_loss": torch.tensor(3.25),
            "config": {"dataset": "test", "compile": orig_mod, "dtype": "float32"}}
    if with_optimizer:
        opt = torch.optim.AdamW(m.parameters(), lr=0.0)
        m.zero_grad()
        m(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long))[1].backward()
        opt.step()
        m.zero_grad()
        ckpt["optimizer"] = opt.state_dict()
    torch.save(ckpt, path)


# ---------------------------------------------------------------- llama2.c


def make_llama(seed=0, dim=64, n_layers=2, n_heads=4, n_kv_heads=None, vocab_size=97, max_seq_len=16,
               hidden_dim=None, tied=True):
    torch.manual_seed(seed)
    args = llama.ModelArgs(dim=dim, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads,
                           vocab_size=vocab_size, hidden_dim=hidden_dim, multiple_of=16, max_seq_len=max_seq_len,
                           dropout=0.0)
    m = quiet(llama.Transformer, args)
    if not tied:
        m.output.weight = torch.nn.Parameter(0.05 * torch.randn(vocab_size, dim))
    perturb(m, seed)
    with torch.no_grad():
        for layer in m.layers:
            scale_rows(layer.attention.wq.weight, QK_STD / math.sqrt(dim))
            scale_rows(layer.attention.wk.weight, QK_STD / math.sqrt(dim))
    m.eval()
    return m


def save_llama_bin(m, path, version):
    """llama2.c's own export.py: v0 legacy_export, v1 version1_export, v2 version2_export."""
    vocab = m.params.vocab_size
    try:
        quiet([export.legacy_export, export.version1_export, export.version2_export][version], m, path)
    finally:
        m.params.vocab_size = vocab  # legacy_export negates it for a separate classifier


def save_llama_ckpt(m, path):
    """As llama2.c's train.py saves."""
    p = m.params
    margs = dict(dim=p.dim, n_layers=p.n_layers, n_heads=p.n_heads, n_kv_heads=p.n_kv_heads,
                 vocab_size=p.vocab_size, multiple_of=p.multiple_of, max_seq_len=p.max_seq_len, dropout=p.dropout)
    torch.save({"model": m.state_dict(), "model_args": margs, "iter_num": 1, "best_val_loss": 9.0,
                "config": {}}, path)


# ---------------------------------------------------------------- Hugging Face folders


def write_safetensors(path, tensors, dtype="F32"):
    """{name: float32 numpy array} -> safetensors (8-byte header length, JSON header,
    data), weights stored as dtype F32, F16 or BF16 (rounded by torch)."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        t = torch.from_numpy(np.ascontiguousarray(a))
        dt = dtype if name.endswith(".weight") and a.ndim == 2 else "F32"
        t = t.to({"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[dt])
        b = t.view(torch.int16 if dt != "F32" else torch.int32).numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def _np(t):
    return t.detach().cpu().numpy().astype(np.float32)


def hf_gpt2_tensors(m):
    """nanoGPT (bias=True) weights under HF GPT-2's names; Conv1D stores [in, out]."""
    c = m.config
    out = {"wte.weight": _np(m.transformer.wte.weight), "wpe.weight": _np(m.transformer.wpe.weight)}
    for i, b in enumerate(m.transformer.h):
        p = "h.%d." % i
        out[p + "ln_1.weight"], out[p + "ln_1.bias"] = _np(b.ln_1.weight), _np(b.ln_1.bias)
        out[p + "attn.bias"] = np.tril(np.ones((c.block_size, c.block_size), np.float32))[None, None]
        out[p + "attn.c_attn.weight"], out[p + "attn.c_attn.bias"] = _np(b.attn.c_attn.weight).T, _np(b.attn.c_attn.bias)
        out[p + "attn.c_proj.weight"], out[p + "attn.c_proj.bias"] = _np(b.attn.c_proj.weight).T, _np(b.attn.c_proj.bias)
        out[p + "ln_2.weight"], out[p + "ln_2.bias"] = _np(b.ln_2.weight), _np(b.ln_2.bias)
        out[p + "mlp.c_fc.weight"], out[p + "mlp.c_fc.bias"] = _np(b.mlp.c_fc.weight).T, _np(b.mlp.c_fc.bias)
        out[p + "mlp.c_proj.weight"], out[p + "mlp.c_proj.bias"] = _np(b.mlp.c_proj.weight).T, _np(b.mlp.c_proj.bias)
    out["ln_f.weight"], out["ln_f.bias"] = _np(m.transformer.ln_f.weight), _np(m.transformer.ln_f.bias)
    tied = m.lm_head.weight is m.transformer.wte.weight
    if not tied:
        out["lm_head.weight"] = _np(m.lm_head.weight)
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": c.n_embd, "n_layer": c.n_layer,
           "n_head": c.n_head, "n_positions": c.block_size, "n_ctx": c.block_size, "vocab_size": c.vocab_size,
           "layer_norm_epsilon": 1e-5, "activation_function": "gelu", "tie_word_embeddings": tied,
           "bos_token_id": 0, "eos_token_id": 0}
    return out, cfg


def save_hf_gpt2(m, folder, fmt="safetensors"):
    os.makedirs(folder, exist_ok=True)
    tensors, cfg = hf_gpt2_tensors(m)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f)
    if fmt == "safetensors":
        write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    else:  # pytorch_model.bin of a GPT2LMHeadModel: "transformer." prefix, lm_head tied to wte
        sd = {"transformer." + k: torch.from_numpy(v.copy()) for k, v in tensors.items() if k != "lm_head.weight"}
        sd["lm_head.weight"] = sd["transformer.wte.weight"] if "lm_head.weight" not in tensors else \
            torch.from_numpy(tensors["lm_head.weight"])
        torch.save(sd, os.path.join(folder, "pytorch_model.bin"))


def hf_permute(w, n_heads, dim1, dim2):
    """HF's convert_llama_weights_to_hf permute (interleaved pairs -> rotate-half), as export.py's hf_export."""
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def hf_llama_tensors(m):
    p = m.params
    H, Hkv = p.n_heads, p.n_kv_heads or p.n_heads
    hd = p.dim // H
    out = {"model.embed_tokens.weight": _np(m.tok_embeddings.weight), "model.norm.weight": _np(m.norm.weight)}
    for i, l in enumerate(m.layers):
        q = "model.layers.%d." % i
        a = l.attention
        out[q + "input_layernorm.weight"] = _np(l.attention_norm.weight)
        out[q + "self_attn.q_proj.weight"] = _np(hf_permute(a.wq.weight, H, H * hd, p.dim))
        out[q + "self_attn.k_proj.weight"] = _np(hf_permute(a.wk.weight, Hkv, Hkv * hd, p.dim))
        out[q + "self_attn.v_proj.weight"] = _np(a.wv.weight)
        out[q + "self_attn.o_proj.weight"] = _np(a.wo.weight)
        out[q + "self_attn.rotary_emb.inv_freq"] = np.zeros(hd // 2, np.float32)
        out[q + "post_attention_layernorm.weight"] = _np(l.ffn_norm.weight)
        out[q + "mlp.gate_proj.weight"] = _np(l.feed_forward.w1.weight)
        out[q + "mlp.down_proj.weight"] = _np(l.feed_forward.w2.weight)
        out[q + "mlp.up_proj.weight"] = _np(l.feed_forward.w3.weight)
    tied = m.output.weight is m.tok_embeddings.weight
    if not tied:
        out["lm_head.weight"] = _np(m.output.weight)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": p.dim,
           "intermediate_size": m.layers[0].feed_forward.w1.weight.shape[0], "num_hidden_layers": p.n_layers,
           "num_attention_heads": H, "num_key_value_heads": Hkv, "max_position_embeddings": p.max_seq_len,
           "rms_norm_eps": p.norm_eps, "rope_theta": 10000.0, "vocab_size": p.vocab_size, "hidden_act": "silu",
           "tie_word_embeddings": tied, "rope_scaling": None, "bos_token_id": 1, "eos_token_id": 2}
    return out, cfg


def save_hf_llama(m, folder, shards=1, dtype="F32"):
    """model.safetensors, or `shards` files with model.safetensors.index.json;
    2-D weights stored as dtype (F32, F16, BF16)."""
    os.makedirs(folder, exist_ok=True)
    tensors, cfg = hf_llama_tensors(m)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f)
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), tensors, dtype)
        return
    names = list(tensors)
    wm = {}
    for s in range(shards):
        fn = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
        part = {n: tensors[n] for n in names[s::shards]}
        write_safetensors(os.path.join(folder, fn), part, dtype)
        wm.update({n: fn for n in part})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, f)


# ---------------------------------------------------------------- float64 forward with attention capture


def _nanogpt_probs(attn, x):
    B, T, C = x.size()
    if isinstance(attn, RopeAttention):
        q, k, _ = attn.qk(x)
    else:
        q, k, _ = attn.c_attn(x).split(attn.n_embd, dim=2)
        q = q.view(B, T, attn.n_head, C // attn.n_head).transpose(1, 2)
        k = k.view(B, T, attn.n_head, C // attn.n_head).transpose(1, 2)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
    att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).tril().logical_not(), float("-inf"))
    return F.softmax(att, dim=-1)[0]  # (nh, T, T)


def _llama_probs(attn, x, cos, sin):
    B, T, _ = x.shape
    xq = attn.wq(x).view(B, T, attn.n_local_heads, attn.head_dim)
    xk = attn.wk(x).view(B, T, attn.n_local_kv_heads, attn.head_dim)
    xq, xk = llama.apply_rotary_emb(xq, xk, cos, sin)
    xk = llama.repeat_kv(xk, attn.n_rep)
    xq, xk = xq.transpose(1, 2), xk.transpose(1, 2)
    s = torch.matmul(xq, xk.transpose(2, 3)) / math.sqrt(attn.head_dim)
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).tril().logical_not(), float("-inf"))
    return F.softmax(s, dim=-1)[0]


def reference_forward(m, ids):
    """float64 forward of a reference model: (attention [L,H,T,T], logits [T,V]) as numpy float64.
    Logits for every position come from passing targets, as both references require."""
    m = m.double()
    probs = []
    hooks = []
    if isinstance(m, nanogpt.GPT):
        for blk in m.transformer.h:
            hooks.append(blk.attn.register_forward_hook(lambda mod, inp, out: probs.append(_nanogpt_probs(mod, inp[0]))))
    else:
        # llama2.c's TransformerBlock calls attention.forward() directly, which
        # bypasses module hooks: wrap each module's forward instead.
        for layer in m.layers:
            attn = layer.attention

            def hooked(x, cos, sin, attn=attn, orig=attn.forward):
                probs.append(_llama_probs(attn, x, cos, sin))
                return orig(x, cos, sin)

            attn.forward = hooked
            hooks.append(types.SimpleNamespace(remove=lambda attn=attn: delattr(attn, "forward")))
    idx = torch.tensor([ids], dtype=torch.long)
    try:
        with torch.no_grad():
            out = m(idx, idx)
    finally:
        for h in hooks:
            h.remove()
        m.float()
    if len(probs) != (len(m.transformer.h) if isinstance(m, nanogpt.GPT) else len(m.layers)):
        raise RuntimeError("attention hooks saw %d layers" % len(probs))
    logits = out[0] if isinstance(out, tuple) else out
    return torch.stack(probs).numpy(), logits[0].numpy()
