"""Causal commands against the references: `attn ablate`, `attn patch`,
`attn attribute`, `attn run --export resid,z,mlp` and `--loss`, `attn trace
--ablate`, checked against nanoGPT's and llama2.c's own model.py
(../shared/ref) run in float64, with forward hooks that zero, mean-replace or
patch z (the input of the attention output projection: c_proj / wo), the
residual entering a block, and read the MLP output, exactly as the issue
defines them. Random models (tests/parity/refmodels.py), converted with
tools/convert.py: a nanoGPT (GPT-2 blocks, 4 heads of 15 dims) and a llama2.c
(grouped-query, 6 heads of 10 dims on 2 KV heads, separate output head).

Bounds: losses, restored fractions and attribution components (numbers of
order 1) within 1e-4 relative to max(|reference|, 1); exported arrays within
1e-5 absolute (times max(1, max |reference|)); the attribution components sum
to the model's own logit (difference) within 1e-4 relative; trace --ablate
chooses the same tokens as the reference's greedy generation with the heads
zeroed. Bit-identity of interventions that change nothing is
build/tests/unit/test_forward (every SIMD path, 1 and 3 threads) and here: the
clean loss of `ablate` equals `run --loss` exactly.
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from testlib import ATTN, ERRORS, attn, convert, done, read_npy, reference_models, result, scratch, skip

NAMES = ("causal_ablate", "causal_patch", "causal_attribute", "causal_export", "causal_loss", "causal_trace")


WORST = [0.0]  # largest error seen in the current case, relative to max(|reference|, 1)


def rel_ok(got, want, bound=1e-4):
    e = abs(got - want) / max(abs(want), 1.0)
    WORST[0] = max(WORST[0], e)
    return e <= bound


class Ref:
    """A reference model in float64 with hooks at the three stages; edit(kind,
    layer, x) may return a replacement for x (1, T, width)."""

    def __init__(self, R, model):
        import torch
        self.torch, self.R, self.m = torch, R, model.double()
        self.nano = isinstance(model, R.nanogpt.GPT)
        if self.nano:
            c = model.config
            self.L, self.H, self.D = c.n_layer, c.n_head, c.n_embd
            self.blocks = list(model.transformer.h)
        else:
            p = model.params
            self.L, self.H, self.D = p.n_layers, p.n_heads, p.dim
            self.blocks = list(model.layers)
        self.hd = self.D // self.H
        self.edit, self.rec = None, None

    def _f(self, kind, layer, x):
        if self.rec is not None:
            self.rec[kind][layer] = x[0].detach().clone()
        if self.edit is not None:
            y = self.edit(kind, layer, x.clone())
            if y is not None:
                return y
        return x

    def run(self, ids, edit=None, record=False):
        """logits (T, V) float64 numpy and, with record, {kind: [per layer (T, width)]} + 'final'."""
        torch = self.torch
        self.edit = edit
        self.rec = {"resid": [None] * self.L, "z": [None] * self.L, "mlp": [None] * self.L, "final": [None]} \
            if record else None
        hs = []
        for l, b in enumerate(self.blocks):
            hs.append(b.register_forward_pre_hook(lambda mod, a, l=l: (self._f("resid", l, a[0]),) + tuple(a[1:])))
            proj = b.attn.c_proj if self.nano else b.attention.wo
            hs.append(proj.register_forward_pre_hook(lambda mod, a, l=l: (self._f("z", l, a[0]),)))
            if self.nano:
                hs.append(b.mlp.register_forward_hook(lambda mod, a, out, l=l: self._f("mlp", l, out)))
            else:  # llama2.c calls feed_forward.forward() directly: wrap it
                ff, orig = b.feed_forward, b.feed_forward.forward
                ff.forward = lambda x, l=l, orig=orig: self._f("mlp", l, orig(x))
        fn = self.m.transformer.ln_f if self.nano else self.m.norm
        hs.append(fn.register_forward_pre_hook(lambda mod, a: (self._f("final", 0, a[0]),)))
        idx = torch.tensor([ids], dtype=torch.long)
        try:
            with torch.no_grad():
                out = self.m(idx, idx)
        finally:
            for h in hs:
                h.remove()
            if not self.nano:
                for b in self.blocks:
                    del b.feed_forward.forward
        logits = out[0] if isinstance(out, tuple) else out
        return logits[0].numpy()

    def loss(self, logits, ids):
        import numpy as np
        lg = logits[:-1]
        mx = lg.max(axis=1, keepdims=True)
        lse = (mx[:, 0] + np.log(np.exp(lg - mx).sum(axis=1)))
        return float(np.mean(lse - lg[np.arange(len(ids) - 1), ids[1:]]))

    def zero_heads(self, heads, value=None):
        """An edit that sets the z of (l, h) in heads to 0 (or value[l][h], a vector)."""
        def edit(kind, layer, x):
            if kind != "z":
                return None
            for (l, h) in heads:
                if l == layer:
                    x[0, :, h * self.hd:(h + 1) * self.hd] = 0 if value is None else value[l][h]
            return x
        return edit


def ablate_case(ref, gguf, ids):
    errs, n = [], 0
    clean, rec = None, None
    lg = ref.run(ids, record=True)
    rec = ref.rec
    clean = ref.loss(lg, ids)
    means = [[rec["z"][l][:, h * ref.hd:(h + 1) * ref.hd].mean(0) for h in range(ref.H)] for l in range(ref.L)]
    for mode in ("zero", "mean"):
        got = json.loads(attn("ablate", "-m", gguf, "--ids", ",".join(map(str, ids)), "--mode", mode,
                              "--format", "json", "-t", "2", rc=0).stdout)
        if got["mode"] != mode or got["tokens"] != len(ids) or len(got["heads"]) != ref.L * ref.H:
            errs.append("%s: json %s" % (mode, {k: got[k] for k in ("mode", "tokens")}))
        if not rel_ok(got["loss"], clean):
            errs.append("%s clean loss %g, reference %g" % (mode, got["loss"], clean))
        deltas = [e["delta_loss"] for e in got["heads"]]
        if deltas != sorted(deltas, reverse=True):
            errs.append("%s: not sorted by delta" % mode)
        for e in got["heads"]:
            l, h = e["layer"], e["head"]
            want = ref.loss(ref.run(ids, ref.zero_heads([(l, h)], means if mode == "mean" else None)), ids)
            n += 1
            if not rel_ok(e["loss"], want) or not rel_ok(e["delta_loss"], want - clean):
                errs.append("%s L%dH%d loss %g (delta %g), reference %g (%g)" % (mode, l, h, e["loss"],
                                                                               e["delta_loss"], want, want - clean))
    heads = [(0, 1), (ref.L - 1, ref.H - 1)]
    got = json.loads(attn("ablate", "-m", gguf, "--ids", ",".join(map(str, ids)), "--mode", "mean", "--heads",
                          ",".join("%d.%d" % p for p in heads), "--format", "json", rc=0).stdout)
    want = ref.loss(ref.run(ids, ref.zero_heads(heads, means)), ids)
    n += 1
    e = got["heads"][0] if len(got["heads"]) == 1 else {}
    if e.get("heads") != [list(p) for p in heads] or not rel_ok(e.get("loss", 1e9), want):
        errs.append("set %s: %s, reference loss %g" % (heads, e, want))
    # the clean loss is exactly `run --loss`'s
    rl = json.loads(attn("run", "-m", gguf, "--ids", ",".join(map(str, ids)), "--loss", "--format", "json",
                         rc=0).stdout)
    if rl["loss"] != got["loss"]:
        errs.append("ablate's clean loss %r differs from run --loss %r" % (got["loss"], rl["loss"]))
    return errs, n


def metric(lg, t, a):
    return lg[-1, t] - (lg[-1, a] if a is not None else 0.0)


def patch_case(ref, gguf, clean_ids, corr_ids):
    import numpy as np
    errs, n = [], 0
    lc = ref.run(clean_ids, record=True)
    rc_ = ref.rec
    lx = ref.run(corr_ids)
    t = int(np.argmax(lc[-1]))
    a = int(np.argmax(lx[-1]))
    if a == t:
        a = int(np.argsort(lx[-1])[-2])
    mc, mx = metric(lc, t, a), metric(lx, t, a)
    got = json.loads(attn("patch", "-m", gguf, "--clean-ids", ",".join(map(str, clean_ids)), "--corrupt-ids",
                          ",".join(map(str, corr_ids)), "--target", "#%d" % t, "--against", "#%d" % a,
                          "--format", "json", rc=0).stdout)
    if not rel_ok(got["clean"], mc) or not rel_ok(got["corrupt"], mx):
        errs.append("metric clean %g corrupt %g, reference %g %g" % (got["clean"], got["corrupt"], mc, mx))
    hd, T = ref.hd, len(clean_ids)
    for l in range(ref.L):
        for h in range(ref.H):
            def ed(kind, layer, x, l=l, h=h):
                if kind == "z" and layer == l:
                    x[0, :, h * hd:(h + 1) * hd] = rc_["z"][l][:, h * hd:(h + 1) * hd]
                    return x
            want = (metric(ref.run(corr_ids, ed), t, a) - mx) / (mc - mx)
            n += 1
            if not rel_ok(got["heads"][l][h], want):
                errs.append("head L%dH%d restored %g, reference %g" % (l, h, got["heads"][l][h], want))
        for i in range(T):
            def ed(kind, layer, x, l=l, i=i):
                if kind == "resid" and layer == l:
                    x[0, i] = rc_["resid"][l][i]
                    return x
            want = (metric(ref.run(corr_ids, ed), t, a) - mx) / (mc - mx)
            n += 1
            if not rel_ok(got["resid"][l][i], want):
                errs.append("resid L%d pos %d restored %g, reference %g" % (l, i, got["resid"][l][i], want))
    # different lengths: exit 2 naming both
    r = attn("patch", "-m", gguf, "--clean-ids", "1,2,3", "--corrupt-ids", "1,2", "--target", "#1")
    if r.returncode != 2 or "3" not in r.stderr or "2" not in r.stderr:
        errs.append("lengths 3 and 2: exit %d: %s" % (r.returncode, r.stderr.strip()))
    return errs, n


def attribute_case(ref, gguf, ids, pos, against):
    """Components from the reference's own activations, in float64."""
    import numpy as np
    errs = []
    lg = ref.run(ids[:pos + 1], record=True)
    rec = ref.rec
    t = int(np.argmax(lg[pos]))
    a = int(np.argsort(lg[pos])[-2]) if against else None
    m = ref.m
    if ref.nano:
        U, g = m.lm_head.weight.detach().numpy(), m.transformer.ln_f.weight.detach().numpy()
        beta = m.transformer.ln_f.bias.detach().numpy() if m.transformer.ln_f.bias is not None else 0 * g
        Wo = [b.attn.c_proj.weight.detach().numpy() for b in ref.blocks]
        bo = [b.attn.c_proj.bias.detach().numpy() if b.attn.c_proj.bias is not None else None for b in ref.blocks]
        eps = 1e-5
    else:
        U, g, beta = m.output.weight.detach().numpy(), m.norm.weight.detach().numpy(), None
        Wo, bo, eps = [b.attention.wo.weight.detach().numpy() for b in ref.blocks], [None] * ref.L, m.norm.eps
    w = U[t] - (U[a] if a is not None else 0)
    x = rec["final"][0][pos].numpy()
    if ref.nano:
        sigma = math.sqrt(x.var() + eps)
        read = lambda c: float(((c - c.mean()) / sigma * g) @ w)  # noqa: E731
    else:
        rms = math.sqrt((x * x).mean() + eps)
        read = lambda c: float((c / rms * g) @ w)  # noqa: E731
    want = {"embed": read(rec["resid"][0][pos].numpy()), "bias": float(beta @ w) if beta is not None else 0.0}
    hd = ref.hd
    for l in range(ref.L):
        z = rec["z"][l][pos].numpy()
        for h in range(ref.H):
            want["L%dH%d" % (l, h)] = read(Wo[l][:, h * hd:(h + 1) * hd] @ z[h * hd:(h + 1) * hd])
        want["L%d.attn_bias" % l] = read(bo[l]) if bo[l] is not None else 0.0
        want["L%d.mlp" % l] = read(rec["mlp"][l][pos].numpy())
    args = ["attribute", "-m", gguf, "--ids", ",".join(map(str, ids)), "--target", "#%d" % t, "--pos", str(pos),
            "--format", "json"]
    if a is not None:
        args += ["--against", "#%d" % a]
    got = json.loads(attn(*args, rc=0).stdout)
    comps = {c["name"]: c["value"] for c in got["components"]}
    if set(comps) != set(want) or got["target"] != t or got["against"] != a or got["pos"] != pos:
        errs.append("names %s / header %s" % (sorted(set(comps) ^ set(want)), [got["target"], got["against"]]))
        return errs, 0
    for k, v in want.items():
        if not rel_ok(comps[k], v):
            errs.append("%s %g, reference %g" % (k, comps[k], v))
    model_logit = float(metric(lg[:pos + 1], t, a))
    if not rel_ok(got["logit"], model_logit) or not rel_ok(sum(comps.values()), got["logit"]):
        errs.append("logit %g, sum of components %g, reference logit %g" % (got["logit"], sum(comps.values()),
                                                                         model_logit))
    if not rel_ok(sum(want.values()), model_logit, 1e-6):  # llama2.c's RMSNorm runs in float32
        errs.append("the reference's own components sum to %.12g, its logit %.12g" % (sum(want.values()), model_logit))
    return errs, len(want)


