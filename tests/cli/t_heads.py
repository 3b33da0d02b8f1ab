"""tests/cli/t_heads.py - `attn heads` on a nanoGPT (../shared/ref/nanoGPT/model.py)
whose heads are built by hand to attend to the previous, the first, the own
token and the token 3 back; converted with tools/convert.py.

Checks: each head's type scores > 0.9 and every score matches the same
definition computed here in Python on the PyTorch model's own attention;
the random-init baseline stays near uniform; the uniform baseline is exact;
induction is null on a prompt with no repeated token; --top/--by; corpus mode
equals the mean of single-prompt runs and keeps its resident memory flat from
100 to 1000 lines; the induction test's shape. SKIP when torch or the
reference model is missing."""
import json
import math
import os
import pickle
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from ref_nanogpt import gpt, reference, save_convert
from testlib import ATTN, attn, check, done, scratch, skip

torch, ng = reference("heads")
if not os.access(ATTN, os.X_OK):
    print("FAIL heads: no binary at %s" % ATTN)
    sys.exit(1)

P, HD, H, D, V = 16, 16, 4, 64, 32   # block size, head dim, heads, width, vocab
BETA = 5.0
CHARS = "abcdefghijklmnopqrstuvwxyz .,!?'"  # 32 characters, a nanoGPT meta.pkl vocabulary
KINDS = ["previous", "first", "self", "offset3"]


def build_model():
    """Embeddings: position p = e_p - e_{16+p}, token t = +-(e_{32+t%16} - e_{48+t%16});
    every row has mean 0 and the same norm, so ln_1 only scales (by ~4). Keys of
    every head read the position (k_j ~ e_j); queries are a shifted position:
    q_i ~ e_{i-1} (previous), e_0 (first), e_i (self), e_{i-3} (offset 3).
    Outputs (c_proj) and the MLP are zero."""
    torch.manual_seed(0)
    m = gpt(ng, block_size=P, vocab_size=V, n_layer=1, n_head=H, n_embd=D, bias=True)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        tr = m.transformer
        for p in range(P):
            tr.wpe.weight[p, p] = 1
            tr.wpe.weight[p, P + p] = -1
        for t in range(V):
            s = 1 if t < 16 else -1
            tr.wte.weight[t, 32 + t % 16] = s
            tr.wte.weight[t, 48 + t % 16] = -s
        blk = tr.h[0]
        blk.ln_1.weight.fill_(1)
        blk.ln_2.weight.fill_(1)
        tr.ln_f.weight.fill_(1)
        W = blk.attn.c_attn.weight  # (3D, D): q rows, k rows, v rows
        for h, kind in enumerate(KINDS):
            q0, k0 = h * HD, D + h * HD
            for r in range(HD):
                W[k0 + r, r] = 1
                if kind == "previous" and r + 1 < P:
                    W[q0 + r, r + 1] = BETA
                elif kind == "first":
                    W[q0, r] = BETA
                elif kind == "self":
                    W[q0 + r, r] = BETA
                elif kind == "offset3" and r + 3 < P:
                    W[q0 + r, r + 3] = BETA
    return m


def torch_attention(m, ids):
    """(H, T, T) attention probabilities of layer 0, recomputed from the module's weights."""
    with torch.no_grad():
        idx = torch.tensor([ids])
        T = len(ids)
        tr = m.transformer
        x = tr.wte(idx) + tr.wpe(torch.arange(T))
        a = tr.h[0].attn
        q, k, _ = a.c_attn(tr.h[0].ln_1(x)).split(D, dim=2)
        q = q.view(1, T, H, HD).transpose(1, 2)
        k = k.view(1, T, H, HD).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(HD)
        att = att.masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf"))
        return torch.softmax(att.double(), dim=-1)[0].tolist()


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def py_scores(p, ids):
    """The definitions of attn.h (README "What the numbers mean"),
    written independently of attn_analysis.c."""
    T = len(ids)
    rows = range(1, T)
    s = {"previous": mean([p[i][i - 1] for i in rows]),
         "first": mean([p[i][0] for i in rows]),
         "self": mean([p[i][i] for i in rows])}
    ind, dup = [], []
    for i in range(T):
        js = [j for j in range(i) if ids[j] == ids[i]]
        if js:
            dup.append(sum(p[i][j] for j in js))
        tj = [j + 1 for j in js if j + 1 < i]
        if tj:
            ind.append(sum(p[i][j] for j in tj))
    s["induction"], s["duplicate"] = mean(ind), mean(dup)
    offs = {k: mean([p[i][i - k] for i in range(k, T)]) for k in range(2, 9)}
    offs = {k: v for k, v in offs.items() if v is not None}
    if offs:
        best = max(offs.values())
        s["offset_k"] = min(k for k, v in offs.items() if v == best)
        s["offset"] = best
    else:
        s["offset_k"], s["offset"] = None, None
    s["entropy_bits"] = mean([-sum(x * math.log2(x) for x in p[i][:i + 1] if x > 0) for i in range(T)])
    return s


def uniform(T):
    return [[1.0 / (i + 1) if j <= i else 0.0 for j in range(T)] for i in range(T)]


