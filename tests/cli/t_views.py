"""attn maps / compare from the command line, on small random models built
with ../shared/ref/nanoGPT (model.py) and converted with tools/convert.py:
PNGs decode (zlib + struct) to their stated size under 4096 pixels, SVGs parse
as XML and carry the token labels as real text (UTF-8: Korean, emoji, <&>),
--term draws ANSI colour, --scale/--drop-first/label thinning are said on the
picture, and `compare`'s per-head Jensen-Shannon divergence and head-type
scores equal values computed from the reference model's own float64
attention (1e-4). Needs torch + numpy (/usr/bin/python3); prints SKIP without.
"""
import json
import math
import os
import xml.etree.ElementTree as ET
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
import testlib
from testlib import MODELS, convert, done, reference_models, result, scratch, skip

GPT2_TOK = os.path.join(MODELS, "gpt2-tokenizer")


def attn(*args, ok=True):
    """./attn ARGS with bytes output; RuntimeError on a non-zero exit unless ok=False."""
    return testlib.attn(*args, rc=0 if ok else None, text=False)


def png_size(path):
    """(width, height) of an 8-bit RGB PNG, every chunk's CRC checked and IDAT inflated (testlib.png_read)."""
    return testlib.png_read(path)[:2]


def svg_texts(path):
    ns = "{http://www.w3.org/2000/svg}"
    root = ET.parse(path).getroot()
    return [t.text or "" for t in root.iter(ns + "text")]


def make_models(R, tmp):
    """Two random nanoGPTs [(model, gguf)], and one with the GPT-2 tokenizer (its gguf)."""
    models = []
    for seed in (31, 32):
        m = R.make_nanogpt(seed=seed, n_layer=2, n_head=4, n_embd=32, block_size=256, vocab_size=97)
        pt = os.path.join(tmp, "m%d.pt" % seed)
        R.save_nanogpt(m, pt)
        g = os.path.join(tmp, "m%d.gguf" % seed)
        convert(pt, "-o", g)
        models.append((m, g))
    # a model with the GPT-2 tokenizer, for labels in many scripts
    mt = R.make_nanogpt(seed=33, n_layer=1, n_head=2, n_embd=16, block_size=64, vocab_size=50257)
    pt = os.path.join(tmp, "tok.pt")
    R.save_nanogpt(mt, pt)
    gtok = os.path.join(tmp, "tok.gguf")
    convert(pt, "-o", gtok, "--tokenizer", GPT2_TOK)
    return models, gtok


def maps_files(models, ids_s, tmp):
    # maps: every head + grid, PNG and SVG
    errs = []
    out = os.path.join(tmp, "maps")
    try:
        attn("maps", "-m", models[0][1], "--ids", ids_s, "-o", out, "--format", "png,svg")
        names = sorted(os.listdir(out))
        want = sorted(["L%02d_H%02d.%s" % (l, h, e) for l in range(2) for h in range(4) for e in ("png", "svg")] +
                      ["grid.png", "grid.svg"])
        if names != want:
            errs.append("files %s" % names)
        for n in names:
            if n.endswith(".png"):
                w, h = png_size(os.path.join(out, n))
                if not (100 < w < 4096 and 100 < h < 4096):
                    errs.append("%s is %dx%d" % (n, w, h))
            else:
                texts = svg_texts(os.path.join(out, n))
                if not any("layer" in t for t in texts) or "attended to" not in texts:
                    errs.append("%s: no title/axis text" % n)
    except (RuntimeError, ValueError, OSError, ET.ParseError) as e:
        errs.append(e)
    result("views_maps_files", errs)


def svg_text(models, gtok, tmp):
    # labels as real text in SVG; the scale, --drop-first and thinning stated
    errs = []
    try:
        text = "caf\u00e9 \ud55c\uad6d\uc5b4 \U0001F642 <&> \"q\""
        out = os.path.join(tmp, "svg")
        attn("maps", "-m", gtok, "-p", text, "-o", out, "--format", "svg", "--scale", "log", "--drop-first",
             "--no-grid")
        texts = svg_texts(os.path.join(out, "L00_H00.svg"))
        joined = "".join(texts)
        for s in ("\u00e9", "\ud55c", "<", "&", ">", "\"", "log10", "--drop-first"):
            if s not in joined:
                errs.append("%r not in the SVG text" % s)
        attn("maps", "-m", models[0][1], "--ids", ",".join(str(i % 90) for i in range(200)), "-o", out,
             "--format", "png,svg", "--layers", "1", "--heads", "2", "--scale", "row")
        w, h = png_size(os.path.join(out, "L01_H02.png"))
        joined = "".join(svg_texts(os.path.join(out, "L01_H02.svg")))
        if "labels: every" not in joined or "row" not in joined or w >= 4096 or h >= 4096:
            errs.append("200 tokens: %dx%d, no stride/scale note" % (w, h))
    except (RuntimeError, ValueError, OSError, ET.ParseError) as e:
        errs.append(e)
    result("views_svg_text", errs)


def term(models, ids, ids_s):
    # --term: ANSI truecolor rows, one per token
    r = attn("maps", "-m", models[0][1], "--ids", ids_s, "--term", "--layers", "0", "--heads", "1", ok=False)
    rows = [l for l in r.stdout.decode().split("\n") if "\x1b[48;2;" in l and l.count("\x1b[48;2;") >= 1]
    result("views_term", [] if r.returncode == 0 and len(rows) >= len(ids) else
           ["exit %d, %d colour rows" % (r.returncode, len(rows))])


