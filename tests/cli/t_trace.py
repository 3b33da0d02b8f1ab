"""attn trace against the reference models: small random models built with
../shared/ref (nanoGPT model.py, llama2.c model.py + export.py), saved the way
those projects save them, converted with tools/convert.py (ids only). Greedy
tokens must equal the reference's own argmax chain; every step's top-k
probabilities, raw logits, entropy (bits), margin and tag must equal the
values computed from the reference's float64 logits of the same prefix
(1e-4; logits relative to the largest |logit|). Also: the JSON shape of
`trace --format json`, sampling reproducible by seed, --top-p tiny = greedy, --attn files.
Needs torch + numpy (/usr/bin/python3); prints SKIP without them.
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from testlib import ATTN, ERRORS, attn, convert, done, read_npy, reference_models, result, scratch, skip

TOL = 1e-4


def trace(gguf, ids, n, *extra):
    out = attn("trace", "-m", gguf, "--ids", ",".join(map(str, ids)), "-n", str(n), "-t", "2", "--format", "json",
               *extra, rc=0).stdout
    return json.loads(out)


def tag_of(p1):
    return "collapsed" if p1 >= 0.99 else "confident" if p1 > 0.7 else "lost" if p1 < 0.1 else "uncertain"


def check_steps(R, model, prompt, got, k):
    """got: trace JSON. Each step against softmax of the reference logits of the same prefix."""
    errs, seq = [], list(prompt)
    for st in got["steps"]:
        _, logits = R.reference_forward(model, seq)
        lg = logits[-1]
        mx = lg.max()
        p = [math.exp(x - mx) for x in lg]
        s = sum(p)
        p = [x / s for x in p]
        order = sorted(range(len(p)), key=lambda i: (-p[i], i))
        ent = -sum(x * math.log2(x) for x in p if x > 0)
        scale = max(1.0, float(abs(lg).max()))
        want_chosen = order[0]
        if st["chosen"] != want_chosen:
            errs.append("step %d: chose %d, reference argmax %d" % (st["step"], st["chosen"], want_chosen))
            break
        if abs(st["entropy_bits"] - ent) > TOL:
            errs.append("step %d: entropy %.6g bits, reference %.6g" % (st["step"], st["entropy_bits"], ent))
        if abs(st["margin"] - (p[order[0]] - p[order[1]])) > TOL:
            errs.append("step %d: margin %.6g, reference %.6g" % (st["step"], st["margin"], p[order[0]] - p[order[1]]))
        p1 = p[order[0]]
        if min(abs(p1 - t) for t in (0.99, 0.7, 0.1)) > TOL and st["tag"] != tag_of(p1):
            errs.append("step %d: tag %s, top-1 %.4f is %s" % (st["step"], st["tag"], p1, tag_of(p1)))
        if len(st["top"]) != k:
            errs.append("step %d: %d candidates, not %d" % (st["step"], len(st["top"]), k))
        for j, c in enumerate(st["top"]):
            want = order[j]
            if c["id"] != want and abs(p[c["id"]] - p[want]) > TOL:
                errs.append("step %d rank %d: id %d, reference %d" % (st["step"], j + 1, c["id"], want))
            if abs(c["prob"] - p[c["id"]]) > TOL:
                errs.append("step %d id %d: prob %.6g, reference %.6g" % (st["step"], c["id"], c["prob"], p[c["id"]]))
            if abs(c["logit"] - lg[c["id"]]) > TOL * scale:
                errs.append("step %d id %d: logit %.6g, reference %.6g" % (st["step"], c["id"], c["logit"], lg[c["id"]]))
        seq.append(st["chosen"])
    return errs


def ref_probs(R, model, seq, temp=1.0):
    _, logits = R.reference_forward(model, seq)
    lg = [float(x) / temp for x in logits[-1]]
    mx = max(lg)
    p = [math.exp(x - mx) for x in lg]
    s = sum(p)
    p = [x / s for x in p]
    return p, sorted(range(len(p)), key=lambda i: (-p[i], i))


def check_k1(R, model, gguf, prompt):
    """-k 1: the margin is still p1 - p2 (not p1), in json, tsv and table; repeat = the
    chosen token completes a 3-gram seen before."""
    errs, n = [], 6
    try:
        got = trace(gguf, prompt, n, "-k", "1")
        errs += check_steps(R, model, prompt, got, 1)
        tsv = attn("trace", "-m", gguf, "--ids", ",".join(map(str, prompt)), "-n", str(n), "-k", "1", "--format", "tsv",
                   rc=0).stdout.splitlines()
        head = tsv[0].split("\t")
        table = attn("trace", "-m", gguf, "--ids", ",".join(map(str, prompt)), "-n", str(n), "-k", "1", rc=0).stdout
        margins = [float(x.split("margin ")[1].split()[0]) for x in table.splitlines() if "margin " in x and "bits" in x]
        seq = list(prompt)
        for i, st in enumerate(got["steps"]):
            p, order = ref_probs(R, model, seq)
            want = p[order[0]] - p[order[1]]
            row = dict(zip(head, tsv[1 + i].split("\t")))
            if abs(float(row["margin"]) - want) > TOL or abs(margins[i] - want) > 1e-4 + 5e-5:
                errs.append("step %d: margin tsv %s table %s, reference p1-p2 %.6g" % (i, row["margin"], margins[i], want))
            seq.append(st["chosen"])
            rep = any(seq[j:j + 3] == seq[-3:] for j in range(len(seq) - 3))
            if st["repeat"] != rep or row["repeat"] != str(int(rep)):
                errs.append("step %d: repeat %s / %s, reference %s" % (i, st["repeat"], row["repeat"], rep))
    except ERRORS as e:
        errs.append(str(e))
    result("trace_margin_k1", errs)
    # the built-in model's loop: "bone of the bone of the" is tagged repeat, and
    # --attn DIR draws the attention rows of the tagged steps (tagged.png)
    try:
        adir = scratch("attn_trace_tag_")
        got = json.loads(attn("trace", "-p", "the bone of the", "-n", "6", "--format", "json", "--attn", adir,
                              rc=0).stdout)
        reps = [st["repeat"] for st in got["steps"]]
        errs = [] if any(reps) else ["no repeat tag in %s" % reps]
        with open(os.path.join(adir, "tagged.png"), "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                errs.append("tagged.png is not a PNG")
        result("trace_repeat_builtin", errs)
    except ERRORS as e:
        result("trace_repeat_builtin", [e])


def check_sampled_rank(R, model, gguf, prompt):
    """Sampling at a high temperature with -k 1: a token outside the top-1 shows its
    probability (of softmax(logit / T)) and rank; the table shows it on its own line."""
    errs, outside = [], 0
    try:
        got = trace(gguf, prompt, 8, "-k", "1", "--temp", "3", "--seed", "5")
        seq = list(prompt)
        for st in got["steps"]:
            p, order = ref_probs(R, model, seq, 3.0)
            c = st["chosen"]
            if abs(st["chosen_prob"] - p[c]) > TOL or st["chosen_rank"] != order.index(c) + 1:
                errs.append("step %d: chosen %d prob %.6g rank %d, reference %.6g rank %d"
                            % (st["step"], c, st["chosen_prob"], st["chosen_rank"], p[c], order.index(c) + 1))
            outside += st["chosen_rank"] > 1
            seq.append(c)
        table = attn("trace", "-m", gguf, "--ids", ",".join(map(str, prompt)), "-n", "8", "-k", "1", "--temp", "3",
                     "--seed", "5", rc=0).stdout
        if table.count("<- chosen") != 8:
            errs.append("table marks %d chosen tokens of 8" % table.count("<- chosen"))
        if not outside:
            errs.append("no sampled token outside the top-1 (the case is not exercised)")
    except ERRORS as e:
        errs.append(str(e))
    result("trace_sampled_rank", errs, "%d of 8 outside the top-1" % outside)


def json_shape(got, prompt, n, k):
    errs = []
    if set(got) != {"model", "prompt_ids", "steps"}:
        errs.append("top-level keys %s" % sorted(got))
    if got.get("prompt_ids") != prompt:
        errs.append("prompt_ids %s" % got.get("prompt_ids"))
    steps = got.get("steps", [])
    if len(steps) != n:
        errs.append("%d steps, not %d" % (len(steps), n))
    for i, st in enumerate(steps):
        if set(st) != {"step", "chosen", "chosen_prob", "chosen_rank", "entropy_bits", "margin", "tag", "repeat",
                       "top"} or st["step"] != i:
            errs.append("step %d keys %s" % (i, sorted(st)))
        for c in st.get("top", []):
            if set(c) != {"id", "text", "prob", "logit"} or not isinstance(c["text"], str):
                errs.append("candidate keys %s" % sorted(c))
                break
    return errs


def make_cases(R, tmp):
    """[(name, torch model, source file)]: a nanoGPT and a llama2.c model,
    each plain and with the final norm scaled by 8."""
    import torch
    cases = []
    # flat distributions (lost/uncertain) and, with the final norm scaled up,
    # peaked ones (confident/collapsed)
    for sharp in (1.0, 8.0):
        ng = R.make_nanogpt(seed=11 + int(sharp), n_layer=2, n_head=4, n_embd=64, block_size=24, vocab_size=97)
        ll = R.make_llama(seed=21 + int(sharp), dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=97,
                          max_seq_len=24)
        with torch.no_grad():
            ng.transformer.ln_f.weight.mul_(sharp)
            ll.norm.weight.mul_(sharp)
        p = os.path.join(tmp, "ng%d.pt" % sharp)
        R.save_nanogpt(ng, p)
        cases.append(("nanogpt_x%g" % sharp, ng, p))
        p = os.path.join(tmp, "ll%d.bin" % sharp)
        R.save_llama_bin(ll, p, 0)
        cases.append(("llama2c_x%g" % sharp, ll, p))
    return cases


def check_greedy(R, cases, tmp, prompt, n, k):
    """Each case converted and traced greedily, every step against the reference."""
    tags = set()
    for name, model, src in cases:
        gguf = os.path.join(tmp, name + ".gguf")
        try:
            convert(src, "-o", gguf)
            got = trace(gguf, prompt, n, "-k", str(k))
        except RuntimeError as e:
            result("trace_" + name, [str(e)[-300:]])
            continue
        errs = json_shape(got, prompt, n, k) + check_steps(R, model, prompt, got, k)
        tags.update(st["tag"] for st in got["steps"])
        result("trace_" + name, errs, "%d greedy steps" % len(got["steps"]))
    result("trace_tags_seen", [] if {"lost", "confident"} <= tags or {"collapsed"} <= tags else
           ["tags seen: %s" % sorted(tags)], ", ".join(sorted(tags)))


def check_sampling(gguf, prompt):
    # sampling: reproducible by seed; a nucleus of ~0 mass is the greedy chain
    try:
        a = trace(gguf, prompt, 8, "--temp", "1.5", "--seed", "7")
        b = trace(gguf, prompt, 8, "--temp", "1.5", "--seed", "7")
        c = trace(gguf, prompt, 8, "--temp", "1.5", "--seed", "8")
        g = trace(gguf, prompt, 8)
        t = trace(gguf, prompt, 8, "--temp", "1", "--top-p", "1e-9", "--seed", "3")
        ch = lambda r: [s["chosen"] for s in r["steps"]]  # noqa: E731
        errs = []
        if ch(a) != ch(b):
            errs.append("same seed, different tokens: %s vs %s" % (ch(a), ch(b)))
        if ch(a) == ch(c) == ch(g):
            errs.append("seeds 7 and 8 and greedy all gave %s" % ch(a))
        if ch(t) != ch(g):
            errs.append("--top-p 1e-9 gave %s, greedy %s" % (ch(t), ch(g)))
        result("trace_sampling", errs)
    except RuntimeError as e:
        result("trace_sampling", [e])


def check_heads_json(adir, full, ids, P, L, H, N, errs):
    """heads.json: previous / first / self / induction over the generated rows only,
    recomputed from attention.npy (full, [L,H,N,N] flat) by the definitions in attn.h."""
    with open(os.path.join(adir, "heads.json")) as f:
        hj = json.load(f)
    if hj["rows"] != [P, N - 1] or len(hj["heads"]) != L * H:
        errs.append("heads.json rows %s, %d heads" % (hj["rows"], len(hj["heads"])))
    for h in hj["heads"]:
        lh = h["layer"] * H + h["head"]
        row = lambda q: full[(lh * N + q) * N:(lh * N + q) * N + N]
        rows = range(P, N)
        want = {"previous": sum(row(q)[q - 1] for q in rows) / len(rows),
                "first": sum(row(q)[0] for q in rows) / len(rows),
                "self": sum(row(q)[q] for q in rows) / len(rows)}
        ind = [sum(row(q)[j + 1] for j in range(q - 1) if ids[j] == ids[q]) for q in rows
               if any(ids[j] == ids[q] for j in range(q - 1))]
        want["induction"] = sum(ind) / len(ind) if ind else None
        for k, v in want.items():
            got = h["scores"][k]
            if (v is None) != (got is None) or (v is not None and abs(got - v) > 1e-5):
                errs.append("heads.json L%d H%d %s %s, expected %s" % (h["layer"], h["head"], k, got, v))


def check_attn_files(tmp, gguf, prompt):
    # --attn: per-step rows and the whole attention, consistent with each other
    errs = []
    adir = os.path.join(tmp, "att")
    try:
        attn("trace", "-m", gguf, "--ids", ",".join(map(str, prompt)), "-n", "4", "--attn", adir, "--format", "tsv",
             rc=0)
        shape, full = read_npy(os.path.join(adir, "attention.npy"))
        L, H, N = 2, 4, len(prompt) + 3
        if shape != (L, H, N, N):
            errs.append("attention.npy shape %s" % (shape,))
        for s in range(4):
            sh, row = read_npy(os.path.join(adir, "step_%03d.npy" % s))
            K = len(prompt) + s
            if sh != (L, H, K):
                errs.append("step %d shape %s" % (s, sh))
                continue
            for lh in range(L * H):
                r = row[lh * K:(lh + 1) * K]
                q = K - 1
                f = full[(lh * N + q) * N:(lh * N + q) * N + K]
                if abs(sum(r) - 1) > 1e-5 or any(abs(x - y) > 0 for x, y in zip(r, f)):
                    errs.append("step %d head %d: row sums to %g or differs from attention.npy" % (s, lh, sum(r)))
                    break
        with open(os.path.join(adir, "tokens.json")) as f:
            tj = json.load(f)
        if len(tj["labels"]) != N or tj["ids"][:len(prompt)] != prompt:
            errs.append("tokens.json: %d labels, ids %s" % (len(tj["labels"]), tj["ids"]))
        check_heads_json(adir, full, tj["ids"], len(prompt), L, H, N, errs)
        mdir = os.path.join(tmp, "maps")
        attn("maps", "--from", adir, "-o", mdir, "--layers", "1", "--heads", "0", rc=0)
        if not os.path.exists(os.path.join(mdir, "L01_H00.png")):
            errs.append("maps --from did not draw L01_H00.png")
    except ERRORS as e:
        errs.append(str(e))
    result("trace_attn_files", errs)


def check_bad_input(gguf):
    # bad input: steps past the context, missing -n
    r1 = attn("trace", "-m", gguf, "--ids", "1,2,3", "-n", "30")
    r2 = attn("trace", "-m", gguf, "--ids", "1,2,3")
    result("trace_bad_input", [] if r1.returncode == 2 and r2.returncode == 2 and "attn:" in r1.stderr else
           ["exit %d / %d: %s" % (r1.returncode, r2.returncode, r1.stderr.strip())])


def main():
    R = reference_models("trace_reference")
    if R is None:
        return
    if not os.path.exists(ATTN):
        skip("trace_reference", "%s not built" % ATTN)
        return
    tmp = scratch("attn_trace_")
    cases = make_cases(R, tmp)
    prompt, n, k = [3, 14, 15, 92, 65], 12, 5
    check_greedy(R, cases, tmp, prompt, n, k)
    gguf = os.path.join(tmp, "nanogpt_x1.gguf")
    check_sampling(gguf, prompt)
    check_k1(R, cases[0][1], gguf, prompt)
    check_sampled_rank(R, cases[0][1], gguf, prompt)
    check_attn_files(tmp, gguf, prompt)
    check_bad_input(gguf)


if __name__ == "__main__":
    main()
    done()