def close(a, b, tol):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol


def compare(got, want, tol):
    bad = [k for k in want if not close(got.get(k), want[k], tol)]
    return bad


tmp = scratch("t_heads_")
model = build_model()
with open(os.path.join(tmp, "meta.pkl"), "wb") as f:
    pickle.dump({"vocab_size": V, "itos": {i: c for i, c in enumerate(CHARS)},
                 "stoi": {c: i for i, c in enumerate(CHARS)}}, f)
gguf = save_convert(torch, model, tmp, "hand")

rng = random.Random(5)
# a prompt with no repeated token (induction and duplicate undefined), one with repeats
distinct = rng.sample(range(V), P)
repeated = [rng.randrange(V) for _ in range(6)] * 2 + [rng.randrange(V) for _ in range(4)]
for label, ids in (("distinct", distinct), ("repeated", repeated)):
    r = attn("heads", "-m", gguf, "--ids", ",".join(map(str, ids)), "--format", "json")
    if r.returncode != 0:
        check(False, "heads_json_" + label, "exit %d: %s" % (r.returncode, r.stderr.strip()))
        continue
    out = json.loads(r.stdout)
    heads = out["heads"]
    check(len(heads) == H and [(h["layer"], h["head"]) for h in heads] == [(0, i) for i in range(H)]
          and out["ids"] == ids and len(out["tokens"]) == len(ids), "heads_json_shape_" + label, "shape")
    att = torch_attention(model, ids)
    bad = []
    for h, kind in enumerate(KINDS):
        got = heads[h]["scores"]
        ref = py_scores(att[h], ids)
        for k in compare(got, ref, 1e-4):
            bad.append("head %d %s: attn %r, torch %r" % (h, k, got.get(k), ref[k]))
    check(not bad, "heads_match_torch_" + label, "; ".join(bad[:4]))
    sc = [h["scores"] for h in heads]
    check(sc[0]["previous"] > 0.9 and sc[1]["first"] > 0.9 and sc[2]["self"] > 0.9
          and sc[3]["offset"] > 0.9 and sc[3]["offset_k"] == 3,
          "heads_types_found_" + label, "previous %.3f first %.3f self %.3f offset %r@%r" % (
              sc[0]["previous"], sc[1]["first"], sc[2]["self"], sc[3]["offset"], sc[3]["offset_k"]))
    # the other heads are not mistaken for the type (e.g. the self head's previous score)
    check(sc[2]["previous"] < 0.1 and sc[0]["self"] < 0.1 and sc[2]["first"] < 0.1,
          "heads_types_distinct_" + label, "cross scores too high")
    u = py_scores(uniform(len(ids)), ids)
    bad = [k for h in heads for k in compare(h["uniform"], u, 1e-7)]
    check(not bad, "heads_uniform_exact_" + label, "uniform baseline differs in %s" % bad[:3])
    far = []
    for h in heads:
        for k in ("previous", "first", "self", "entropy_bits"):
            tol = 0.05 if k != "entropy_bits" else 0.1
            if not close(h["baseline"][k], h["uniform"][k], tol):
                far.append("head %d %s %.3f vs uniform %.3f" % (h["head"], k, h["baseline"][k], h["uniform"][k]))
    check(not far, "heads_random_near_uniform_" + label, "; ".join(far[:4]))
    if label == "distinct":
        check(all(h["scores"]["induction"] is None and h["scores"]["duplicate"] is None for h in heads),
              "heads_no_repeat_null", "induction/duplicate should be null on a prompt with no repeated token")
    else:
        check(all(h["scores"]["induction"] is not None for h in heads), "heads_repeat_defined", "induction null")

r = attn("heads", "-m", gguf, "--ids", ",".join(map(str, distinct)), "--format", "json", "--by", "self", "--top", "1")
ok = r.returncode == 0 and [h["head"] for h in json.loads(r.stdout)["heads"]] == [2]
check(ok, "heads_top_by", r.stderr.strip() or r.stdout[:200])
for fmt in ("table", "tsv"):
    r = attn("heads", "-m", gguf, "--ids", ",".join(map(str, distinct)), "--format", fmt)
    check(r.returncode == 0 and "previous" in r.stdout and len(r.stdout.splitlines()) >= H + 1,
          "heads_format_" + fmt, r.stderr.strip())
r = attn("heads", "-m", gguf, "--ids", "1,2", "--by", "nope")
check(r.returncode == 2 and r.stderr.startswith("attn: "), "heads_bad_by", "exit %d" % r.returncode)

# ---- induction test
r = attn("heads", "-m", gguf, "--induction-test", "--len", "7", "--seed", "3", "--format", "json")
if r.returncode == 0:
    out = json.loads(r.stdout)
    ids = out["ids"]
    ok = (len(ids) == 14 and ids[:7] == ids[7:] and len(set(ids[:7])) == 7 and len(out["heads"]) == H
          and set(out["loss"]) == {"first_repeat", "second_repeat"}
          and all(isinstance(v, float) and v > 0 for v in out["loss"].values()))
    # induction is defined on the second repeat only; our heads know no induction
    ok = ok and all(h["scores"]["induction"] is not None for h in out["heads"])
    check(ok, "heads_induction_test", r.stdout[:300])