def ref_jsd(a, b):
    """Jensen-Shannon divergence in bits of two [T,T] attention maps, mean over rows 1..T-1."""
    T = len(a)
    js = 0
    for q in range(1, T):
        for k in range(q + 1):
            x, y = a[q, k], b[q, k]
            m_ = (x + y) / 2
            js += (0.5 * x * math.log2(x / m_) if x > 0 else 0) + (0.5 * y * math.log2(y / m_) if y > 0 else 0)
    return js / (T - 1)


def ref_scores(a):
    """previous, first and entropy_bits of one [T,T] attention map."""
    import numpy as np
    T = len(a)
    return {"previous": np.mean([a[i, i - 1] for i in range(1, T)]),
            "first": np.mean([a[i, 0] for i in range(1, T)]),
            "entropy_bits": np.mean([-sum(p * math.log2(p) for p in a[i, :i + 1] if p > 0) for i in range(T)])}


def compare_jsd(R, models, ids, ids_s):
    # compare: JSD and head types against the reference's float64 attention
    errs = []
    try:
        got = json.loads(attn("compare", "-m", models[0][1], "-m", models[1][1], "--ids", ids_s,
                              "--format", "json").stdout)
        att = [R.reference_forward(m, ids)[0] for m, _ in models]  # [L,H,T,T] float64
        for hd in got["heads"]:
            a, b = att[0][hd["layer"], hd["head"]], att[1][hd["layer"], hd["head"]]
            js = ref_jsd(a, b)
            if abs(hd["jsd_bits"][0] - js) > 1e-4:
                errs.append("L%d H%d: jsd %.6g, reference %.6g" % (hd["layer"], hd["head"], hd["jsd_bits"][0], js))
            s = hd["scores"][0]
            for key, want in ref_scores(a).items():
                if abs(s[key] - want) > 1e-4:
                    errs.append("L%d H%d %s: %.6g, reference %.6g" % (hd["layer"], hd["head"], key, s[key], want))
        if len(got["heads"]) != 8 or len(got["models"]) != 2:
            errs.append("%d heads, %d models" % (len(got["heads"]), len(got["models"])))
    except (RuntimeError, ValueError, KeyError) as e:
        errs.append(e)
    result("views_compare_jsd", errs)


def compare_files(models, ids_s, tmp):
    # compare against a random init: pictures; three models: a timeline table
    errs = []
    try:
        out = os.path.join(tmp, "cmp")
        t = attn("compare", "-m", models[0][1], "--init", "random", "--seed", "5", "--ids", ids_s, "-o", out,
                 "--layers", "1", "--heads", "0,3").stdout.decode()
        if "random init" not in t or "jsd A-B" not in t:
            errs.append("table: %r" % t[:200])
        for n in ("compare_L01_H00.png", "compare_L01_H03.png", "compare_grid.png"):
            png_size(os.path.join(out, n))
        t = attn("compare", "-m", models[0][1], "-m", models[1][1], "-m", models[0][1], "--ids", ids_s,
                 "--format", "tsv").stdout.decode().split("\n")
        if t[0].split("\t") != ["layer", "head", "jsd_bits_AB", "jsd_bits_BC", "type_A", "type_B", "type_C"] or \
                len([l for l in t[1:] if l]) != 8:
            errs.append("timeline: %r" % t[:2])
    except (RuntimeError, ValueError, OSError) as e:
        errs.append(e)
    result("views_compare_files", errs)


def bad_input(models, gtok, ids_s, tmp):
    # bad input: exit 2, a one-line message, nothing half-written
    errs = []
    for args in (["maps", "-m", models[0][1], "--ids", ids_s],
                 ["maps", "-m", models[0][1], "--ids", ids_s, "-o", os.path.join(tmp, "bad"), "--layers", "7"],
                 ["maps", "-m", models[0][1], "--ids", ids_s, "-o", os.path.join(tmp, "bad"), "--scale", "x"],
                 ["compare", "-m", models[0][1], "-m", gtok, "--ids", "1,2"],
                 ["compare", "-m", models[0][1], "--ids", "1,2"]):
        r = attn(*args, ok=False)
        if r.returncode != 2 or not r.stderr.startswith(b"attn: "):
            errs.append("%s: exit %d %r" % (" ".join(args[:1] + args[-2:]), r.returncode, r.stderr[:80]))
    bad = os.path.join(tmp, "bad")
    if os.path.isdir(bad) and os.listdir(bad):
        errs.append("files left in %s: %s" % (bad, os.listdir(bad)))
    result("views_bad_input", errs)


def main():
    R = reference_models("views")
    if R is None:
        return
    if not os.path.isdir(GPT2_TOK):
        skip("views", "../shared/models/gpt2-tokenizer not found")
        return
    tmp = scratch("attn_views_")
    models, gtok = make_models(R, tmp)
    ids = [5, 17, 17, 42, 8, 5, 17, 60, 3, 11]
    ids_s = ",".join(map(str, ids))
    maps_files(models, ids_s, tmp)
    svg_text(models, gtok, tmp)
    term(models, ids, ids_s)
    compare_jsd(R, models, ids, ids_s)
    compare_files(models, ids_s, tmp)
    bad_input(models, gtok, ids_s, tmp)


if __name__ == "__main__":
    main()
    done()
