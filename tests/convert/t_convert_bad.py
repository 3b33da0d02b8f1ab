"""tools/convert.py on bad input: truncated, corrupt or inconsistent .bin, .pt,
safetensors and tokenizer files each give exactly one line
'convert.py: <what>: <why>' on stderr, exit status 2, no traceback, no output
file (nor a temporary one) left behind. A pickle whose code would create a
file must not run that code.
"""
import json
import os
import pickle
import random
import shutil
import struct
import zipfile
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from testlib import MODELS, convert, done, reference_models, result, scratch, skip
from llama2c_bin import write_llama2c_v1  # tests/parity/, on the path testlib sets


def bad(tmp, args, errs, label, must=None):
    """Runs convert.py and checks the bad-input contract; must: text the message must contain."""
    outdir = os.path.join(tmp, "out")
    os.makedirs(outdir, exist_ok=True)
    out = os.path.join(outdir, "x.gguf")
    r = convert(*args, "-o", out, rc=None)
    lines = r.stderr.strip().split("\n")
    if os.environ.get("SHOW"):
        print("   %-40s %s" % (label, r.stderr.strip()))
    if r.returncode != 2:
        errs.append("%s: exit %d (%s)" % (label, r.returncode, r.stderr.strip()[-200:]))
    elif len(lines) != 1 or not lines[0].startswith("convert.py: ") or "Traceback" in r.stderr:
        errs.append("%s: stderr is not one line: %r" % (label, r.stderr[-300:]))
    elif must and must not in lines[0]:
        errs.append("%s: message %r does not mention %r" % (label, lines[0], must))
    if os.listdir(outdir):
        errs.append("%s: left %s" % (label, os.listdir(outdir)))
    shutil.rmtree(outdir)


