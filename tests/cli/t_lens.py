"""tests/cli/t_lens.py - the logit lens (`attn run --lens --format json`) against
PyTorch: a random nanoGPT (../shared/ref/nanoGPT/model.py, converted with
tools/convert.py); for the embeddings and after every block, lm_head(ln_f(x))
computed from the module itself. Checks the top-3 ids and probabilities and
the probability of the finally chosen token at every layer and position.
SKIP when torch or the reference model is missing."""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from ref_nanogpt import gpt, reference, save_convert
from testlib import attn, check, done, scratch

L, H, D, P, V, T = 3, 4, 32, 32, 96, 12
torch, ng = reference("lens")
torch.manual_seed(7)
model = gpt(ng, block_size=P, vocab_size=V, n_layer=L, n_head=H, n_embd=D, bias=True)
with torch.no_grad():  # a fresh init predicts nearly uniformly: make the lens rows distinct
    model.transformer.wte.weight.mul_(40)
    for blk in model.transformer.h:
        blk.mlp.c_proj.weight.mul_(20)
tmp = scratch("t_lens_")
gguf = save_convert(torch, model, tmp, "m")
g = random.Random(4)
ids = [g.randrange(V) for _ in range(T)]

# reference: residual after the embeddings and after each block, through ln_f and lm_head
with torch.no_grad():
    tr = model.transformer
    x = tr.wte(torch.tensor([ids])) + tr.wpe(torch.arange(T))
    rows = [x]
    for blk in tr.h:
        x = blk(x)
        rows.append(x)
    probs = [torch.softmax(model.lm_head(tr.ln_f(r)).double(), dim=-1)[0] for r in rows]  # (L+1) x (T, V)

r = attn("run", "-m", gguf, "--ids", ",".join(map(str, ids)), "--lens", "--format", "json")
if r.returncode != 0:
    check(False, "lens_run", "exit %d: %s" % (r.returncode, r.stderr.strip()))
    done()
lens = json.loads(r.stdout)["lens"]
bad = []
for pos in lens:
    t = pos["position"]
    final = int(torch.argmax(probs[-1][t]))
    if pos["final_id"] != final and abs(float(probs[-1][t][pos["final_id"]]) - float(probs[-1][t][final])) > 1e-5:
        bad.append("position %d: final id %d, torch %d" % (t, pos["final_id"], final))
    for row in pos["layers"]:
        p = probs[row["layer"] + 1][t]
        if abs(row["final_prob"] - float(p[pos["final_id"]])) > 1e-4:
            bad.append("position %d layer %d: P(final) %.6f, torch %.6f" % (t, row["layer"], row["final_prob"],
                                                                           float(p[pos["final_id"]])))
        for c in row["top"]:
            if abs(c["prob"] - float(p[c["id"]])) > 1e-4:
                bad.append("position %d layer %d: id %d prob %.6f, torch %.6f" % (t, row["layer"], c["id"], c["prob"],
                                                                                 float(p[c["id"]])))
        want = sorted(range(V), key=lambda v: -float(p[v]))[:len(row["top"])]
        got = [c["id"] for c in row["top"]]
        # ids may swap only where torch's probabilities tie within float error
        if got != want and any(abs(float(p[a]) - float(p[b])) > 1e-5 for a, b in zip(got, want)):
            bad.append("position %d layer %d: top %s, torch %s" % (t, row["layer"], got, want))
n_rows = sum(len(pos["layers"]) for pos in lens)
ok = not bad and len(lens) == T and n_rows == T * (L + 1)
check(ok, "lens_matches_torch", "; ".join(bad[:4]) or "%d rows" % n_rows)
done()