def export_case(ref, gguf, ids, tmp):
    import numpy as np
    errs, n = [], 0
    ref.run(ids, record=True)
    rec = ref.rec
    T, hd = len(ids), ref.hd
    want = {"resid_pre": np.stack(rec["resid"] + [rec["final"][0]]).numpy() if False else
            np.stack([r.numpy() for r in rec["resid"]] + [rec["final"][0].numpy()]),
            "z": np.stack([z.numpy().reshape(T, ref.H, hd) for z in rec["z"]]),
            "mlp_out": np.stack([r.numpy() for r in rec["mlp"]])}
    for sel in ([], ["--layers", "%d" % (ref.L - 1), "--heads", "0,2"]):
        out = os.path.join(tmp, "exp%d" % len(sel))
        attn("run", "-m", gguf, "--ids", ",".join(map(str, ids)), "--export", "resid,z,mlp", "-o", out, *sel, rc=0)
        w = dict(want)
        if sel:
            L1 = ref.L - 1
            w = {"resid_pre": want["resid_pre"][[L1, ref.L]], "z": want["z"][[L1]][:, :, [0, 2]],
                 "mlp_out": want["mlp_out"][[L1]]}
        for k, v in w.items():
            shape, vals = read_npy(os.path.join(out, k + ".npy"))
            if tuple(shape) != v.shape:
                errs.append("%s%s shape %s, expected %s" % (k, " (selected)" if sel else "", shape, v.shape))
                continue
            err = float(np.max(np.abs(np.array(vals) - v.ravel())))
            WORST[0] = max(WORST[0], err / max(1.0, float(np.max(np.abs(v)))))
            n += v.size
            if err > 1e-5 * max(1.0, float(np.max(np.abs(v)))):
                errs.append("%s max error %g (max |value| %g)" % (k, err, float(np.max(np.abs(v)))))
    return errs, n


