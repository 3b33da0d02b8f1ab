"""Quantized-model goldens from llama.cpp (`make parity`; needs torch, numpy and
the llama.cpp reference built: LCPP=/work/lcpp or ../shared/ref/llama.cpp-tools/build.sh).

For each random model (refmodels: LLaMA with GQA; dims that are multiples of
256 and dims that are not, so llama-quantize's fallbacks occur):
  reference checkpoint -> tools/convert.py --dtype f16 -> (+ a small SentencePiece
  vocabulary, so llama.cpp loads the file) -> llama-quantize to each file type ->
  dequant_gguf.py (gguf.quants.dequantize, F32 copy) -> lcpp_dump: logits [T,V]
  and attention [L,H,T,T] from llama.cpp's own graph on the F32 copy.

  python3 tests/parity/make_quant_models.py [--live] [--only NAME-PREFIX]

Without --live: writes tests/parity/quant/ (the committed cases: the small
model in every file type, its quantized files and lcpp_dump's outputs, which
tests/parity/t_quant.py checks attn against with the standard library alone).
With --live: also the larger models (dim 576, GQA 9/3), run attn on each file
and print PASS/FAIL lines with the measured errors (nothing is written to the tree).
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "ref", "llama.cpp", "gguf-py"))
TOOLS = os.path.join(ROOT, "..", "shared", "ref", "llama.cpp-tools")
LCPP = os.environ.get("LCPP", "/work/lcpp")
OUT = os.path.join(HERE, "quant")
FTYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"]
IDS = [1, 5, 9, 3, 17, 30, 2, 11]

# name, kind, dims; "small" is committed
MODELS = [
    ("llama256", "llama", dict(dim=256, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=32, hidden_dim=256)),
    ("llama576", "llama", dict(dim=576, n_layers=2, n_heads=9, n_kv_heads=3, vocab_size=96, hidden_dim=1536)),
    ("llama896", "llama", dict(dim=896, n_layers=1, n_heads=14, n_kv_heads=2, vocab_size=64, hidden_dim=512)),
    # GPT-2 (nanoGPT checkpoints, tied head): 576 is not a multiple of 256, so
    # llama-quantize falls back to legacy types on the 576-column rows
    ("gpt2w256", "nanogpt", dict(n_layer=1, n_head=4, n_embd=256, block_size=16, vocab_size=32)),
    ("gpt2w576", "nanogpt", dict(n_layer=1, n_head=9, n_embd=576, block_size=16, vocab_size=32)),
]
COMMITTED = ("llama256",)
# GPT-2 files committed (bytes: the full matrix runs with --live)
COMMITTED_GPT2 = ("gpt2w256-q4_0", "gpt2w256-q2_k", "gpt2w256-q4_k_m")


def run(*cmd):
    r = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       errors="replace")
    if r.returncode:
        raise RuntimeError("%s: exit %d\n%s" % (" ".join(map(str, cmd)), r.returncode, r.stdout[-3000:]))
    return r.stdout


def add_vocab(src, dst, n_vocab):
    """src with a SentencePiece ('llama') vocabulary of n_vocab made-up pieces: llama.cpp
    refuses a file without one (attn's converter writes ids-only files for llama2.c)."""
    import gguf
    from gguf.scripts.gguf_new_metadata import decode_field
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, decode_field(r.get_field("general.architecture")))
    for f in r.fields.values():
        if f.name == "general.architecture" or f.name.startswith("GGUF.") or f.name.startswith("tokenizer."):
            continue
        w.add_key_value(f.name, decode_field(f), f.types[0])
    toks = ["<unk>", "<s>", "</s>"] + ["\u2581t%d" % i for i in range(3, n_vocab)]
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([-float(i) for i in range(n_vocab)])
    w.add_token_types([2, 3, 3] + [1] * (n_vocab - 3))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    for t in r.tensors:
        w.add_tensor(t.name, t.data, raw_shape=list(reversed([int(x) for x in t.shape])), raw_dtype=t.tensor_type)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def make_f16(name, kind, dims, tmp):
    import refmodels as R
    seed = zlib.crc32(name.encode()) % 1000
    if kind == "nanogpt":
        ckpt = os.path.join(tmp, name + ".pt")
        R.save_nanogpt(R.make_nanogpt(seed=seed, tied=True, **dims), ckpt)
    else:
        ckpt = os.path.join(tmp, name + ".bin")
        R.save_llama_bin(R.make_llama(seed=seed, max_seq_len=16, tied=False, **dims), ckpt, 0)
    raw = os.path.join(tmp, name + "-raw.gguf")
    run(sys.executable, os.path.join(ROOT, "tools", "convert.py"), ckpt, "--dtype", "f16", "-o", raw)
    f16 = os.path.join(tmp, name + "-f16.gguf")
    add_vocab(raw, f16, dims["vocab_size"])
    return f16


# Our converter's F32 files in llama.cpp: nanoGPT (tied and untied head; gpt2)
# and llama2.c (GQA) checkpoints; bounds (logits relative, attention absolute):
# LLaMA 1e-5; GPT-2 5e-3 (llama.cpp's GELU is an F16 table).
INTEROP = [
    ("nanogpt-tied", "nanogpt", dict(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=32, tied=True), 5e-3),
    ("nanogpt-untied", "nanogpt", dict(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=32, tied=False), 5e-3),
    ("llama2c", "llama", dict(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=32, hidden_dim=64,
                              tied=False), 1e-5),
]


