#!/usr/bin/python3
"""bench_models.py - the random-weight models `make bench` runs, made once into DIR.

  gpt2s.pt, gpt2s.gguf      GPT-2-small shape (12 layers, 12 heads, d=768, vocab 50257),
                            nanoGPT's own random init saved as ckpt.pt, converted by convert.py
  cold.pt, cold.gguf        the cold-start shape (6 layers, 12 heads, d=768, vocab 8192),
                            made the same way
  stories.bin, stories.gguf stories15M shape (dim 288, 6 layers, 6 heads, vocab 32000),
                            llama2.c's model.py init written by its export.py (v0), converted
  tinyllama-f16.gguf,       TinyLlama-1.1B shape (dim 2048, 22 layers, 32 heads, 4 KV heads,
  tinyllama-q8_0.gguf       ffn 5632, vocab 32000), N(0, 0.02) weights written directly
                            (numpy) through convert.py's GGUF writer, with the Llama 2
                            SentencePiece tokenizer (../shared/models/tokenizer.model) so
                            that llama.cpp loads them too

usage: bench_models.py DIR [--skip-large]
Needs torch and numpy (Debian python3-torch, python3-numpy) and ../shared/ref.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "..", "shared", "ref")


def ref_module(folder, name):
    """Import ../shared/ref/FOLDER/NAME.py (both references call theirs 'model')."""
    sys.modules.pop(name, None)
    sys.path.insert(0, os.path.join(REF, folder))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


def convert(src, out, *extra):
    subprocess.run([sys.executable, os.path.join(HERE, "convert.py"), src, "-o", out, *extra], check=True,
                   stdout=subprocess.DEVNULL)


def nanogpt(d, name, **shape):
    out = os.path.join(d, name + ".gguf")
    if os.path.exists(out):
        return
    import torch
    nano = ref_module("nanoGPT", "model")
    torch.manual_seed(1)
    args = dict(block_size=1024, bias=True, dropout=0.0, **shape)
    m = nano.GPT(nano.GPTConfig(**args))
    ckpt = os.path.join(d, name + ".pt")
    torch.save({"model": m.state_dict(), "model_args": args}, ckpt)
    convert(ckpt, out)


def stories(d):
    out = os.path.join(d, "stories.gguf")
    if os.path.exists(out):
        return
    import torch
    llama = ref_module("llama2.c", "model")
    sys.path.insert(0, os.path.join(REF, "llama2.c"))  # export.py imports its model.py
    import export
    torch.manual_seed(1)
    m = llama.Transformer(llama.ModelArgs(dim=288, n_layers=6, n_heads=6, n_kv_heads=6, vocab_size=32000, multiple_of=32,
                              max_seq_len=256))
    binf = os.path.join(d, "stories.bin")
    export.legacy_export(m, binf)
    convert(binf, out)


def tinyllama(d):
    import numpy as np
    sys.path.insert(0, HERE)
    import convert as cv

    def encode(gtype, a):  # numpy in place of convert.py's pure-Python encoders (1.1B values)
        if gtype == cv.GGML_F32:
            return a.astype("<f4").tobytes()
        if gtype == cv.GGML_F16:
            return a.astype("<f2").tobytes()
        b = a.reshape(-1, 32)  # Q8_0: per block of 32, d = max|x| / 127, q = round(x / d)
        amax = np.abs(b).max(axis=1, keepdims=True)
        scale = (amax / 127).astype(np.float16)
        inv = np.where(scale == 0, 0, 1 / scale.astype(np.float32))
        q = np.clip(np.rint(b * inv), -127, 127).astype(np.int8)
        out = np.empty((b.shape[0], 34), np.uint8)
        out[:, :2] = scale.view(np.uint8).reshape(-1, 2)
        out[:, 2:] = q.view(np.uint8)
        return out.tobytes()
    cv.encode = encode
    cv.check_values = lambda t, a: None  # N(0, 0.02) and ones: finite in every type (its checks need lists)

    D, L, H, Hkv, F, V = 2048, 22, 32, 4, 5632, 32000
    hd = D // H
    rng = np.random.default_rng(1)
    for name, gt in (("f16", cv.GGML_F16), ("q8_0", cv.GGML_Q8_0)):
        out = os.path.join(d, "tinyllama-%s.gguf" % name)
        if os.path.exists(out):
            with open(out, "rb") as f:
                if b"tokenizer.ggml.model" in f.read(1 << 20):
                    continue  # made by an earlier run (older runs wrote no tokenizer: made again)
        kv = cv.KV()
        kv.set("general.architecture", cv.G_STR, "llama")
        kv.set("general.name", cv.G_STR, "tinyllama-shape-%s" % name)
        for k, v in (("block_count", L), ("embedding_length", D), ("attention.head_count", H),
                     ("attention.head_count_kv", Hkv), ("feed_forward_length", F), ("context_length", 2048),
                     ("rope.dimension_count", hd)):
            kv.set("llama." + k, cv.G_U32, v)
        kv.set("llama.attention.layer_norm_rms_epsilon", cv.G_F32, 1e-5)
        kv.set("llama.rope.freq_base", cv.G_F32, 10000.0)
        cv.vocab_from_sentencepiece(os.path.join(REF, "..", "models", "tokenizer.model")).write(kv)

        def t(tname, shape, gtype):
            n = int(np.prod(shape))
            ones = len(shape) == 1
            return cv.OutTensor(tname, shape, gtype,
                                (lambda n=n, ones=ones: np.ones(n, np.float32) if ones
                                 else rng.normal(0, 0.02, n).astype(np.float32)), "random")
        ts = [t("token_embd.weight", (V, D), gt), t("output_norm.weight", (D,), cv.GGML_F32),
              t("output.weight", (V, D), gt)]
        for l in range(L):
            p = "blk.%d." % l
            ts += [t(p + "attn_norm.weight", (D,), cv.GGML_F32), t(p + "attn_q.weight", (D, D), gt),
                   t(p + "attn_k.weight", (Hkv * hd, D), gt), t(p + "attn_v.weight", (Hkv * hd, D), gt),
                   t(p + "attn_output.weight", (D, D), gt), t(p + "ffn_norm.weight", (D,), cv.GGML_F32),
                   t(p + "ffn_gate.weight", (F, D), gt), t(p + "ffn_up.weight", (F, D), gt),
                   t(p + "ffn_down.weight", (D, F), gt)]
        cv.write_gguf(out, kv, ts)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    nanogpt(d, "gpt2s", n_layer=12, n_head=12, n_embd=768, vocab_size=50257)
    nanogpt(d, "cold", n_layer=6, n_head=12, n_embd=768, vocab_size=8192)
    stories(d)
    if "--skip-large" not in sys.argv:
        tinyllama(d)


if __name__ == "__main__":
    main()
