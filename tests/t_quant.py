"""Quantized GGUF files as llama-quantize writes them (every file type users
download: Q4_0 ... Q6_K, Q3_K_M, Q4_K_M, Q5_K_M, IQ4_NL, IQ4_XS) open in attn,
and attn's logits and attention on each equal llama.cpp's on the F32 copy of
the same file (dequant_gguf.py: gguf.quants.dequantize), on every SIMD path.

Bounds: logits max abs error <= 1e-4 of max |logit|, argmax identical per
position; attention probabilities <= 1e-5 absolute. The goldens in
tests/parity/quant/ come from `make parity` (tests/parity/make_quant_models.py:
random LLaMA with GQA -> tools/convert.py --dtype f16 -> llama-quantize ->
lcpp_dump); `make parity` with --live also runs the larger models here.
Standard library only.
"""
import os

from testlib import ROOT, attn, check, done, read_npy, scratch, skip

QUANT = os.path.join(ROOT, "tests", "parity", "quant")
LOGIT_REL, ATT_ABS = 1e-4, 1e-5


def simd_paths(model):
    paths = []
    for p in ("scalar", "avx2", "avx512", "neon"):
        r = attn("info", "-m", model, env=dict(os.environ, ATTN_SIMD=p))
        if r.returncode == 0:
            paths.append(p)
    return paths


def attn_export(model, ids, out, simd):
    env = dict(os.environ, ATTN_SIMD=simd)
    attn("run", "-m", model, "--ids", ",".join(map(str, ids)), "--export", "npy", "-o", out, "-t", "2", rc=0, env=env)
    return read_npy(os.path.join(out, "attention.npy")), read_npy(os.path.join(out, "logits.npy"))


def argmax_rows(shape, vals):
    V = shape[-1]
    return [max(range(V), key=lambda j: vals[t * V + j]) for t in range(len(vals) // V)]


def compare(name, model, lg, at, ids, tmp, paths):
    """One file on every path: returns 1 if it passed."""
    lshape, lwant = read_npy(lg)
    ashape, awant = read_npy(at)
    scale = max(abs(x) for x in lwant)
    ok = True
    for p in paths:
        out = os.path.join(tmp, "%s-%s" % (name.replace(" ", "-"), p))
        os.makedirs(out, exist_ok=True)
        (gas, ga), (gls, gl) = attn_export(model, ids, out, p)
        if tuple(gls) != tuple(lshape) or tuple(gas) != tuple(ashape):
            check(False, "%s %s shapes" % (name, p), "attn %s/%s, llama.cpp %s/%s" % (gls, gas, lshape, ashape))
            ok = False
            continue
        el = max(abs(a - b) for a, b in zip(gl, lwant)) / scale
        ea = max(abs(a - b) for a, b in zip(ga, awant))
        am = argmax_rows(gls, gl) == argmax_rows(lshape, lwant)
        good = el <= LOGIT_REL and ea <= ATT_ABS and am
        ok &= good
        check(good, "%s %s vs llama.cpp" % (name, p),
              "logits rel %.3g (bound %g), attention %.3g (bound %g), argmax %s" %
              (el, LOGIT_REL, ea, ATT_ABS, "same" if am else "differs"))
        print("   %s %s: logits rel %.2e, attention %.2e" % (name, p, el, ea))
    return ok


def check_cases(cases):
    """cases: [(name, model.gguf, logits.npy, attention.npy, ids)] -> exit status."""
    tmp = scratch("attn-tquant-")
    paths = simd_paths(cases[0][1]) if cases else []
    for name, model, lg, at, ids in cases:
        compare(name, model, lg, at, ids, tmp, paths)
    return done()


def info_types():
    """attn info lists a Q4_K_M file's types with their byte shares."""
    model = os.path.join(QUANT, "llama256-q4_k_m.gguf")
    if not os.path.exists(model):
        return
    r = attn("info", "-m", model, rc=0)
    line = [l for l in r.stdout.splitlines() if l.startswith("tensors")]
    check(line and "Q4_K x" in line[0] and "Q6_K x" in line[0] and "%" in line[0], "info lists Q4_K_M types and shares",
          repr(line))


def main():
    index = os.path.join(QUANT, "index.txt")
    if not os.path.exists(index):
        skip("quantized files", "no tests/parity/quant/index.txt (make parity with llama.cpp built)")
        return done()
    cases = []
    for line in open(index):
        if line.startswith("#") or not line.strip():
            continue
        base, ft, ids = line.split()
        cases.append(("%s %s" % (base.split("-")[0], ft), os.path.join(QUANT, base + ".gguf"),
                      os.path.join(QUANT, base + ".logits.npy"), os.path.join(QUANT, base + ".attention.npy"),
                      [int(x) for x in ids.split(",")]))
    info_types()
    return check_cases(cases)


if __name__ == "__main__":
    raise SystemExit(main())