def cuts(n, k=8):
    """k cut points spread over a file of n bytes (header cuts included)."""
    pts = {0, 1, 4, 7, 8, 27, 28, 100, n // 3, n // 2, n - 1}
    pts.update(n * i // k for i in range(1, k))
    return sorted(p for p in pts if 0 <= p < n)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_llama2c(tmp):
    errs = []
    good = os.path.join(tmp, "good.bin")
    write_llama2c_v1(good, 16, 32, 2, 2, 1, 20, 8, False, random.Random(1))
    data = open(good, "rb").read()
    for c in cuts(len(data)):
        bad(tmp, [write(os.path.join(tmp, "t.bin"), data[:c])], errs, "cut at %d" % c)
    hdr = bytearray(data)
    struct.pack_into("<i", hdr, 8, 1 << 30)  # dim
    bad(tmp, [write(os.path.join(tmp, "t.bin"), bytes(hdr))], errs, "absurd dim", "header")
    hdr = bytearray(data)
    struct.pack_into("<i", hdr, 4, 9)  # version
    bad(tmp, [write(os.path.join(tmp, "t.bin"), bytes(hdr))], errs, "unknown version", "version")
    bad(tmp, [write(os.path.join(tmp, "t.bin"), data + b"\0" * 12)], errs, "trailing bytes", "size")
    legacy = struct.pack("<7i", 16, 32, 2, 3, 1, 20, 8)  # 3 heads do not divide 16
    bad(tmp, [write(os.path.join(tmp, "t.bin"), legacy + data[256:])], errs, "heads do not divide dim")
    bad(tmp, [os.path.join(tmp, "missing.bin")], errs, "missing file", "missing.bin")
    r = convert(good, "-o", good, rc=None)
    if r.returncode != 2 or open(good, "rb").read() != data:
        errs.append("-o SRC: exit %d, input %s" % (r.returncode, "kept" if open(good, "rb").read() == data else
                                                   "overwritten"))
    r = convert(good, "-o", os.path.join(tmp, "no", "such", "x.gguf"), rc=None)
    if r.returncode != 2 or len(r.stderr.strip().split("\n")) != 1:
        errs.append("-o into a missing folder: exit %d %r" % (r.returncode, r.stderr))
    result("bad llama2.c .bin: %d truncations, absurd header, wrong size, missing file; -o SRC, -o missing folder"
           % len(cuts(len(data))), errs)


def safetensors_bytes(header, payload):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + payload


def test_safetensors(tmp):
    errs = []
    d = os.path.join(tmp, "hf")
    os.makedirs(d)
    D, V, ctx, L = 8, 10, 4, 1
    cfg = {"model_type": "gpt2", "n_embd": D, "n_layer": L, "n_head": 2, "n_positions": ctx, "vocab_size": V}
    shapes = {"wte.weight": [V, D], "wpe.weight": [ctx, D], "ln_f.weight": [D], "ln_f.bias": [D]}
    for n, s in (("ln_1", [D]), ("ln_2", [D])):
        shapes["h.0.%s.weight" % n] = s
        shapes["h.0.%s.bias" % n] = s
    for n, s in (("attn.c_attn", [D, 3 * D]), ("attn.c_proj", [D, D]), ("mlp.c_fc", [D, 4 * D]),
                 ("mlp.c_proj", [4 * D, D])):
        shapes["h.0.%s.weight" % n] = s
        shapes["h.0.%s.bias" % n] = s[1:]

    def build(shapes, extra=None, dtype="F32"):
        header, off = {}, 0
        for n, s in shapes.items():
            nb = 4
            for x in s:
                nb *= x
            header[n] = {"dtype": dtype, "shape": s, "data_offsets": [off, off + nb]}
            off += nb
        if extra:
            header.update(extra)
        return header, b"\0" * off

    def folder(blob, config=cfg):
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config, f)
        write(os.path.join(d, "model.safetensors"), blob)
        return [d]

    header, payload = build(shapes)
    good = safetensors_bytes(header, payload)
    r = convert(*folder(good), "-o", os.path.join(tmp, "ok.gguf"), rc=None)
    if r.returncode != 0:
        errs.append("the good folder does not convert: %s" % r.stderr.strip())
    for c in cuts(len(good)):
        bad(tmp, folder(good[:c]), errs, "cut at %d" % c)
    bad(tmp, folder(struct.pack("<Q", 1 << 40) + good[8:]), errs, "header length past the end", "header length")
    bad(tmp, folder(struct.pack("<Q", 5) + b"{{{{{" + payload), errs, "header not JSON", "JSON")
    h2 = dict(header)
    h2["wte.weight"] = dict(h2["wte.weight"], data_offsets=[0, len(payload) + 400])
    bad(tmp, folder(safetensors_bytes(h2, payload)), errs, "data past the end")
    bad(tmp, folder(safetensors_bytes(*build(shapes, dtype="F8_E4M3")[0:1], payload)), errs, "unknown dtype", "dtype")
    s2 = dict(shapes, **{"h.0.attn.c_attn.weight": [D, 2 * D]})
    bad(tmp, folder(safetensors_bytes(*build(s2))), errs, "shape disagrees with config", "h.0.attn.c_attn.weight")
    s3 = dict(shapes, **{"h.0.attn.rotary.weight": [D]})
    bad(tmp, folder(safetensors_bytes(*build(s3))), errs, "unmappable tensor", "h.0.attn.rotary.weight")
    s4 = dict(shapes)
    del s4["h.0.mlp.c_fc.weight"]
    bad(tmp, folder(safetensors_bytes(*build(s4))), errs, "missing tensor", "h.0.mlp.c_fc.weight")
    bad(tmp, folder(good, dict(cfg, model_type="bert")), errs, "unsupported model_type", "bert")
    bad(tmp, folder(good, dict(cfg, n_layer=2)), errs, "config with more layers", "h.1.")
    result("bad HF safetensors folders: truncations, header, offsets, dtype, shapes, names, config", errs)


class Evil:
    """Its pickle calls os.system: a safe unpickler must never run it."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def test_pickles(tmp):
    errs = []
    marker = os.path.join(tmp, "pwned")
    evil = pickle.dumps({"model": {"x": Evil("touch " + marker)}, "model_args": Evil("touch " + marker)})
    for name, blob in (("plain pickle", evil),):
        bad(tmp, [write(os.path.join(tmp, "evil.pt"), blob)], errs, name)
    z = os.path.join(tmp, "evil_zip.pt")
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("archive/data.pkl", evil)
    bad(tmp, [z], errs, "zip with code in data.pkl")
    meta = os.path.join(tmp, "meta.pkl")
    write(meta, pickle.dumps(Evil("touch " + marker)))
    bad(tmp, ["--vocab-only", meta], errs, "meta.pkl with code")
    if os.path.exists(marker):
        errs.append("pickle code ran")
    R = reference_models("bad torch checkpoints")
    if R is None:
        return result("bad pickles never run code", errs)
    import torch
    m = R.make_nanogpt(seed=1, n_embd=16, n_head=2, block_size=4, vocab_size=11)
    good = os.path.join(tmp, "ckpt.pt")
    R.save_nanogpt(m, good)
    data = open(good, "rb").read()
    for c in cuts(len(data), 12):
        bad(tmp, [write(os.path.join(tmp, "t.pt"), data[:c])], errs, "cut at %d" % c)
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(os.path.join(tmp, "nodata.pt"), "w") as zout:
        for info in zin.infolist():
            if not info.filename.endswith("/data/0"):
                zout.writestr(info, zin.read(info))
    bad(tmp, [os.path.join(tmp, "nodata.pt")], errs, "storage missing from the zip", "storage")
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(os.path.join(tmp, "flip.pt"), "w") as zout:
        for info in zin.infolist():
            b = zin.read(info)
            if info.filename.endswith("data.pkl"):
                b = b[:len(b) // 2] + bytes(x ^ 0x5A for x in b[len(b) // 2:len(b) // 2 + 40]) + b[len(b) // 2 + 40:]
            zout.writestr(info, b)
    bad(tmp, [os.path.join(tmp, "flip.pt")], errs, "corrupt data.pkl")
    sd = m.state_dict()
    sd["transformer.h.0.attn.rotary.freq"] = torch.zeros(3, 3)
    torch.save({"model": sd, "model_args": R.nanogpt_args(m)}, os.path.join(tmp, "extra.pt"))
    bad(tmp, [os.path.join(tmp, "extra.pt")], errs, "unmappable tensor", "transformer.h.0.attn.rotary.freq")
    args = dict(R.nanogpt_args(m), n_head=3)
    torch.save({"model": m.state_dict(), "model_args": args}, os.path.join(tmp, "heads.pt"))
    bad(tmp, [os.path.join(tmp, "heads.pt")], errs, "n_head does not divide n_embd", "n_head")
    torch.save({"model": m.state_dict(), "model_args": R.nanogpt_args(m)}, os.path.join(tmp, "legacy.pt"),
               _use_new_zipfile_serialization=False)
    data = open(os.path.join(tmp, "legacy.pt"), "rb").read()
    for c in cuts(len(data), 6):
        bad(tmp, [write(os.path.join(tmp, "t.pt"), data[:c])], errs, "legacy format cut at %d" % c)
    if os.path.exists(marker):
        errs.append("pickle code ran")
    result("bad torch checkpoints: truncations (zip and legacy), missing storage, corrupt pickle, extra tensor, "
           "bad model_args; pickles never run code", errs)


def test_tokenizers(tmp):
    errs = []
    for name, cutset in (("tokenizer.model", (1, 2, 100, 5000, 400000)), ("tokenizer.bin", (2, 6, 9, 101, 400000))):
        src = os.path.join(MODELS, name)
        if not os.path.exists(src):
            skip("bad " + name, "../shared/models/%s not found" % name)
            continue
        data = open(src, "rb").read()
        for c in cutset:
            bad(tmp, ["--vocab-only", write(os.path.join(tmp, name), data[:c])], errs, "%s cut at %d" % (name, c))
    bad(tmp, ["--vocab-only", write(os.path.join(tmp, "tokenizer.json"), b'{"model": {"type": "BPE", "vocab": [1]')],
        errs, "tokenizer.json not JSON")
    bad(tmp, ["--vocab-only", write(os.path.join(tmp, "tokenizer.json"), b'{"model": {"type": "Unigram"}}')],
        errs, "tokenizer.json unigram", "Unigram")
    bad(tmp, ["--vocab-only", write(os.path.join(tmp, "m.pkl"), pickle.dumps({"itos": {0: "a", 2: "b"}}))],
        errs, "meta.pkl with a gap", "itos")
    d = os.path.join(tmp, "enc")
    os.makedirs(d)
    write(os.path.join(d, "encoder.json"), b'{"a": 0, "b": 0}')
    write(os.path.join(d, "vocab.bpe"), b"#version: 0.2\na b\n")
    bad(tmp, ["--vocab-only", d], errs, "encoder.json with a repeated id", "id")
    result("bad tokenizers: truncated tokenizer.model / tokenizer.bin, bad tokenizer.json, meta.pkl, encoder.json",
           errs)


def main():
    tmp = scratch("t_convert_bad.")
    for t in (test_llama2c, test_safetensors, test_pickles, test_tokenizers):
        t(tmp)


if __name__ == "__main__":
    main()
    done()
