"""The built-in model, as a newcomer meets it (issue 8):
- the README's first command, built from a clean tree (git clone of HEAD),
  run with no -m in an empty directory under `env -i`: the pictures decode
  (zlib, PNG spec) and show non-uniform attention;
- the claims the README makes about the model: a previous-token head, an
  induction head (induction test score >= 0.4 where its random-init baseline
  is <= 0.1), loss lower on the second repeat than on the first."""
import json, os, re, shutil, subprocess, sys, tempfile

ATTN = os.path.abspath(os.environ.get("ATTN", "./attn"))
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from testlib import png_read as png_pixels  # noqa: E402  (width, height, rows of RGB bytes)


def out(name, ok, why=""):
    print(("PASS %s" % name) if ok else ("FAIL %s: %s" % (name, why)))
    return ok


def readme_first_command():
    """The attn invocation in the README's first set-up command."""
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    m = re.search(r"```sh\n(.*?)```", text, re.S)
    line = " ".join(m.group(1).replace("\\\n", " ").split()) if m else ""
    m = re.search(r"(\./attn maps .*?)(?:$|&&|;)", line)
    return m.group(1).strip() if m else None


if subprocess.run([ATTN, "info"], capture_output=True).returncode != 0:
    print("SKIP builtin: this build has no built-in model (tools/model/attn-brown.gguf missing)")
    sys.exit(0)

# 1. the README's first command from a clean tree, env -i, empty directory
cmd = readme_first_command()
if not out("builtin README has a first command running ./attn maps", cmd is not None, "no `./attn maps` in the first ```sh block"):
    sys.exit(1)
tmp = tempfile.mkdtemp(prefix="attn_builtin_")
try:
    clone = os.path.join(tmp, "clone")
    subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
    b = subprocess.run(["make", "-s", "-j2", "attn"], cwd=clone, capture_output=True, text=True)
    if out("builtin clean tree builds", b.returncode == 0, b.stderr[-500:]):
        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        # the README's quoting: -p "..." -> one argument
        m = re.search(r'-p "([^"]*)"', cmd)
        args = [a for a in re.sub(r'-p "[^"]*"', "-p PROMPT", cmd).split()]
        args = [m.group(1) if a == "PROMPT" else a for a in args]
        args[0] = os.path.join(clone, "attn")
        r = subprocess.run(["env", "-i"] + args, cwd=empty, capture_output=True, text=True)
        out("builtin README command runs with env -i in an empty directory", r.returncode == 0, r.stderr[-300:])
        pngs = []
        for d, _, files in os.walk(empty):
            pngs += [os.path.join(d, f) for f in files if f.endswith(".png")]
        out("builtin README command writes PNGs and says where", len(pngs) >= 2 and os.path.basename(os.path.dirname(pngs[0])) in r.stdout + r.stderr,
            "%d PNGs, output %r" % (len(pngs), (r.stdout + r.stderr)[-200:]))
        colours, ok = 0, True
        for p in pngs:
            try:
                w, h, rows = png_pixels(p)
                colours = max(colours, len({row[i:i + 3] for row in rows[::4] for i in range(0, len(row), 12)}))
            except Exception as e:  # noqa: BLE001 - any decode problem is the failure
                ok = out("builtin PNG decodes: " + os.path.basename(p), False, str(e))
        out("builtin PNGs decode", ok and pngs)
        out("builtin pictures are not one flat colour", colours > 40, "%d distinct colours" % colours)
finally:
    shutil.rmtree(tmp)

# attention itself is non-uniform (the numbers the pictures show)
tmp = tempfile.mkdtemp(prefix="attn_builtin_")
try:
    prompt = "The old man looked at the sea, and the sea looked back at the old man."
    r = subprocess.run([ATTN, "run", "-p", prompt, "--export", "npy", "-o", tmp], capture_output=True, text=True)
    import_ok = True
    try:
        import numpy as np
    except ImportError:
        import_ok = False
    if import_ok and r.returncode == 0:
        a = np.load(os.path.join(tmp, "attention.npy"))
        T = a.shape[-1]
        uniform = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
        dev = np.abs(a - uniform).max(axis=(2, 3))
        out("builtin attention is not uniform", dev.max() > 0.5, "max deviation %g" % dev.max())
    elif not import_ok:
        print("SKIP builtin attention is not uniform: numpy missing")
    else:
        out("builtin run --export", False, r.stderr)
finally:
    shutil.rmtree(tmp)

# --exact: the path in use says so, and the logits move only by the float
# sums it replaces (the kernels' bits are checked in test_kernels)
r = subprocess.run([ATTN, "info", "--exact"], capture_output=True, text=True)
simd = [l for l in r.stdout.splitlines() if l.startswith("simd")]
out("builtin info --exact names exact mode", r.returncode == 0 and simd and simd[0].endswith(", exact"), r.stdout[-300:])
tmp = tempfile.mkdtemp(prefix="attn_builtin_")
try:
    logits = {}
    for name, extra in (("default", []), ("exact", ["--exact"])):
        o = os.path.join(tmp, name)
        r = subprocess.run([ATTN, "run", "--ids", "5,17,30,2,9,44,7,3", "--export", "npy", "-o", o] + extra,
                           capture_output=True, text=True)
        if r.returncode == 0 and import_ok:
            logits[name] = np.load(os.path.join(o, "logits.npy"))
    if not import_ok:
        print("SKIP builtin run --exact logits: numpy missing")
    elif len(logits) == 2:
        d = float(np.abs(logits["exact"] - logits["default"]).max() / np.abs(logits["default"]).max())
        out("builtin run --exact logits within 1e-5 of the default", d < 1e-5, "relative difference %g" % d)
    else:
        out("builtin run --exact", False, r.stderr[-300:])
finally:
    shutil.rmtree(tmp)

# 2. the model's claims: induction head and previous-token head, against a random init
def best_head(args, score, at_least, baseline_at_most):
    """Runs `attn heads ARGS --format json`, checks the best head on `score`; returns the JSON."""
    r = subprocess.run([ATTN, "heads"] + args + ["--format", "json"], capture_output=True, text=True)
    if not out("builtin heads %s runs" % " ".join(args[:1]), r.returncode == 0, r.stderr):
        return None
    j = json.loads(r.stdout)
    best = max(j["heads"], key=lambda h: h["scores"][score] or 0)
    s, bl = best["scores"][score], best["baseline"][score]
    out("builtin has a %s head >= %g (random init <= %g)" % (score, at_least, baseline_at_most),
        s >= at_least and bl <= baseline_at_most, "best L%d H%d %.3f, baseline %.3f" % (best["layer"], best["head"], s, bl))
    print("   best %s head L%d H%d: %.3f (random init %.3f)" % (score, best["layer"], best["head"], s, bl))
    return j


j = best_head(["--induction-test"], "induction", 0.4, 0.1)
if j:
    loss = j["loss"]
    out("builtin loss on the second repeat is lower", loss["second_repeat"] < loss["first_repeat"] - 1.0,
        "first %.3f, second %.3f nats/token" % (loss["first_repeat"], loss["second_repeat"]))
text = ("Once upon a time there was a little girl who lived in a village near the forest. "
        "Whenever she went out, the little girl wore a red riding cloak, so everyone in the village called her Little Red Riding Hood.")
best_head(["-p", text], "previous", 0.6, 0.2)
