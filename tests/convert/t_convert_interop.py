"""Interop: GGUF files written by tools/convert.py parse with an independent
reader, npm @huggingface/gguf (`cd tests && npm install`), with the expected
architecture keys and types, tensor names, shapes, ggml types and aligned
offsets; F32 tensor bytes at the offsets it reports are the source's values.

Models: llama2.c .bin files written here with the standard library (every
--dtype), and, when torch is present, a nanoGPT ckpt.pt and a Hugging Face
GPT-2 folder built with the reference code. Tokenizers: ../shared/models.
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from testlib import MODELS, ROOT, convert, done, guarded, reference_models, result, scratch, skip
import gguf_read  # tests/parity/, on the path testlib sets
from llama2c_bin import write_llama2c_v1

DUMP = os.path.join(ROOT, "tests", "parity", "gguf_dump.js")
G_U32, G_I32, G_F32, G_BOOL, G_STR, G_ARR = 4, 5, 6, 7, 8, 9


def npm_dump(path):
    r = subprocess.run(["node", DUMP, path], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("@huggingface/gguf: " + r.stderr.strip())
    return json.loads(r.stdout)


def check_kv(d, expect, errs):
    """expect: {key: (gguf type, value or None to only check the type)}."""
    for k, (t, v) in expect.items():
        e = d["kv"].get(k)
        if e is None:
            errs.append("key %s missing" % k)
        elif e["type"] != t:
            errs.append("key %s has type %s, expected %s" % (k, e["type"], t))
        elif v is not None and (abs(e["value"] - v) > 1e-6 * abs(v) if isinstance(v, float) else e["value"] != v):
            errs.append("key %s = %r, expected %r" % (k, e["value"], v))


def check_tensors(d, path, expect, errs):
    """expect: {name: (ne list, ggml type)}; also checks alignment and that our
    own test reader finds the same offsets (so later tests can use it)."""
    got = {t["name"]: t for t in d["tensors"]}
    if set(got) != set(expect):
        errs.append("tensor names differ: extra %s missing %s" % (sorted(set(got) - set(expect))[:3],
                                                                  sorted(set(expect) - set(got))[:3]))
        return
    align = d["kv"].get("general.alignment", {"value": 32})["value"]
    if d["tensorDataOffset"] % align:
        errs.append("tensor data offset %d not aligned" % d["tensorDataOffset"])
    _, _, mine = gguf_read.read_gguf(path)
    for name, (ne, t) in expect.items():
        g = got[name]
        if g["shape"] != ne or g["dtype"] != t or g["n_dims"] != len(ne):
            errs.append("%s: shape %s type %s, expected %s type %s" % (name, g["shape"], g["dtype"], ne, t))
        if g["offset"] % align:
            errs.append("%s: offset %d not aligned" % (name, g["offset"]))
        if mine[name][2] != d["tensorDataOffset"] + g["offset"]:
            errs.append("%s: test reader offset differs from @huggingface/gguf" % name)


def tensor_at(d, path, name, n):
    """n float32 values at the offset @huggingface/gguf reports."""
    g = [t for t in d["tensors"] if t["name"] == name][0]
    with open(path, "rb") as f:
        f.seek(d["tensorDataOffset"] + g["offset"])
        return struct.unpack("<%df" % n, f.read(4 * n))


# ---------------------------------------------------------------- llama2.c .bin (standard library)


def test_llama2c(tmp):
    rng = random.Random(7)
    dim, hidden, L, H, Hkv, V, seq = 64, 96, 2, 4, 2, 50, 24
    src = os.path.join(tmp, "l.bin")
    vals = write_llama2c_v1(src, dim, hidden, L, H, Hkv, V, seq, False, rng)
    for dtype, ftype, gt in (("f32", 0, 0), ("f16", 1, 1), ("bf16", 32, 30), ("q8_0", 7, 8)):
        errs = []
        out = os.path.join(tmp, "l_%s.gguf" % dtype)
        convert(src, "-o", out, "--dtype", dtype)
        d = npm_dump(out)
        check_kv(d, {"general.architecture": (G_STR, "llama"), "general.file_type": (G_U32, ftype),
                     "general.alignment": (G_U32, 32), "llama.block_count": (G_U32, L),
                     "llama.embedding_length": (G_U32, dim), "llama.feed_forward_length": (G_U32, hidden),
                     "llama.attention.head_count": (G_U32, H), "llama.attention.head_count_kv": (G_U32, Hkv),
                     "llama.context_length": (G_U32, seq), "llama.rope.freq_base": (G_F32, 10000.0),
                     "llama.attention.layer_norm_rms_epsilon": (G_F32, 1e-5)}, errs)
        if "tokenizer.ggml.model" in d["kv"]:
            errs.append("ids-only model has tokenizer.ggml.model")
        hd = dim // H
        expect = {"token_embd.weight": ([dim, V], gt), "output_norm.weight": ([dim], 0), "output.weight": ([dim, V], gt)}
        for i in range(L):
            p = "blk.%d." % i
            expect.update({p + "attn_norm.weight": ([dim], 0), p + "ffn_norm.weight": ([dim], 0),
                           p + "attn_q.weight": ([dim, dim], gt), p + "attn_k.weight": ([dim, Hkv * hd], gt),
                           p + "attn_v.weight": ([dim, Hkv * hd], gt), p + "attn_output.weight": ([dim, dim], gt),
                           p + "ffn_gate.weight": ([dim, hidden], gt), p + "ffn_up.weight": ([dim, hidden], gt),
                           p + "ffn_down.weight": ([hidden, dim], gt)})
        check_tensors(d, out, expect, errs)
        for gname, sname in (("blk.1.attn_norm.weight", "layers.1.attention_norm"), ("output_norm.weight", "norm")) + (
                (("blk.1.attn_k.weight", "layers.1.wk"), ("output.weight", "output")) if dtype == "f32" else ()):
            want = struct.unpack("<%df" % len(vals[sname]), struct.pack("<%df" % len(vals[sname]), *vals[sname]))
            if tensor_at(d, out, gname, len(want)) != want:
                errs.append("%s: values at the reported offset differ from %s" % (gname, sname))
        result("interop llama2.c v1 --dtype %s" % dtype, errs)
    errs = []
    out = os.path.join(tmp, "l_set.gguf")
    convert(src, "-o", out, "--set", "attn.training.steps=1500", "--set", "attn.training.heldout_loss=1.375",
            "--set", "attn.training.corpus=TinyStories (\ud55c)", "--set", "general.name=mini")
    check_kv(npm_dump(out), {"attn.training.steps": (G_U32, 1500), "attn.training.heldout_loss": (G_F32, 1.375),
                             "attn.training.corpus": (G_STR, "TinyStories (\ud55c)"), "general.name": (G_STR, "mini"),
                             "attn.source": (G_STR, "llama2.c l.bin (v1)")}, errs)
    result("interop --set attn.training.* keys", errs)


# ---------------------------------------------------------------- tokenizers


def test_vocab(tmp):
    cases = (("tokenizer.model", "llama", 32000, True), ("tokenizer.bin", "llama", 32000, True),
             ("gpt2-tokenizer", "gpt2", 50257, False))
    for name, model, n, spm in cases:
        src = os.path.join(MODELS, name)
        if not os.path.exists(src):
            skip("interop vocab " + name, "../shared/models/%s not found" % name)
            continue
        errs = []
        out = os.path.join(tmp, name + ".gguf")
        convert("--vocab-only", src, "-o", out)
        d = npm_dump(out)
        expect = {"tokenizer.ggml.model": (G_STR, model), "tokenizer.ggml.tokens": (G_ARR, None),
                  "tokenizer.ggml.token_type": (G_ARR, None), "tokenizer.ggml.add_bos_token": (G_BOOL, spm),
                  "tokenizer.ggml.bos_token_id": (G_U32, 1 if spm else 50256),
                  "tokenizer.ggml.eos_token_id": (G_U32, 2 if spm else 50256)}
        expect["tokenizer.ggml.scores" if spm else "tokenizer.ggml.merges"] = (G_ARR, None)
        if spm:
            expect["tokenizer.ggml.add_space_prefix"] = (G_BOOL, True)
            expect["tokenizer.ggml.unknown_token_id"] = (G_U32, 0)
        check_kv(d, expect, errs)
        kv = d["kv"]
        toks = kv.get("tokenizer.ggml.tokens", {})
        if toks.get("subType") != G_STR or len(toks.get("value", [])) != n:
            errs.append("tokens: %s strings, expected %d" % (len(toks.get("value", [])), n))
        tt = kv.get("tokenizer.ggml.token_type", {})
        if tt.get("subType") != G_I32 or len(tt.get("value", [])) != n:
            errs.append("token_type is not %d i32" % n)
        if spm:
            sc = kv.get("tokenizer.ggml.scores", {})
            if sc.get("subType") != G_F32 or len(sc.get("value", [])) != n:
                errs.append("scores are not %d f32" % n)
            elif toks["value"][259] != "\u2581\u2581" or sc["value"][259] != -1e9 or tt["value"][3] != 6:
                errs.append("piece 259 %r score %r, type of 3 %r" % (toks["value"][259], sc["value"][259],
                                                                      tt["value"][3]))
        else:
            mg = kv.get("tokenizer.ggml.merges", {})
            if mg.get("subType") != G_STR or len(mg.get("value", [])) != 50000 or mg["value"][0] != "\u0120 t":
                errs.append("merges are not the 50000 of vocab.bpe")
            if toks["value"][50256] != "<|endoftext|>" or tt["value"][50256] != 3:
                errs.append("<|endoftext|> is not control token 50256")
        if d["tensors"]:
            errs.append("vocab-only file has tensors")
        result("interop vocab %s" % name, errs)


# ---------------------------------------------------------------- nanoGPT and HF GPT-2 (torch)


def test_torch_models(tmp):
    R = reference_models("interop nanoGPT ckpt.pt", "interop HF GPT-2 folder")
    if R is None:
        return
    m = R.make_nanogpt(seed=3, n_layer=2, n_head=4, n_embd=64, block_size=16, vocab_size=80, bias=True)
    ck = os.path.join(tmp, "ckpt.pt")
    R.save_nanogpt(m, ck, orig_mod=True, with_optimizer=True)
    hf = os.path.join(tmp, "hf-gpt2")
    R.save_hf_gpt2(m, hf)
    D, F, V, ctx = 64, 256, 80, 16
    for name, src, extra, gt, dtype in (("nanoGPT ckpt.pt", ck, {"attn.mlp": (G_STR, "gelu_erf")}, 0, "f32"),
                                        ("HF GPT-2 folder", hf, {"attn.mlp": (G_STR, "gelu_erf")}, 1, "f16")):
        errs = []
        out = os.path.join(tmp, "g.gguf")
        convert(src, "-o", out, "--dtype", dtype)
        d = npm_dump(out)
        exp = {"general.architecture": (G_STR, "gpt2"), "gpt2.block_count": (G_U32, 2),
               "gpt2.embedding_length": (G_U32, D), "gpt2.feed_forward_length": (G_U32, F),
               "gpt2.attention.head_count": (G_U32, 4), "gpt2.context_length": (G_U32, ctx),
               "gpt2.attention.layer_norm_epsilon": (G_F32, 1e-5)}
        exp.update(extra)
        check_kv(d, exp, errs)
        expect = {"token_embd.weight": ([D, V], gt), "position_embd.weight": ([D, ctx], gt),
                  "output_norm.weight": ([D], 0), "output_norm.bias": ([D], 0),
                  "output.weight": ([D, V], gt)}  # the tied head again, as llama.cpp's converter writes it
        for i in range(2):
            p = "blk.%d." % i
            expect.update({p + "attn_norm.weight": ([D], 0), p + "attn_norm.bias": ([D], 0),
                           p + "attn_qkv.weight": ([D, 3 * D], gt), p + "attn_qkv.bias": ([3 * D], 0),
                           p + "attn_output.weight": ([D, D], gt), p + "attn_output.bias": ([D], 0),
                           p + "ffn_norm.weight": ([D], 0), p + "ffn_norm.bias": ([D], 0),
                           p + "ffn_up.weight": ([D, F], gt), p + "ffn_up.bias": ([F], 0),
                           p + "ffn_down.weight": ([F, D], gt), p + "ffn_down.bias": ([D], 0)})
        check_tensors(d, out, expect, errs)
        if dtype == "f32":
            w = m.transformer.h[1].attn.c_attn.weight.detach().float().numpy().ravel().tolist()
            want = struct.unpack("<%df" % len(w), struct.pack("<%df" % len(w), *w))
            if tensor_at(d, out, "blk.1.attn_qkv.weight", len(w)) != want:
                errs.append("blk.1.attn_qkv.weight values differ from c_attn.weight")
        result("interop %s" % name, errs)


def main():
    if shutil.which("node") is None:
        skip("interop", "node not found")
        return
    if not os.path.exists(os.path.join(ROOT, "tests", "node_modules", "@huggingface", "gguf")):
        skip("interop", "npm @huggingface/gguf not installed (cd tests && npm install)")
        return
    tmp = scratch("t_convert_interop.")
    for t in (test_llama2c, test_vocab, test_torch_models):
        guarded("interop " + t.__name__, t, tmp)


if __name__ == "__main__":
    main()
    done()