def loss_case(ref, gguf, ids, tmp):
    import numpy as np
    errs = []
    lg = ref.run(ids)
    got = json.loads(attn("run", "-m", gguf, "--ids", ",".join(map(str, ids)), "--loss", "--format", "json",
                          rc=0).stdout)
    lse = np.array([np.log(np.exp(lg[i] - lg[i].max()).sum()) + lg[i].max() for i in range(len(ids) - 1)])
    nll = lse - lg[np.arange(len(ids) - 1), ids[1:]]
    for e, v in zip(got["per_token"], nll):
        if not rel_ok(e["nll"], v):
            errs.append("position %d nll %g, reference %g" % (e["position"], e["nll"], v))
    if len(got["per_token"]) != len(ids) - 1 or not rel_ok(got["loss"], nll.mean()) or \
            not rel_ok(got["perplexity"], math.exp(nll.mean())):
        errs.append("loss %g perplexity %g, reference %g" % (got["loss"], got["perplexity"], nll.mean()))
    return errs, len(nll)


def trace_case(ref, gguf, ids, heads, n):
    import numpy as np
    seq = list(ids)
    for _ in range(n):
        seq.append(int(np.argmax(ref.run(seq, ref.zero_heads(heads))[-1])))
    got = json.loads(attn("trace", "-m", gguf, "--ids", ",".join(map(str, ids)), "-n", str(n), "--ablate",
                          ",".join("%d.%d" % p for p in heads), "--format", "json", rc=0).stdout)
    plain = json.loads(attn("trace", "-m", gguf, "--ids", ",".join(map(str, ids)), "-n", str(n), "--format", "json",
                            rc=0).stdout)
    ch = [s["chosen"] for s in got["steps"]]
    errs = [] if ch == seq[len(ids):] else ["chose %s, reference %s" % (ch, seq[len(ids):])]
    if ch == [s["chosen"] for s in plain["steps"]]:
        errs.append("the ablation changed no token (a weak case): %s" % ch)
    return errs, n


