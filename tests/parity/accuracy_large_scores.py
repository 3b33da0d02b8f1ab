"""Attention accuracy where scores are large (issue 16): a random LLaMA (dim 576,
2 layers, GQA 9/3, ffn 1536) with N(0, 0.1) noise added to every weight, so
q.k is large; its float64 reference (llama2.c model.py, tests/parity/refmodels)
against attn on every SIMD path and llama.cpp (lcpp_dump on the same F32 file).
Prints the max abs error of the attention probabilities per layer. A
measurement for the next step, not a test (no PASS/FAIL):

  LCPP=/work/lcpp python3 tests/parity/accuracy_large_scores.py [SEED ...]

Measured 2026-12-02 (seeds 1-4): llama.cpp 5.5e-6..7.0e-6; attn 8.2e-6..2.5e-5
(scalar), 9.7e-6..1.9e-5 (avx2/avx512). Cause (float32 emulation and scalar
experiments): each matmul output is one float chain over K (576, 1536); with
the matmuls and q.k summed in double attn's error is 2.7e-6..3.2e-6 on all four
seeds. The softmax (exp, float sum) and the scale order change nothing measurable.
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "ref", "llama.cpp", "gguf-py"))
import numpy as np  # noqa: E402
import torch  # noqa: E402

import make_quant_models as MQ  # noqa: E402
import refmodels as R  # noqa: E402

LCPP = os.environ.get("LCPP", "/work/lcpp")
ATTN = os.environ.get("ATTN", os.path.join(ROOT, "attn"))
IDS = [1, 5, 9, 3, 17, 30, 2, 11, 40, 7, 22, 63, 8, 90, 4, 15]


def model_file(seed, tmp):
    m = R.make_llama(seed=seed, dim=576, n_layers=2, n_heads=9, n_kv_heads=3, vocab_size=96, hidden_dim=1536,
                     max_seq_len=16, tied=False)
    g = torch.Generator().manual_seed(seed + 5)
    with torch.no_grad():
        for _, p in m.named_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    ck, raw, f32 = (os.path.join(tmp, "m%d%s" % (seed, e)) for e in (".bin", "-raw.gguf", ".gguf"))
    R.save_llama_bin(m, ck, 0)
    MQ.run(sys.executable, os.path.join(ROOT, "tools", "convert.py"), ck, "-o", raw)
    MQ.add_vocab(raw, f32, 96)
    att, _ = R.reference_forward(m, IDS)
    return f32, att


def per_layer(a, ref):
    return " ".join("L%d %.2e" % (l, np.abs(a[l] - ref[l]).max()) for l in range(ref.shape[0]))


def main(seeds):
    tmp = tempfile.mkdtemp(prefix="attn-acc-")
    try:
        run_seeds(seeds, tmp)
    finally:
        shutil.rmtree(tmp, True)


def run_seeds(seeds, tmp):
    for seed in seeds:
        f32, ref = model_file(seed, tmp)
        out = os.path.join(tmp, "lcpp%d" % seed)
        if os.path.exists(os.path.join(LCPP, "bin", "lcpp_dump")):
            MQ.run(os.path.join(LCPP, "bin", "lcpp_dump"), f32, ",".join(map(str, IDS)), out + ".lg.npy",
                   out + ".at.npy", "f32")
            print("seed %d llama.cpp %s" % (seed, per_layer(np.load(out + ".at.npy"), ref)))
        for p in ("scalar", "avx2", "avx512", "neon"):
            o = os.path.join(tmp, "attn%d-%s" % (seed, p))
            r = subprocess.run([ATTN, "run", "-m", f32, "--ids", ",".join(map(str, IDS)), "--export", "npy", "-o", o,
                                "-t", "2"], env=dict(os.environ, ATTN_SIMD=p), capture_output=True)
            if r.returncode == 0:
                print("seed %d attn %-6s %s" % (seed, p, per_layer(np.load(os.path.join(o, "attention.npy")), ref)))


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [1, 2, 3, 4])