def interop_case(name, kind, dims, tmp):
    """Our F32 file of a reference checkpoint (+ vocabulary) and lcpp_dump's outputs on it."""
    import refmodels as R
    if kind == "nanogpt":
        ckpt = os.path.join(tmp, name + ".pt")
        R.save_nanogpt(R.make_nanogpt(seed=7, **dims), ckpt)
    else:
        ckpt = os.path.join(tmp, name + ".bin")
        R.save_llama_bin(R.make_llama(seed=8, max_seq_len=16, **dims), ckpt, 0)
    raw = os.path.join(tmp, name + "-raw.gguf")
    run(sys.executable, os.path.join(ROOT, "tools", "convert.py"), ckpt, "-o", raw)
    f32 = os.path.join(tmp, name + "-f32.gguf")
    add_vocab(raw, f32, dims["vocab_size"])
    lg, at = f32 + ".logits.npy", f32 + ".attention.npy"
    run(os.path.join(LCPP, "bin", "lcpp_dump"), f32, ",".join(map(str, IDS)), lg, at, "f32")
    return f32, lg, at


def lcpp_reference(qfile, tmp):
    """llama.cpp's logits and attention on the F32 copy of qfile (dequant_gguf.py)."""
    f32 = qfile + ".f32.gguf"
    run(sys.executable, os.path.join(TOOLS, "dequant_gguf.py"), qfile, f32)
    lg, at = qfile + ".logits.npy", qfile + ".attention.npy"
    run(os.path.join(LCPP, "bin", "lcpp_dump"), f32, ",".join(map(str, IDS)), lg, at, "f32")
    os.unlink(f32)
    return lg, at


def main(argv):
    live = "--live" in argv
    only = argv[argv.index("--only") + 1] if "--only" in argv else ""  # model-name prefix
    if not os.path.exists(os.path.join(LCPP, "bin", "llama-quantize")):
        print("SKIP quantized goldens: %s/bin/llama-quantize not built (../shared/ref/llama.cpp-tools/build.sh)" % LCPP)
        return 0
    tmp = tempfile.mkdtemp(prefix="attn-quant-")
    try:
        cases = []
        for name, kind, dims in MODELS:
            fts = [ft for ft in FTYPES if live or name in COMMITTED or "%s-%s" % (name, ft.lower()) in COMMITTED_GPT2]
            if not fts or not name.startswith(only):
                continue
            f16 = make_f16(name, kind, dims, tmp)
            for ft in fts:
                q = os.path.join(tmp, "%s-%s.gguf" % (name, ft.lower()))
                run(os.path.join(LCPP, "bin", "llama-quantize"), f16, q, ft)
                lg, at = lcpp_reference(q, tmp)
                # GPT-2 logits: llama.cpp's GELU is an F16 table (measured 2.4e-4..3.4e-4
                # at width 576); one layer, so the attention is before any GELU
                cases.append((name, ft, q, lg, at, 1e-4 if kind == "llama" else 5e-3, 1e-5))
                print("made %s %s (%d bytes)" % (name, ft, os.path.getsize(q)))
        for name, kind, dims, bound in INTEROP if not only else []:
            f32, lg, at = interop_case(name, kind, dims, tmp)
            cases.append((name, "F32", f32, lg, at, bound, 1e-5 if kind == "llama" else bound))
            print("made %s (%d bytes)" % (name, os.path.getsize(f32)))
        if live:
            sys.path.insert(0, os.path.join(ROOT, "tests"))
            import t_quant
            return t_quant.check_cases([(n + " " + ft, q, lg, at, IDS, bl, ba) for n, ft, q, lg, at, bl, ba in cases])
        os.makedirs(OUT, exist_ok=True)
        index = []
        if only:  # keep the other models' lines
            index = [l.rstrip("\n") for l in open(os.path.join(OUT, "index.txt"))
                     if not l.startswith("#") and l.strip() and not l.startswith(only)]
        for name, ft, q, lg, at, bl, ba in cases:
            base = "%s-%s" % (name, ft.lower())
            for src, ext in ((q, ".gguf"), (lg, ".logits.npy"), (at, ".attention.npy")):
                shutil.copyfile(src, os.path.join(OUT, base + ext))
            index.append("%s %s %s %g %g" % (base, ft, ",".join(map(str, IDS)), bl, ba))
        with open(os.path.join(OUT, "index.txt"), "w") as f:
            f.write("# file-base file-type ids logits-bound attention-bound (tests/parity/make_quant_models.py)\n" + "\n".join(index) + "\n")
        print("wrote tests/parity/quant/ (%d cases)" % len(index))
        if only:
            return 0
        # blocks of every type from these files for test_kernels (quant_blocks.gguf)
        run(sys.executable, os.path.join(HERE, "make_quant.py"), *[c[2] for c in cases if c[1] != "F32"])
    finally:
        shutil.rmtree(tmp, True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
