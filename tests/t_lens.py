"""tests/t_lens.py - the logit lens (`attn run --lens --format json`) against
PyTorch: a random nanoGPT (../shared/ref/nanoGPT/model.py, converted with
tools/convert.py); for the embeddings and after every block, lm_head(ln_f(x))
computed from the module itself. Checks the top-3 ids and probabilities and
the probability of the finally chosen token at every layer and position.
SKIP when torch or the reference model is missing."""
import contextlib
import importlib.util
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATTN = os.path.abspath(os.environ.get("ATTN", os.path.join(ROOT, "attn")))
PY = os.environ.get("PY", sys.executable)
REF = os.path.join(ROOT, "..", "shared", "ref", "nanoGPT", "model.py")
L, H, D, P, V, T = 3, 4, 32, 32, 96, 12


def skip(why):
    print("SKIP lens: %s" % why)
    sys.exit(0)


try:
    import torch
except ImportError:
    skip("torch is not installed")
if not os.path.exists(REF):
    skip("reference %s not found" % REF)

spec = importlib.util.spec_from_file_location("nanogpt_model", REF)
ng = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ng)
torch.manual_seed(7)
with contextlib.redirect_stdout(io.StringIO()):
    model = ng.GPT(ng.GPTConfig(block_size=P, vocab_size=V, n_layer=L, n_head=H, n_embd=D, dropout=0.0, bias=True))
with torch.no_grad():  # a fresh init predicts nearly uniformly: make the lens rows distinct
    model.transformer.wte.weight.mul_(40)
    for blk in model.transformer.h:
        blk.mlp.c_proj.weight.mul_(20)
model.eval()
tmp = tempfile.mkdtemp(prefix="t_lens_")
torch.save({"model": model.state_dict(), "model_args": dict(n_layer=L, n_head=H, n_embd=D, block_size=P, bias=True,
                                                            vocab_size=V, dropout=0.0)},
           os.path.join(tmp, "ckpt.pt"))
gguf = os.path.join(tmp, "m.gguf")
cv = subprocess.run([PY, os.path.join(ROOT, "tools", "convert.py"), os.path.join(tmp, "ckpt.pt"), "-o", gguf],
                    capture_output=True, text=True)
if cv.returncode != 0:
    print("FAIL lens_convert: %s" % cv.stderr.strip()[-300:])
    sys.exit(1)
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

r = subprocess.run([ATTN, "run", "-m", gguf, "--ids", ",".join(map(str, ids)), "--lens", "--format", "json"],
                   capture_output=True, text=True)
if r.returncode != 0:
    print("FAIL lens_run: exit %d: %s" % (r.returncode, r.stderr.strip()))
    sys.exit(1)
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
print("PASS lens_matches_torch" if ok else "FAIL lens_matches_torch: %s" % ("; ".join(bad[:4]) or "%d rows" % n_rows))
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(0 if ok else 1)