def corpus_case(tmp):
    """ablate / run --loss -f FILE --each-line on the built-in model: the corpus
    loss is the token-weighted mean of the lines' own losses (zero mode, where
    the lines do not share a mean)."""
    lines = ["The cat sat on the mat.", "", "The jury said it did not.", "He went to the house and sat down."]
    path = os.path.join(tmp, "corpus.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    errs, tot, n = [], {}, 0
    for ln in lines:
        if not ln:
            continue
        one = json.loads(attn("ablate", "-p", ln, "--heads", "1.0,0.2", "--format", "json", rc=0).stdout)
        k = one["tokens"] - 1
        tot["clean"] = tot.get("clean", 0) + one["loss"] * k
        tot["abl"] = tot.get("abl", 0) + one["heads"][0]["loss"] * k
        n += k
    got = json.loads(attn("ablate", "-f", path, "--each-line", "--heads", "1.0,0.2", "--format", "json", rc=0).stdout)
    if not rel_ok(got["loss"], tot["clean"] / n, 1e-7) or not rel_ok(got["heads"][0]["loss"], tot["abl"] / n, 1e-7):
        errs.append("corpus losses %g %g, lines' weighted mean %g %g" % (got["loss"], got["heads"][0]["loss"],
                                                                         tot["clean"] / n, tot["abl"] / n))
    rl = json.loads(attn("run", "-f", path, "--each-line", "--loss", "--format", "json", rc=0).stdout)
    if rl["lines"] != 3 or rl["predicted"] != n or not rel_ok(rl["loss"], tot["clean"] / n, 1e-7) or \
            not rel_ok(rl["perplexity"], math.exp(tot["clean"] / n), 1e-7):
        errs.append("run --loss --each-line %s, expected loss %g over %d tokens" % (rl, tot["clean"] / n, n))
    got = attn("ablate", "-f", path, "--each-line", "--mode", "mean", "--format", "json", rc=0)
    if len(json.loads(got.stdout)["heads"]) != 8:
        errs.append("mean mode over the corpus: %s" % got.stdout[:200])
    return errs, n


def main():
    if os.path.exists(ATTN) and attn("info").returncode != 0:
        skip("causal_corpus", "this build has no built-in model")
    elif os.path.exists(ATTN):
        try:
            errs, n = corpus_case(scratch("attn_corpus_"))
        except ERRORS as e:
            errs, n = [e], 0
        result("causal_corpus", errs, "%d predicted tokens" % n)
    R = reference_models(*NAMES)
    if R is None:
        return
    if not os.path.exists(ATTN):
        for nm in NAMES:
            skip(nm, "%s not built" % ATTN)
        return
    tmp = scratch("attn_causal_")
    import random
    rnd = random.Random(5)
    ng = R.make_nanogpt(seed=3, n_layer=2, n_head=4, n_embd=60, block_size=24, vocab_size=97)
    ll = R.make_llama(seed=4, dim=60, n_layers=2, n_heads=6, n_kv_heads=2, vocab_size=97, max_seq_len=24,
                       tied=False)  # tied, this random llama only ever repeats the last token
    cases = []
    for name, model in (("nanogpt", ng), ("llama2c", ll)):
        src = os.path.join(tmp, name + (".pt" if name == "nanogpt" else ".bin"))
        R.save_nanogpt(model, src) if name == "nanogpt" else R.save_llama_bin(model, src, 0)
        gguf = os.path.join(tmp, name + ".gguf")
        try:
            convert(src, "-o", gguf)
        except RuntimeError as e:
            for nm in NAMES:
                result(nm + "_" + name, [e])
            continue
        cases.append((name, Ref(R, model), gguf))
    # far tail: the final norm scaled so some targets have probability < 1e-30
    import torch
    sharp = R.make_nanogpt(seed=6, n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=97)
    with torch.no_grad():
        sharp.transformer.ln_f.weight.mul_(300.0)
    src, gguf = os.path.join(tmp, "sharp.pt"), os.path.join(tmp, "sharp.gguf")
    R.save_nanogpt(sharp, src)
    try:
        convert(src, "-o", gguf)
        WORST[0] = 0.0
        r9 = random.Random(9)
        ids = [r9.randrange(97) for _ in range(12)]
        errs, n = loss_case(Ref(R, sharp), gguf, ids, tmp)
        lg = Ref(R, sharp).run(ids)
        top = max(float(lg[i].max() - lg[i, ids[i + 1]]) for i in range(len(ids) - 1))
        if top < 70:
            errs.append("a weak case: the largest loss is about %g nats" % top)
        result("causal_loss_tail", errs, "%d losses up to ~%.0f nats, largest error %.2g" % (n, top, WORST[0]))
    except ERRORS as e:
        result("causal_loss_tail", [e])
    for name, ref, gguf in cases:
        ids = [rnd.randrange(97) for _ in range(10)]
        corr = list(ids)
        corr[3] = (corr[3] + 11) % 97
        corr[6] = (corr[6] + 29) % 97
        runs = (("causal_ablate", lambda: ablate_case(ref, gguf, ids)),
                ("causal_patch", lambda: patch_case(ref, gguf, ids, corr)),
                ("causal_attribute", lambda: tuple(a + b for a, b in zip(attribute_case(ref, gguf, ids, 9, True),
                                                                          attribute_case(ref, gguf, ids, 5, False)))),
                ("causal_export", lambda: export_case(ref, gguf, ids, tmp)),
                ("causal_loss", lambda: loss_case(ref, gguf, ids, tmp)),
                ("causal_trace", lambda: trace_case(ref, gguf, ids[:5], [(0, 1), (1, 2)], 10)))
        for nm, fn in runs:
            WORST[0] = 0.0
            try:
                errs, n = fn()
            except ERRORS as e:
                errs, n = [e], 0
            result(nm + "_" + name, errs, "%d values against the reference, largest error %.2g" % (n, WORST[0]))


if __name__ == "__main__":
    main()
    done()
