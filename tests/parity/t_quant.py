"""Quantized GGUF files as llama-quantize writes them (every file type users
download: Q4_0 ... Q6_K, Q3_K_M, Q4_K_M, Q5_K_M, IQ4_NL, IQ4_XS) open in attn,
and attn's logits and attention on each equal llama.cpp's on the F32 copy of
the same file (dequant_gguf.py: gguf.quants.dequantize), on every SIMD path.

Bounds: logits max abs error <= 1e-4 of max |logit|, argmax identical per
position; attention probabilities <= 1e-5 absolute. The goldens in
tests/parity/quant/ come from `make parity` (tests/parity/make_quant_models.py:
random LLaMA with GQA -> tools/convert.py --dtype f16 -> llama-quantize ->
lcpp_dump), and three GPT-2 (nanoGPT, width 256) files, whose logits are
bounded by 5e-3 (llama.cpp's GELU is an F16 table; measured 2.0e-4..2.7e-4)
and attention by 1e-5 (one layer: before any GELU); `make parity` with --live
also runs the larger models here (LLaMA 576 and 896, GPT-2 256 and 576 in all
12 file types).
Also our converter's F32 files of nanoGPT (tied and untied head) and
llama2.c checkpoints, run in llama.cpp (with a made-up SentencePiece
vocabulary added: llama.cpp refuses ids-only files): logits within 1e-5 for
LLaMA, 5e-3 for GPT-2 (llama.cpp's GELU is an F16 table; attention too).
Standard library only.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
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


def compare(name, model, lg, at, ids, tmp, paths, lbound=LOGIT_REL, abound=ATT_ABS):
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
        good = el <= lbound and ea <= abound and am
        ok &= good
        check(good, "%s %s vs llama.cpp" % (name, p),
              "logits rel %.3g (bound %g), attention %.3g (bound %g), argmax %s" %
              (el, lbound, ea, abound, "same" if am else "differs"))
        print("   %s %s: logits rel %.2e, attention %.2e" % (name, p, el, ea))
    return ok


def check_cases(cases):
    """cases: [(name, model.gguf, logits.npy, attention.npy, ids, logits bound, attention bound)] -> exit status."""
    tmp = scratch("attn-tquant-")
    paths = simd_paths(cases[0][1]) if cases else []
    for name, model, lg, at, ids, bl, ba in cases:
        compare(name, model, lg, at, ids, tmp, paths, bl, ba)
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


def compare_kl():
    """attn compare's next-token KL (nats) and top-1 agreement between the Q8_0
    and Q2_K files, against the same quantities computed here from llama.cpp's
    logits of the two files (which attn's equal within 1e-6, checked above)."""
    import json
    import math
    a, b = (os.path.join(QUANT, "llama256-%s" % t) for t in ("q8_0", "q2_k"))
    if not os.path.exists(a + ".gguf") or not os.path.exists(b + ".gguf"):
        return
    ids = [1, 5, 9, 3, 17, 30, 2, 11]
    r = attn("compare", "-m", a + ".gguf", "-m", b + ".gguf", "--ids", ",".join(map(str, ids)), "--format", "json",
             rc=0)
    got = json.loads(r.stdout)["next_token"][0]
    (_, V), la = read_npy(a + ".logits.npy")
    _, lb = read_npy(b + ".logits.npy")
    errs = []
    for t in range(len(ids)):
        x, y = la[t * V:(t + 1) * V], lb[t * V:(t + 1) * V]
        mx, my = max(x), max(y)
        zx = math.log(sum(math.exp(v - mx) for v in x))
        zy = math.log(sum(math.exp(v - my) for v in y))
        kl = sum(math.exp(u - mx - zx) * ((u - mx - zx) - (v - my - zy)) for u, v in zip(x, y))
        same = x.index(mx) == y.index(my)
        if abs(got["kl_nats"][t] - kl) > 1e-4 + 1e-3 * kl or got["top1_same"][t] != same:
            errs.append("position %d: KL %.6g top-1 %s, llama.cpp's logits give %.6g %s"
                        % (t, got["kl_nats"][t], got["top1_same"][t], kl, same))
    check(not errs, "compare: next-token KL and top-1 agreement Q8_0 vs Q2_K", "; ".join(errs[:3]))


def compare_heads():
    """attn compare ranks the heads whose patterns moved most between the Q8_0
    and Q2_K files (table line "most different (A-B)", json "most_different",
    --top N): against each head's Jensen-Shannon divergence (bits, mean over
    query positions 1..T-1) computed here from llama.cpp's attention of the
    two files (which attn's equal within 1e-5, checked above)."""
    import json
    import math
    a, b = (os.path.join(QUANT, "llama256-%s" % t) for t in ("q8_0", "q2_k"))
    if not os.path.exists(a + ".gguf") or not os.path.exists(b + ".gguf"):
        return
    ids = [1, 5, 9, 3, 17, 30, 2, 11]
    (L, H, T, _), pa = read_npy(a + ".attention.npy")
    _, pb = read_npy(b + ".attention.npy")

    def jsd(x, y):  # bits
        d = 0.0
        for u, v in zip(x, y):
            m = (u + v) / 2
            d += (u * math.log(u / m, 2) if u > 0 else 0) / 2 + (v * math.log(v / m, 2) if v > 0 else 0) / 2
        return d

    want = []
    for k in range(L * H):
        rows = [(k * T + q) * T for q in range(1, T)]
        want.append(sum(jsd(pa[r:r + q + 2], pb[r:r + q + 2]) for q, r in enumerate(rows)) / (T - 1))
    rank = sorted(range(L * H), key=lambda k: -want[k])
    args = ["compare", "-m", a + ".gguf", "-m", b + ".gguf", "--ids", ",".join(map(str, ids))]
    got = json.loads(attn(*args, "--format", "json", rc=0).stdout).get("most_different", [])
    errs = ["%d heads listed, want %d" % (len(got), L * H)] if len(got) != L * H else []
    for j, g in enumerate(got[:L * H]):
        k = g["layer"] * H + g["head"]
        if abs(g["jsd_bits"] - want[k]) > 1e-4 or (k != rank[j] and abs(want[k] - want[rank[j]]) > 1e-4):
            errs.append("#%d: L%d H%d %.6g, llama.cpp's attention gives L%d H%d %.6g" % (
                j + 1, g["layer"], g["head"], g["jsd_bits"], rank[j] // H, rank[j] % H, want[rank[j]]))
    line = [l for l in attn(*args, "--top", "2", rc=0).stdout.splitlines() if l.startswith("most different (A-B):")]
    want_line = "most different (A-B):" + "".join("  L%d H%d %.3f" % (k // H, k % H, want[k]) for k in rank[:2])
    if line != [want_line]:
        errs.append("table line %r, want %r" % (line, want_line))
    check(not errs, "compare: heads ranked by JSD Q8_0 vs Q2_K (llama.cpp's attention)", "; ".join(errs[:3]))


def main():
    index = os.path.join(QUANT, "index.txt")
    if not os.path.exists(index):
        skip("quantized files", "no tests/parity/quant/index.txt (make parity with llama.cpp built)")
        return done()
    cases = []
    for line in open(index):
        if line.startswith("#") or not line.strip():
            continue
        base, ft, ids, bl, ba = line.split()
        cases.append(("%s %s" % (base.rsplit("-", 1)[0], ft), os.path.join(QUANT, base + ".gguf"),
                      os.path.join(QUANT, base + ".logits.npy"), os.path.join(QUANT, base + ".attention.npy"),
                      [int(x) for x in ids.split(",")], float(bl), float(ba)))
    info_types()
    compare_kl()
    compare_heads()
    return check_cases(cases)


if __name__ == "__main__":
    raise SystemExit(main())
