"""Families (gptneox, qwen2, llama incl. Llama 3 and SmolLM2 settings, gemma,
gemma2, phi2, phi3, olmo2) against llama.cpp.

Each case of tests/parity/families.py is a random Hugging Face folder with the
family's real config keys and tensor names, rebuilt here from its seed (numpy;
the sha256 of its weight files must match tests/parity/families/index.json),
converted by tools/convert.py, and run by attn on every SIMD path with 1 and 2
threads. The expected numbers are llama.cpp's own (lcpp_dump on the file
llama.cpp's convert_hf_to_gguf.py wrote from the same folder), committed by
`make parity`, which also checked that attn gives the same numbers (1e-6) on
llama.cpp's file as on ours.
Bounds: logits max |diff| / max |logit| <= 1e-4, attention max |diff| <= 1e-5;
families whose llama.cpp graph applies GELU through ggml's float16 table
(gptneox, phi2, gemma, gemma2): 5e-3 for both.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from testlib import ERRORS, ROOT, attn, convert, done, read_npy, result, scratch, skip

DATA = os.path.join(ROOT, "tests", "parity", "families")


def worst(got, want, rel):
    (gs, gv), (ws, wv) = got, want
    if tuple(gs) != tuple(ws):
        raise ValueError("shape %s, llama.cpp %s" % (gs, ws))
    scale = max(abs(x) for x in wv) if rel else 1.0
    return max(abs(a - b) for a, b in zip(gv, wv)) / scale


def simd_paths(gguf):
    paths = []
    for p in ("scalar", "avx2", "avx512", "neon"):
        if "ATTN_SIMD" not in attn("info", "-m", gguf, env=dict(os.environ, ATTN_SIMD=p)).stderr:
            paths.append(p)
    return paths


def case(name, c, tmp, F):
    hf = os.path.join(tmp, name)
    F.make_folder(name, hf)
    if F.weights_sha(hf) != c["sha256"]:
        raise ValueError("the rebuilt folder's weights differ from the ones llama.cpp converted (numpy changed?)")
    gguf = os.path.join(tmp, name + ".gguf")
    convert(hf, "-o", gguf)
    want_l = read_npy(os.path.join(DATA, name + ".logits.npy"))
    want_a = read_npy(os.path.join(DATA, name + ".attn.npy"))
    el = ea = 0.0
    runs = 0
    for simd in simd_paths(gguf):
        for threads in (1, 2):
            out = os.path.join(tmp, "%s-%s-%d" % (name, simd, threads))
            env = dict(os.environ, ATTN_SIMD=simd)
            attn("run", "-m", gguf, "--ids", ",".join(map(str, c["ids"])), "--export", "npy", "-o", out,
                 "-t", str(threads), rc=0, env=env)
            el = max(el, worst(read_npy(os.path.join(out, "logits.npy")), want_l, True))
            ea = max(ea, worst(read_npy(os.path.join(out, "attention.npy")), want_a, False))
            runs += 1
    errs = []
    if el > c["logit_bound"]:
        errs.append("logits differ by %.3g of max |logit| (bound %g)" % (el, c["logit_bound"]))
    if ea > c["attn_bound"]:
        errs.append("attention differs by %.3g (bound %g)" % (ea, c["attn_bound"]))
    result("family %s (%s) vs llama.cpp" % (name, c["arch"]), errs,
           "logits %.2g rel, attention %.2g, %d runs (SIMD paths x 1,2 threads)" % (el, ea, runs))
    attribute_sum(name, c, gguf)


def attribute_sum(name, c, gguf):
    """attribute's components add up to the model's own logit difference where
    the split is exact, and the command refuses models where it is not (norms
    after the sub-blocks: gemma2, olmo2; a logit soft-cap: gemma2)."""
    ids = ",".join(map(str, c["ids"]))
    r = attn("attribute", "-m", gguf, "--ids", ids, "--target", "#3", "--against", "#5", "--format", "json")
    inexact = c["arch"] in ("gemma2", "olmo2")
    errs = []
    if inexact:
        if r.returncode != 2 or "not a sum of its parts" not in r.stderr:
            errs.append("expected a refusal (exit 2), got %d: %s" % (r.returncode, r.stderr.strip()[:200]))
    elif r.returncode != 0:
        errs.append("exit %d: %s" % (r.returncode, r.stderr.strip()[:200]))
    else:
        j = json.loads(r.stdout)
        total = sum(x["value"] for x in j["components"])
        if abs(total - j["logit"]) > 1e-4 * max(1.0, abs(j["logit"])):
            errs.append("components sum to %.7g, logit difference %.7g" % (total, j["logit"]))
    result("family %s (%s) attribute: %s" % (name, c["arch"], "refused" if inexact else "sum = logit"), errs)


def pythia_steps(tmp, F):
    """A Pythia revision folder named stepN converts with attn.training.steps = N."""
    hf = os.path.join(tmp, "step1000")
    F.make_folder("pythia", hf)
    gguf = os.path.join(tmp, "step1000.gguf")
    convert(hf, "-o", gguf)
    out = attn("info", "-m", gguf, rc=0).stdout
    result("family pythia stepN folder gives attn.training.steps", [] if "train steps  1000" in out else [out[-300:]])


def main():
    idx = os.path.join(DATA, "index.json")
    if not os.path.exists(idx):
        skip("families", "no tests/parity/families/index.json (run make parity with llama.cpp built)")
        return
    try:
        import numpy  # noqa: F401
        import families as F
    except ImportError as e:
        skip("families", "needs numpy to rebuild the random folders: %s" % e)
        return
    index = json.load(open(idx))
    tmp = scratch("families")
    try:
        pythia_steps(tmp, F)
    except ERRORS as e:
        result("family pythia stepN folder gives attn.training.steps", [e])
    for name, c in index.items():
        try:
            case(name, c, tmp, F)
        except ERRORS as e:
            result("family %s (%s) vs llama.cpp" % (name, c["arch"]), [e])


main()
done()
