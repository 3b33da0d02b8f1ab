"""Parity: attention probabilities and logits of `attn run --export` against the
references' own float64 forward (../shared/ref: nanoGPT model.py, llama2.c
model.py + export.py), for models saved the way those projects save them and
converted with tools/convert.py.

Live cases (need torch + numpy, /usr/bin/python3): random models with fixed
seeds, q/k weights scaled up so attention is far from uniform, norms and biases
randomised. Attention is recomputed from each reference attention module's own
weights in a forward hook; logits come from passing targets.
Golden cases (need only the standard library): tests/parity/goldens/, made by
`make parity` from the same references.

F32 bounds (README "Tested models"): attention <= 1e-5 absolute, logits <= 1e-4 relative to
max |logit|. Lower-precision files are compared against the F32 run of the
same model; see LOWP_BOUNDS.
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from testlib import ATTN, ERRORS, ROOT, attn, convert, done, read_npy, reference_models, result, scratch, skip

GOLDENS = os.path.join(ROOT, "tests", "parity", "goldens")
ATT_BOUND, LOGIT_BOUND = 1e-5, 1e-4

# Lower precision vs the F32 file of the same model. Per weight, the rms
# relative rounding error e is: f16 2^-11/sqrt(3) (2.8e-4), bf16 2^-8/sqrt(3)
# (2.3e-3); q8_0 rounds to a step of max|block|/127 (rms step/sqrt(12)), and a
# Gaussian block of 32 has max|x| ~ 2.1 sigma, so e = 2.1/127/sqrt(12) = 4.8e-3
# of a typical weight, counted twice (9.5e-3) because q8_0 dot products may
# quantize the activations to Q8_0 as well, as ggml does. These errors move
# every score by about e times its spread (score std ~3 here, see refmodels),
# and a softmax moves a probability by at most half the change of a score
# difference; over all L*H*T*T entries and two layers the largest deviation
# measured here is 3-9 e. The bounds are 24 e on attention probabilities
# (absolute) and on logits (relative to max |logit|), i.e. f16 6.8e-3,
# bf16 5.4e-2, q8_0 0.23. Each case also checks that the error is not zero, so
# the dtype was really used.
def _lowp_bound(e):
    return (24 * e, 24 * e)


LOWP_BOUNDS = {"f16": _lowp_bound(2 ** -11 / 3 ** 0.5), "bf16": _lowp_bound(2 ** -8 / 3 ** 0.5),
               "q8_0": _lowp_bound(2 * 2.1 / 127 / 12 ** 0.5)}


def attn_export(gguf, ids, out, simd=None, threads=2):
    """attn run --export -> ((shape, attention), (shape, logits)); simd sets ATTN_SIMD."""
    env = dict(os.environ)
    env.pop("ATTN_SIMD", None)
    if simd:
        env["ATTN_SIMD"] = simd
    attn("run", "-m", gguf, "--ids", ",".join(map(str, ids)), "--export", "npy,json", "-o", out, "-t", str(threads),
         rc=0, env=env)
    return read_npy(os.path.join(out, "attention.npy")), read_npy(os.path.join(out, "logits.npy"))


def simd_paths():
    """The SIMD paths this CPU and build have (ATTN_SIMD=name is refused otherwise)."""
    paths = []
    for p in ("scalar", "avx2", "avx512", "neon"):
        env = dict(os.environ, ATTN_SIMD=p)
        r = attn("info", "-m", os.path.join(GOLDENS, "index.json"), env=env)
        if "ATTN_SIMD" not in r.stderr:
            paths.append(p)
    return paths


def compare(got, want_shape, want, what):
    """Max abs error of got (shape, flat list) against want (flat list), or an error string."""
    shape, vals = got
    if tuple(shape) != tuple(want_shape):
        return None, "%s shape %s, expected %s" % (what, shape, tuple(want_shape))
    return max(abs(a - b) for a, b in zip(vals, want)), None


def entropy_ratio(shape, att):
    """Mean over rows t >= 1 of row entropy / log(t+1): 1 = uniform attention."""
    import math
    T = shape[-1]
    tot, n = 0.0, 0
    for r in range(len(att) // T):
        t = r % T
        if t == 0:
            continue
        row = att[r * T:r * T + t + 1]
        tot += -sum(p * math.log(p) for p in row if p > 0) / math.log(t + 1)
        n += 1
    return tot / n if n else 0.0


def check(name, runs, att_shape, att, log_shape, logits, bounds=(ATT_BOUND, LOGIT_BOUND), nonzero=False):
    """runs: [(label, (shape, attention), (shape, logits))]; one line with the worst errors of all runs."""
    errs = []
    worst_a = worst_l = 0.0
    scale = max(abs(x) for x in logits)
    for label, got_att, got_log in runs:
        ea, e1 = compare(got_att, att_shape, att, "attention")
        el, e2 = compare(got_log, log_shape, logits, "logits")
        if e1 or e2:
            errs.append("%s: %s" % (label, e1 or e2))
            continue
        el /= scale
        if ea > bounds[0]:
            errs.append("%s: attention max abs error %.3g > %.3g" % (label, ea, bounds[0]))
        if el > bounds[1]:
            errs.append("%s: logits max rel error %.3g > %.3g" % (label, el, bounds[1]))
        worst_a, worst_l = max(worst_a, ea), max(worst_l, el)
    if nonzero and worst_a == 0 and worst_l == 0:
        errs.append("no difference at all from f32: dtype not applied")
    paths = sorted(set(r[0].split(" ")[0] for r in runs if r[0]))
    result(name, errs, "attention %.2g, logits %.2g (bounds %.2g, %.2g; entropy %.2f of uniform%s)"
           % (worst_a, worst_l, bounds[0], bounds[1], entropy_ratio(att_shape, att),
              "; worst of %s x -t 1,2" % "/".join(paths) if paths else ""))


def attn_runs(gguf, ids, out, paths):
    """attn run --export on every SIMD path in paths, with 1 and 2 threads."""
    return [("%s -t%d" % (p, t),) + attn_export(gguf, ids, out, p, t) for p in paths for t in (1, 2)]


# ---------------------------------------------------------------- goldens (standard library)


def golden_cases(tmp):
    index = os.path.join(GOLDENS, "index.json")
    if not os.path.exists(index):
        skip("parity goldens", "tests/parity/goldens/index.json missing (make parity)")
        return
    with open(index) as f:
        cases = json.load(f)
    for c in cases:
        name = "parity golden %s" % c["name"]
        try:
            out = os.path.join(tmp, c["name"] + ".gguf")
            convert(os.path.join(GOLDENS, c["file"]), "-o", out, *c.get("args", []))
            with open(os.path.join(GOLDENS, c["expect"])) as f:
                exp = json.load(f)
            runs = attn_runs(out, exp["ids"], os.path.join(tmp, c["name"]), simd_paths())
            check(name, runs, exp["attention_shape"], exp["attention"], exp["logits_shape"], exp["logits"])
        except ERRORS as e:
            result(name, [str(e)])


# ---------------------------------------------------------------- live cases (torch)


def rope_self_check(R):
    import torch
    # Self-check of the test's RoPE (used for RoPE nanoGPT) against llama2.c's apply_rotary_emb.
    x = torch.randn(1, 3, 7, 20, dtype=torch.float64)
    cos, sin = R.llama.precompute_freqs_cis(20, 7)
    ref, _ = R.llama.apply_rotary_emb(x.transpose(1, 2), x.transpose(1, 2), cos.double(), sin.double())
    err = (R.rope_rotate(x, 10000.0, "pairs") - ref.transpose(1, 2)).abs().max().item()
    result("parity rope self-check (pairs vs llama2.c apply_rotary_emb)", [] if err < 1e-5 else ["error %g" % err])


def makers(R):
    """ng/ll make a model (nanoGPT, llama2.c), save_* write it as a source file."""
    def ng(**k):
        return lambda: R.make_nanogpt(**k)

    def ll(**k):
        return lambda: R.make_llama(**k)

    def save_ng(**k):
        return lambda m, p: R.save_nanogpt(m, p + ".pt", **k) or p + ".pt"

    def save_bin(v):
        return lambda m, p: R.save_llama_bin(m, p + ".bin", v) or p + ".bin"

    def save_lck(m, p):
        R.save_llama_ckpt(m, p + ".pt")
        return p + ".pt"

    def save_hf_gpt2(fmt):
        return lambda m, p: R.save_hf_gpt2(m, p, fmt) or p

    def save_hf_llama(shards):
        return lambda m, p: R.save_hf_llama(m, p, shards) or p

    return ng, ll, save_ng, save_bin, save_lck, save_hf_gpt2, save_hf_llama


def live_specs(R):
    ng, ll, save_ng, save_bin, save_lck, save_hf_gpt2, save_hf_llama = makers(R)
    # name, model, saver, convert args, sequence lengths (the model's context is the last)
    cases = [
        ("nanogpt bias tied _orig_mod", ng(seed=1, n_embd=64, n_head=4, block_size=16, vocab_size=97),
         save_ng(orig_mod=True, with_optimizer=True), [], (1, 7, 16)),
        ("nanogpt nobias untied hd20 V300", ng(seed=2, n_embd=80, n_head=4, block_size=12, vocab_size=300, bias=False,
                                              tied=False), save_ng(), [], (1, 12)),
        ("nanogpt rope halves hd24", ng(seed=3, n_embd=96, n_head=4, block_size=12, vocab_size=101, rope="halves"),
         save_ng(), ["--rope", "halves"], (1, 12)),
        ("nanogpt rope pairs hd40 theta500", ng(seed=4, n_embd=80, n_head=2, block_size=10, vocab_size=64, rope="pairs",
                                               rope_theta=500.0, bias=False), save_ng(),
         ["--rope", "pairs", "--rope-theta", "500"], (10,)),
        ("hf gpt2 safetensors", ng(seed=1, n_embd=64, n_head=4, block_size=16, vocab_size=97), save_hf_gpt2("safetensors"),
         [], (16,)),
        ("hf gpt2 pytorch_model.bin untied hd24", ng(seed=5, n_embd=48, n_head=2, block_size=9, vocab_size=70,
                                                     tied=False), save_hf_gpt2("bin"), [], (1, 9)),
        ("llama2.c v0 tied gqa4/2 hd20", ll(seed=6, dim=80, n_heads=4, n_kv_heads=2, max_seq_len=12, vocab_size=97),
         save_bin(0), [], (1, 5, 12)),
        ("llama2.c v1 untied mqa4/1 hd24", ll(seed=7, dim=96, n_heads=4, n_kv_heads=1, max_seq_len=10, vocab_size=150,
                                            tied=False), save_bin(1), [], (1, 10)),
        ("llama2.c v0 untied hd40", ll(seed=8, dim=80, n_heads=2, max_seq_len=8, vocab_size=64, tied=False), save_bin(0),
         [], (8,)),
        ("llama2.c ckpt.pt gqa6/3 hd20", ll(seed=9, dim=120, n_heads=6, n_kv_heads=3, max_seq_len=9, vocab_size=80),
         save_lck, [], (9,)),
        ("hf llama safetensors tied gqa4/2 hd20", ll(seed=6, dim=80, n_heads=4, n_kv_heads=2, max_seq_len=12,
                                                    vocab_size=97), save_hf_llama(1), [], (1, 12)),
        ("hf llama sharded untied mqa4/1 hd24", ll(seed=7, dim=96, n_heads=4, n_kv_heads=1, max_seq_len=10,
                                                  vocab_size=150, tied=False), save_hf_llama(3), [], (10,)),
    ]
    return cases


def check_live(R, tmp, cases, rng):
    """Each case converted and run on every SIMD path against the reference."""
    paths = simd_paths()
    for name, build, save, args, lengths in cases:
        try:
            m = build()
            V = m.config.vocab_size if hasattr(m, "config") else m.params.vocab_size
            src = save(m, os.path.join(tmp, "".join(c if c.isalnum() else "_" for c in name)))
            out = os.path.join(tmp, "m.gguf")
            convert(src, "-o", out, *args)
            for T in lengths:
                ids = [rng.randrange(V) for _ in range(T)]
                att, logits = R.reference_forward(m, ids)
                runs = attn_runs(out, ids, os.path.join(tmp, "out"), paths)
                check("parity %s T=%d" % (name, T), runs, att.shape, att.ravel().tolist(), logits.shape,
                      logits.ravel().tolist())
        except (RuntimeError, OSError, ValueError) as e:
            result("parity %s" % name, [str(e)])


def check_lowp(R, tmp, rng):
    ng, ll, save_ng, save_bin = makers(R)[:4]
    # lower precision: each dtype against the F32 file of the same model
    for name, build, save in (("nanogpt", ng(seed=11, n_embd=64, n_head=4, block_size=16, vocab_size=128), save_ng()),
                              ("llama2.c", ll(seed=12, dim=128, n_heads=4, n_kv_heads=2, max_seq_len=16,
                                              vocab_size=128), save_bin(1))):
        try:
            m = build()
            src = save(m, os.path.join(tmp, "lowp_" + name))
            ids = [rng.randrange(128) for _ in range(16)]
            ref = {}
            for dtype in ("f32", "f16", "bf16", "q8_0"):
                out = os.path.join(tmp, "%s_%s.gguf" % (name, dtype))
                convert(src, "-o", out, "--dtype", dtype)
                ga, gl = attn_export(out, ids, os.path.join(tmp, "out_" + dtype))
                if dtype == "f32":
                    ref = (ga, gl)
                    att, logits = R.reference_forward(m, ids)
                    check("parity %s f32 (lowp baseline) T=16" % name, [("", ga, gl)], att.shape,
                          att.ravel().tolist(), logits.shape, logits.ravel().tolist())
                    continue
                check("parity %s --dtype %s vs f32 T=16" % (name, dtype), [("", ga, gl)], ref[0][0], ref[0][1],
                      ref[1][0], ref[1][1], bounds=LOWP_BOUNDS[dtype], nonzero=True)
        except (RuntimeError, OSError, ValueError) as e:
            result("parity %s low precision" % name, [str(e)])


def live_cases(tmp):
    R = reference_models("parity live cases")
    if R is None:
        return
    import torch
    torch.set_num_threads(1)
    rope_self_check(R)
    rng = random.Random(1234)
    check_live(R, tmp, live_specs(R), rng)
    check_lowp(R, tmp, rng)


def main():
    if not os.access(ATTN, os.X_OK):
        skip("parity", "%s not built" % ATTN)
        return
    r = attn("run", "--help")
    if "--export" not in r.stdout + r.stderr:
        skip("parity", "%s run has no --export yet" % ATTN)
        return
    tmp = scratch("t_parity.")
    golden_cases(tmp)
    live_cases(tmp)


if __name__ == "__main__":
    main()
    done()