else:
    check(False, "heads_induction_test", r.stderr.strip())
r = attn("heads", "-m", gguf, "--induction-test", "--len", "9")
check(r.returncode == 2, "heads_induction_len_too_long", "exit %d for 2 x 9 > context 16" % r.returncode)

# ---- corpus mode
def corpus(n, seed):
    g = random.Random(seed)
    return ["".join(g.choice(CHARS[:30]) for _ in range(g.randrange(2, P + 1))) for _ in range(n)]


lines = corpus(12, 1)
lines.insert(4, "")  # an empty line is skipped, not scored
path = os.path.join(tmp, "c12.txt")
with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
r = attn("heads", "-m", gguf, "-f", path, "--each-line", "--format", "json")
if r.returncode != 0:
    check(False, "heads_corpus_mean", "exit %d: %s" % (r.returncode, r.stderr.strip()))
else:
    agg = json.loads(r.stdout)
    singles = []
    for ln in lines:
        if not ln:
            continue
        s = attn("heads", "-m", gguf, "-p", ln, "--format", "json")
        if s.returncode != 0:
            singles = None
            check(False, "heads_corpus_single", s.stderr.strip())
            break
        singles.append(json.loads(s.stdout)["heads"])
    if singles is not None:
        bad = []
        for h in range(H):
            for k in ("previous", "first", "self", "induction", "duplicate", "entropy_bits"):
                vals = [sg[h]["scores"][k] for sg in singles if sg[h]["scores"][k] is not None]
                want = mean(vals)
                got = agg["heads"][h]["scores"][k]
                n = agg["heads"][h]["n"][k]
                sd = agg["heads"][h]["sd"][k]
                wsd = math.sqrt(sum((v - want) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
                if not close(got, want, 1e-5) or n != len(vals) or (vals and not close(sd, wsd, 1e-5)):
                    bad.append("head %d %s: corpus %r (sd %r, n %r), single runs %r (sd %r, n %d)"
                               % (h, k, got, sd, n, want, wsd, len(vals)))
        check(not bad and agg["n_prompts"] == 12 and agg["n_empty_lines"] == 1, "heads_corpus_mean",
              "; ".join(bad[:3]) or "n_prompts %r" % agg["n_prompts"])


# Peak resident memory of the attn process itself: a child forked from this
# torch-sized Python starts with its size as ru_maxrss, so a tiny C launcher
# (fresh after exec) forks attn and reports attn's own ru_maxrss. It turns
# transparent huge pages off for attn (khugepaged may fill a 2 MB block of a
# long run's heap at any moment), and the test takes the least of 3 runs:
# a leak shows in every run, a page mapped by chance (the binary's pages
# around a fault, as the page cache holds them) in one.
RSS_C = r"""
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
#ifdef PR_SET_THP_DISABLE
    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0); /* kept across fork and exec */
#endif
    pid_t p = fork();
    if (p == 0) { execv(argv[1], argv + 1); _exit(127); }
    int st; struct rusage ru;
    if (wait4(p, &st, 0, &ru) < 0) return 1;
    fprintf(stderr, "maxrss_kb %ld\n", ru.ru_maxrss);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
"""


def max_rss_kb(launcher, n):
    p = os.path.join(tmp, "c%d.txt" % n)
    with open(p, "w") as f:
        f.write("\n".join(corpus(n, 2)) + "\n")
    rc, peaks = 0, []
    for _ in range(3):
        r = subprocess.run([launcher, ATTN, "heads", "-m", gguf, "-f", p, "--each-line", "--format", "json", "-t", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        rc = rc or r.returncode
        peaks += [int(ln.split()[1]) for ln in r.stderr.splitlines() if ln.startswith("maxrss_kb ")][:1]
    return rc, min(peaks) if peaks else -1


launcher = os.path.join(tmp, "rss")
with open(launcher + ".c", "w") as f:
    f.write(RSS_C)
cc = subprocess.run(["cc", "-O1", "-o", launcher, launcher + ".c"], capture_output=True, text=True)
if os.environ.get("ATTN_SANITIZE"):  # make check-sanitize: ASan keeps freed memory in quarantine
    skip("heads_corpus_rss_flat", "memory growth is not measured under sanitizers")
elif cc.returncode != 0:
    skip("heads_corpus_rss_flat", "no C compiler for the RSS launcher")
else:
    rc1, rss100 = max_rss_kb(launcher, 100)
    rc2, rss1000 = max_rss_kb(launcher, 1000)
    check(rc1 == 0 and rc2 == 0 and rss100 > 0 and rss1000 - rss100 < 512, "heads_corpus_rss_flat",
          "max RSS %d KB for 100 lines, %d KB for 1000 lines (least of 3 runs; exit %d, %d)" % (rss100, rss1000, rc1, rc2))
    print("   corpus max RSS: %d KB (100 lines), %d KB (1000 lines)" % (rss100, rss1000))
done()
