"""Regenerates tests/parity/families/ from llama.cpp (`make parity`).

For every case of families.py: the random Hugging Face folder, converted by
llama.cpp's own convert_hf_to_gguf.py (../shared/ref/llama.cpp-tools/
convert_hf.py, F32), and llama.cpp's logits [T,V] and attention [L,H,T,T]
on that file (lcpp_dump, F32 KV cache) for the case's ids. Written:
  families/<case>.logits.npy, families/<case>.attn.npy   llama.cpp's numbers
  families/index.json   per case: arch, ids, sha256 of the weight files, bounds
Also checked here (not in CI, which has no llama.cpp): tools/convert.py's file
has the same tensors as llama.cpp's, and attn gives the same numbers on both.
Needs numpy, torch, sentencepiece, tqdm (Debian python3-*) and a llama.cpp
build: LCPP (default /work/lcpp) with bin/lcpp_dump.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
import families as F  # noqa: E402

TOOLS = os.path.join(ROOT, "..", "shared", "ref", "llama.cpp-tools")
LCPP = os.environ.get("LCPP", "/work/lcpp")

# Families whose llama.cpp graph applies GELU: ggml's CPU GELU reads a float16
# table (GGML_GELU_FP16), about 1e-3 relative per activation, so their
# numbers are compared within 5e-3 instead of 1e-4 / 1e-5.
GELU_TABLE = {"gptneox", "phi2", "gemma", "gemma2"}


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd[:3]), r.returncode, (r.stderr or r.stdout)[-400:]))
    return r


def main():
    dump = os.path.join(LCPP, "bin", "lcpp_dump")
    if not os.path.exists(dump):
        print("make parity: no %s (build llama.cpp with ../shared/ref/llama.cpp-tools/build.sh, or set LCPP)" % dump)
        return 1
    import numpy as np
    from testlib import read_npy  # noqa: F401  (the reader the test uses)
    tmp = tempfile.mkdtemp(prefix="attn-families-")
    index = {}
    try:
        for name, (arch, seed, storage, cfg) in F.CASES.items():
            # not the case name: llama.cpp's vocabulary loader looks for Phi-3's
            # <|endoftext|> in any model whose general.name (the folder's) says phi3
            hf = os.path.join(tmp, "model%d" % seed)
            F.make_folder(name, hf)
            theirs, ours = os.path.join(tmp, name + ".lcpp.gguf"), os.path.join(tmp, name + ".attn.gguf")
            run(["/usr/bin/python3", os.path.join(TOOLS, "convert_hf.py"), hf, theirs, "--outtype", "f32"])
            run([sys.executable, os.path.join(ROOT, "tools", "convert.py"), hf, "-o", ours])
            ids = F.prompt_ids(name)
            lg, at = (os.path.join(F.DATA, "%s.%s.npy" % (name, k)) for k in ("logits", "attn"))
            run([dump, theirs, ",".join(map(str, ids)), lg, at, "f32"])
            same = same_numbers(ours, theirs, ids, tmp)
            gelu = arch in GELU_TABLE
            index[name] = {"arch": arch, "storage": storage, "sha256": F.weights_sha(hf), "ids": ids,
                           "logit_bound": 5e-3 if gelu else 1e-4, "attn_bound": 5e-3 if gelu else 1e-5,
                           "ours_vs_theirs": same}
            print("%s: %s, attn on ours vs on llama.cpp's file: %.3g" % (name, arch, same))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(F.DATA, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    return 0


def attn_numbers(gguf, ids, out):
    import numpy as np
    os.makedirs(out, exist_ok=True)
    run([os.path.join(ROOT, "attn"), "run", "-m", gguf, "--ids", ",".join(map(str, ids)), "--export", "npy",
         "-o", out, "-t", "1"])
    return np.load(os.path.join(out, "logits.npy")), np.load(os.path.join(out, "attention.npy"))


def same_numbers(ours, theirs, ids, tmp):
    """Largest difference of attn's logits (relative to max |logit|) and attention on the two files."""
    import numpy as np
    la, aa = attn_numbers(ours, ids, os.path.join(tmp, "o"))
    lb, ab = attn_numbers(theirs, ids, os.path.join(tmp, "t"))
    return float(max(np.max(np.abs(la - lb)) / np.max(np.abs(lb)), np.max(np.abs(aa - ab))))


if __name__ == "__main__":
    sys.exit(main())
