"""Reliability round 2 (issue 13): one test per class, each able to fail on
the code before it (checked against that code when written).

- output targets: a FIFO and a character device are written through, a
  directory and a socket refused (one line, exit 2), never replaced; a
  symbolic link planted at the temporary name the old code used is not
  followed; strace shows O_EXCL on every file attn and convert.py create
- non-finite numbers: NaN/inf/underflowing hyper-parameters refused at load;
  a model with a NaN weight: strict JSON (Python json, NaN/Infinity raise),
  'nan' in tables, the layer and position on stderr, magenta cells named in
  the legend (PNG and terminal); convert.py warns naming the tensor
- degenerate models: only special tokens, one token, too few tokens for the
  induction test, learned positions with an odd head size, a block count
  larger than the tensors present: every command runs or refuses with one line
- unbounded input: /dev/zero and an endless FIFO as -f (run, tokenize,
  heads) stop within seconds under `ulimit -v`; a FIFO as the model is
  refused at once; a tokens.json over the limit is refused
- converter bombs: a torch tensor whose stride 0 claims 2^40 values, an
  epsilon of 1e-300, a weight that overflows f16: refused with the name
- terminal output: escape sequences in general.name, training notes and
  --from labels never reach the terminal raw
- signals: SIGHUP, SIGQUIT, SIGXFSZ, SIGALRM, SIGUSR1, SIGUSR2 leave no
  temporary file
- grids past 64: compare of a 70-head and a 66-layer model labels every panel
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from testlib import ATTN, CONVERT, PY, ROOT, attn, check, done, png_read, result, scratch, skip

sys.path.insert(0, os.path.join(ROOT, "tests", "fuzz"))
import make_seeds as ms  # noqa: E402

G = os.path.join(ROOT, "tests", "fuzz", "corpus_gguf", "gpt2_bpe.gguf")
tmp = scratch("attn-rel-")
F64 = 12


def path(*p):
    return os.path.join(tmp, *p)


def model_file(name, arch="gpt2", D=8, H=2, L=1, F=16, V=12, ctx=16, extra=(), edit=None, **kw):
    k, t = ms.model(arch, D, H, L, F, V, ctx, 11, extra_kvs=list(extra), **kw)
    if edit:
        k, t = edit(k, t)
    p = path(name)
    ms.write(p, ms.gguf(k, t))
    return p


def run(cmd, timeout=60, **kw):
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        return None


def one_line(r, code=2):
    """'' if r exited code with exactly one stderr line 'attn: ...' (or convert.py: ...), else why not."""
    if r is None:
        return "timed out"
    err = r.stderr.decode("utf-8", "replace") if isinstance(r.stderr, bytes) else r.stderr
    lines = [x for x in err.split("\n") if x and "warning" not in x]
    if r.returncode != code:
        return "exit %d (expected %d): %s" % (r.returncode, code, err.strip()[-200:])
    if len(lines) != 1 or not lines[0].startswith(("attn: ", "convert.py: ")):
        return "stderr is not one line: %r" % err[-300:]
    return ""


# ---------------------------------------------------------------- output targets

def check_o_excl(d, hf, errs):
    """strace: every file attn and convert.py create is created with O_EXCL."""
    if shutil.which("strace"):
        for label, cmd in (("attn", [ATTN, "run", "-m", G, "-p", "the cat", "--export", "npy,json", "-o",
                                     os.path.join(d, "st")]),
                           ("convert.py", [PY, CONVERT, hf, "-o", os.path.join(d, "st.gguf")])):
            log = os.path.join(d, "strace.log")
            env = dict(os.environ)
            if os.environ.get("ATTN_SANITIZE"):  # LeakSanitizer cannot run under ptrace
                env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
            r = run(["strace", "-f", "-qq", "-e", "trace=openat,open,creat", "-o", log] + cmd, timeout=300, env=env)
            creat = [ln for ln in open(log) if "O_CREAT" in ln or "creat(" in ln]
            bad = [ln.strip() for ln in creat if "O_EXCL" not in ln]
            if r is None or r.returncode != 0 or not creat or bad:
                errs.append("%s: files created without O_EXCL: %s (exit %s)" % (label, bad[:2] or creat[:1],
                                                                              r and r.returncode))
    else:
        skip("output O_EXCL under strace", "strace is not installed")


def test_output_targets():
    errs = []
    d = path("out")
    os.makedirs(d)
    rep = [ATTN, "report", "-m", G, "-p", "the cat", "-o"]
    # a FIFO: written through, still a FIFO
    fifo = os.path.join(d, "fifo.html")
    os.mkfifo(fifo)
    got = []
    th = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()), daemon=True)
    th.start()
    r = run(rep + [fifo], timeout=30)
    th.join(5)
    if r is None or r.returncode != 0 or not got or b"<html" not in got[0] or not stat.S_ISFIFO(os.lstat(fifo).st_mode):
        errs.append("report -o FIFO: %s, read %d bytes, %s" % (r and r.returncode, len(got[0]) if got else 0,
                                                               oct(os.lstat(fifo).st_mode)))
    # a character device (as root: a null device made here, never the real /dev)
    if os.geteuid() == 0:
        dev = os.path.join(d, "null")
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        r = run(rep + [dev])
        if r.returncode != 0 or not stat.S_ISCHR(os.lstat(dev).st_mode):
            errs.append("report -o chardev: exit %d, now %s" % (r.returncode, oct(os.lstat(dev).st_mode)))
        r = run([ATTN, "run", "-m", G, "-p", "the cat", "--export", "npy", "-o", d])  # the other files still land
        os.makedirs(os.path.join(d, "x"))
        os.mknod(os.path.join(d, "x", "logits.npy"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
        r = run([ATTN, "run", "-m", G, "-p", "the cat", "--export", "npy", "-o", os.path.join(d, "x")])
        if r.returncode != 0 or not stat.S_ISCHR(os.lstat(os.path.join(d, "x", "logits.npy")).st_mode):
            errs.append("run --export onto a chardev logits.npy: exit %d" % r.returncode)
    else:
        skip("output character device", "not root: cannot mknod a test device")
    # a directory and a socket: refused, one line, exit 2, left as they were
    os.makedirs(os.path.join(d, "dir.html"))
    why = one_line(run(rep + [os.path.join(d, "dir.html")]))
    if why or not os.path.isdir(os.path.join(d, "dir.html")):
        errs.append("report -o DIR: " + (why or "replaced"))
    sp = os.path.join(d, "s.html")
    so = socket.socket(socket.AF_UNIX)
    so.bind(sp)
    why = one_line(run(rep + [sp]))
    if why or not stat.S_ISSOCK(os.lstat(sp).st_mode):
        errs.append("report -o socket: " + (why or "replaced"))
    so.close()
    # a symbolic link planted at the temporary name (the old name was
    # .<name>.tmp.<pid>.0; exec keeps the shell's pid): never followed
    victim = os.path.join(d, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    sh = 'cd "%s" && ln -s victim .r.html.tmp.$$.0 && exec "%s" report -m "%s" -p "the cat" -o r.html' % (d, ATTN, G)
    r = run(["sh", "-c", sh])
    if open(victim).read() != "precious\n" or r.returncode != 0:
        errs.append("planted symlink at the temporary name: victim now %r, exit %d" % (open(victim).read()[:20],
                                                                                        r.returncode))
    hf = hf_folder("tiny_hf")  # a tiny checkpoint: convert.py runs in a moment
    sh = 'cd "%s" && ln -s victim o.gguf.tmp$$ && exec "%s" "%s" "%s" -o o.gguf' % (d, PY, CONVERT, hf)
    r = run(["sh", "-c", sh], timeout=120)
    if open(victim).read() != "precious\n" or r is None or r.returncode != 0:
        errs.append("convert.py with a planted symlink at its temporary name: victim %r, %s" % (
            open(victim).read()[:20], r and r.stderr[-200:]))
    check_o_excl(d, hf, errs)
    # convert.py: a directory as the output refused, a FIFO written through
    os.makedirs(os.path.join(d, "dir.gguf"))
    why = one_line(run([PY, CONVERT, hf, "-o", os.path.join(d, "dir.gguf")], timeout=120))
    if why:
        errs.append("convert.py -o DIR: " + why)
    result("output: FIFO and device written through, directory and socket refused, planted links not followed, "
           "O_EXCL everywhere", errs)


# ---------------------------------------------------------------- non-finite numbers

def strict_json(text):
    def no(c):
        raise ValueError("JSON holds %s" % c)
    return json.loads(text, parse_constant=no)



def report_nonfinite(p):
    """attn report on the NaN model: layer 0 head 0's attention stored as the
    non-finite byte (255) and nothing else; in Chromium its thumbnail, and only
    it, is magenta and the legend names it."""
    import base64
    import re
    page = path("nanreport.html")
    r = run([ATTN, "report", "-m", p, "--ids", "1,2,3", "-o", page])
    if r.returncode != 0 or not os.path.isfile(page):
        return ["report on a NaN model: exit %d %r" % (r.returncode, r.stderr[-200:])]
    html = open(page, encoding="utf-8").read()
    meta = json.loads(re.search(r'<script[^>]*id="meta"[^>]*>(.*?)</script>', html, re.S).group(1))
    data = base64.b64decode(re.sub(r"\s+", "", re.search(r'id="attn-data"[^>]*>(.*?)</script>', html, re.S).group(1)))
    L, H, T = meta["n_layer"], meta["n_head"], meta["T"]
    tri = T * (T + 1) // 2
    heads = [data[x * tri:(x + 1) * tri] for x in range(L * H)]
    errs = []
    if set(heads[0]) != {255} or any(255 in h for h in heads[1:H]):
        errs.append("report data: head 0.0 should be all non-finite (255), layer 0's others finite: %r"
                    % [bytes(h) for h in heads[:H]])
    node, mods = shutil.which("node"), os.path.join(ROOT, "tests", "node_modules", "puppeteer-core")
    if node and os.path.isdir(mods) and os.path.exists(os.environ.get("CHROMIUM", "/usr/bin/chromium")):
        b = subprocess.run([node, os.path.join(ROOT, "tests", "report", "t_report.js"), page, str(L), str(H), str(T)],
                           env=dict(os.environ, ATTN_NONFINITE_HEAD="0"), capture_output=True, text=True,
                           timeout=120)
        if b.returncode != 0 or "PASS report_nonfinite_magenta" not in b.stdout:
            errs.append("report in Chromium: %s" % (b.stdout + b.stderr).strip()[-400:])
    else:
        print("SKIP report_nonfinite_browser: node, tests/node_modules/puppeteer-core or chromium missing")
    return errs

def nan_weight(k, t):
    t = [list(x) for x in t]
    for x in t:
        if x[0] == "blk.0.attn_q.weight":  # head 0's queries: its attention is NaN
            x[3] = list(x[3])
            x[3][5] = float("nan")
    return k, [tuple(x) for x in t]


def nan_embedding(k, t):
    t = [list(x) for x in t]
    for x in t:
        if x[0] == "token_embd.weight":  # token 5's row
            D = x[1][0]
            x[3] = list(x[3])
            x[3][5 * D:6 * D] = [float("nan")] * D
    return k, [tuple(x) for x in t]


def png_pixels(p):
    """The RGB bytes of an 8-bit RGB PNG attn wrote, rows joined (filters undone), and its width."""
    w, h, rows = png_read(p)
    return b"".join(rows), w


def test_nonfinite():
    errs = []
    # hyper-parameters
    for label, kvs in (("epsilon NaN", [ms.kv("gpt2.attention.layer_norm_epsilon", ms.F32, float("nan"))]),
                       ("epsilon inf", [ms.kv("gpt2.attention.layer_norm_epsilon", ms.F32, float("inf"))]),
                       ("rope base inf", [ms.kv("gpt2.rope.freq_base", ms.F32, float("inf")),
                                          ms.kv("attn.positions", ms.STR, "rope_pairs")]),
                       ("epsilon 1e-300 as F64", [ms.gstr("gpt2.attention.layer_norm_epsilon") +
                                                  struct.pack("<Id", F64, 1e-300)])):
        p = model_file("hp.gguf", extra=kvs)
        why = one_line(run([ATTN, "run", "-m", p, "--ids", "1,2"]))
        if why:
            errs.append("%s: %s" % (label, why))
    # a NaN weight
    p = model_file("nan.gguf", edit=nan_weight)
    r = run([ATTN, "run", "-m", p, "--ids", "1,2,3", "--per-token", "--lens", "--format", "json"])
    try:
        strict_json(r.stdout.decode())
    except ValueError as e:
        errs.append("run --format json: %s" % e)
    err = r.stderr.decode()
    if "layer 0" not in err or "position 0" not in err or r.returncode != 0:
        errs.append("stderr does not say where (layer 0, position 0): exit %d %r" % (r.returncode, err[-200:]))
    # the first position that holds a NaN, where the check runs in blocks on 2
    # threads (600 x 64 floats): token 5's embedding, at positions 300 and 500
    q = model_file("nan_embd.gguf", D=64, ctx=1024, edit=nan_embedding)
    ids = ["1"] * 600
    ids[300] = ids[500] = "5"
    r = run([ATTN, "run", "-m", q, "--ids", ",".join(ids), "-t", "2"])
    if r is None or "the embeddings, position 300" not in r.stderr.decode():
        errs.append("600 positions, NaN first at 300: %r" % (r and r.stderr.decode()[-200:]))
    r = run([ATTN, "run", "-m", p, "--ids", "1,2,3"])
    if b"nan" not in r.stdout:
        errs.append("the table does not print nan: %r" % r.stdout[-200:])
    r = run([ATTN, "trace", "-m", p, "--ids", "1,2", "-n", "2", "--format", "json"])
    try:
        strict_json(r.stdout.decode())
    except ValueError as e:
        errs.append("trace --format json: %s" % e)
    r = run([ATTN, "heads", "-m", p, "--ids", "1,2,3,1,2,3", "--format", "json"])
    try:
        strict_json(r.stdout.decode())
    except ValueError as e:
        errs.append("heads --format json: %s" % e)
    # the head whose queries are NaN: its scores print nan, not the undefined mark
    for fmt, sep in (("table", None), ("tsv", "\t")):
        r = run([ATTN, "heads", "-m", p, "--ids", "1,2,3,1,2,3", "--layers", "0", "--heads", "0", "--wide",
                 "--format", fmt])
        rows = [l.split(sep) for l in r.stdout.decode().splitlines() if l.split(sep)[:2] == ["0", "0"]]
        if len(rows) != 1 or "nan" not in rows[0]:
            errs.append("heads %s: head 0.0 (NaN attention) not printed as nan: %r" % (fmt, r.stdout[-300:]))
    r = run([ATTN, "maps", "-m", p, "--ids", "1,2,3", "--term", "--layers", "0", "--heads", "0"])
    if b"48;2;255;0;255m" not in r.stdout or b"non-finite" not in r.stdout:
        errs.append("maps --term: no magenta cells or no legend for them")
    errs += report_nonfinite(p)
    r = run([ATTN, "maps", "-m", p, "--ids", "1,2,3", "-o", path("nanmaps"), "--no-grid"])
    pngs = [f for f in os.listdir(path("nanmaps"))] if os.path.isdir(path("nanmaps")) else []
    if r.returncode != 0 or not pngs:
        errs.append("maps -o: exit %d" % r.returncode)
    else:
        raw, w = png_pixels(path("nanmaps", pngs[0]))
        if b"\xff\x00\xff" * 4 not in raw:
            errs.append("maps PNG has no magenta cells")
    r = run([ATTN, "run", "-m", p, "--ids", "1,2,3", "--lens", "-o", path("nanlens")])
    lens = path("nanlens", "lens.png")
    if r.returncode != 0 or not os.path.exists(lens) or b"\xff\x00\xff" * 4 not in png_pixels(lens)[0]:
        errs.append("run --lens picture has no magenta cells (exit %d)" % r.returncode)
    # convert.py names a tensor with NaN values
    d = hf_folder("nanhf", values={"h.0.mlp.c_fc.weight": float("nan")})
    r = run([PY, CONVERT, d, "-o", path("nanhf.gguf")], timeout=120)
    if r.returncode != 0 or b"warning" not in r.stderr or b"blk.0.ffn_up.weight" not in r.stderr:
        errs.append("convert.py NaN weight: exit %d, %r" % (r.returncode, r.stderr[-300:]))
    result("non-finite: hyper-parameters refused; NaN weights give strict JSON, nan in tables, where on stderr, "
           "magenta cells; convert.py warns", errs)


def hf_folder(name, values=None, cfg_extra=None, D=8, V=10, ctx=4):
    """A tiny Hugging Face GPT-2 folder; values: tensor name -> the value of its element 0."""
    d = path(name)
    os.makedirs(d, exist_ok=True)
    cfg = {"model_type": "gpt2", "n_embd": D, "n_layer": 1, "n_head": 2, "n_positions": ctx, "vocab_size": V}
    cfg.update(cfg_extra or {})
    shapes = {"wte.weight": [V, D], "wpe.weight": [ctx, D], "ln_f.weight": [D], "ln_f.bias": [D]}
    for n in ("ln_1", "ln_2"):
        shapes["h.0.%s.weight" % n] = shapes["h.0.%s.bias" % n] = [D]
    for n, s in (("attn.c_attn", [D, 3 * D]), ("attn.c_proj", [D, D]), ("mlp.c_fc", [D, 4 * D]),
                 ("mlp.c_proj", [4 * D, D])):
        shapes["h.0.%s.weight" % n] = s
        shapes["h.0.%s.bias" % n] = s[1:]
    header, off, payload = {}, 0, b""
    rng = random.Random(5)
    for n, s in shapes.items():
        cnt = 1
        for x in s:
            cnt *= x
        vals = [rng.uniform(-0.5, 0.5) for _ in range(cnt)]
        if values and n in values:
            vals[0] = values[n]
        header[n] = {"dtype": "F32", "shape": s, "data_offsets": [off, off + 4 * cnt]}
        payload += struct.pack("<%df" % cnt, *vals)
        off += 4 * cnt
    h = json.dumps(header).encode()
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + payload)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    return d


# ---------------------------------------------------------------- degenerate models

COMMANDS = [["info"], ["tokenize", "-p", "a"], ["run", "--ids", "0"], ["run", "-p", "a"],
            ["maps", "--ids", "0", "-o", "DIR"], ["trace", "--ids", "0", "-n", "2"],
            ["heads", "--ids", "0"], ["heads", "--induction-test", "--len", "4"],
            ["compare", "--init", "random", "--ids", "0"], ["report", "--ids", "0", "-o", "DIR/r.html"]]


def test_degenerate():
    errs = []
    special = [ms.kv("tokenizer.ggml.model", ms.STR, "char"), ms.kv("tokenizer.ggml.tokens", ms.ARR, (ms.STR, ["<s>", "</s>"])),
               ms.kv("tokenizer.ggml.token_type", ms.ARR, (ms.I32, [3, 3]))]
    models = {"only special tokens": model_file("special.gguf", V=2, extra=special),
              "one token": model_file("one.gguf", V=1),
              "two tokens": model_file("two.gguf", V=2),
              "odd head size, learned positions": model_file("odd.gguf", D=6, H=2, F=8)}
    for label, p in models.items():
        for c in COMMANDS:
            args = [a.replace("DIR", path("deg")) for a in c]
            r = run([ATTN] + args[:1] + ["-m", p] + args[1:], timeout=60)
            if r is None or r.returncode not in (0, 2) or (r.returncode == 2 and one_line(r)):
                errs.append("%s: %s: %s" % (label, " ".join(c), "timed out" if r is None else one_line(r, 2)
                                            if r.returncode == 2 else "exit %d %r" % (r.returncode, r.stderr[-120:])))
    r = run([ATTN, "run", "-m", models["odd head size, learned positions"], "--ids", "1,2"])
    if r.returncode != 0:
        errs.append("odd head size with learned positions refused: %r" % r.stderr[-200:])
    # a block count larger than the tensors present: the missing tensor named
    def more_blocks(k, t):
        return [x if b"block_count" not in x else ms.kv("gpt2.block_count", ms.U32, 1000) for x in k], t
    p = model_file("blocks.gguf", edit=more_blocks)
    r = run([ATTN, "info", "-m", p])
    if one_line(r) or b"blk.1.attn_norm.weight" not in r.stderr:
        errs.append("block_count 1000 of 1: %s %r" % (one_line(r), r.stderr[-200:]))
    result("degenerate models: every command runs or refuses with one line (%d models x %d commands)"
           % (len(models), len(COMMANDS)), errs)


# ---------------------------------------------------------------- unbounded input

def limited(cmd, timeout=20):
    """cmd under a 1 GB address-space limit and a timeout. Under ASan (whose
    shadow memory alone needs terabytes of address space) only the timeout
    applies: the memory bound is checked by the plain build's run."""
    if os.environ.get("ATTN_SANITIZE"):
        return run(cmd, timeout=timeout)
    return run(["sh", "-c", 'ulimit -v 1000000; exec "$@"', "sh"] + cmd, timeout=timeout)


def recorded_dir(name):
    """A scratch folder for `maps --from` holding the attention.npy of one
    head over 2 tokens (tokens.json is the caller's)."""
    fr = path(name)
    os.makedirs(fr)
    rec = ms.recorded(1, 1, 2)
    n = struct.unpack("<H", rec[1:3])[0]
    with open(os.path.join(fr, "attention.npy"), "wb") as f:
        f.write(rec[3:3 + n])
    return fr


def test_unbounded():
    errs = []
    for c in (["run", "-m", G, "-f", "/dev/zero"], ["tokenize", "-m", G, "-f", "/dev/zero"],
              ["tokenize", "-m", G, "--ids-only", "-f", "/dev/zero"], ["heads", "-m", G, "-f", "/dev/zero"]):
        t0 = time.time()
        why = one_line(limited([ATTN] + c))
        if why:
            errs.append("%s: %s" % (" ".join(c[:1] + c[3:]), why))
        elif time.time() - t0 > 15:
            errs.append("%s took %.0f s" % (" ".join(c), time.time() - t0))
    # an endless FIFO
    fifo = path("endless")
    os.mkfifo(fifo)
    stop = []

    def writer():
        try:
            with open(fifo, "wb") as f:
                while not stop:
                    f.write(b"a b " * 16384)
        except OSError:
            pass
    th = threading.Thread(target=writer, daemon=True)
    th.start()
    why = one_line(limited([ATTN, "run", "-m", G, "-f", fifo]))
    stop.append(1)
    if why:
        errs.append("run -f endless FIFO: " + why)
    # a FIFO as the model: refused before any blocking read
    f2 = path("model.fifo")
    os.mkfifo(f2)
    why = one_line(run([ATTN, "info", "-m", f2], timeout=5))
    if why:
        errs.append("a FIFO as the model: " + why)
    # a tokens.json over the limit
    fr = recorded_dir("from")
    with open(os.path.join(fr, "tokens.json"), "wb") as f:
        f.write(b'{"model": "x", "labels": ["a", "b"], "pad": "')
        f.write(b"x" * (70 << 20))
        f.write(b'"}\n')
    why = one_line(limited([ATTN, "maps", "--from", fr, "-o", path("fromout")]))
    if why:
        errs.append("tokens.json of 70 MB: " + why)
    # parsing tokens.json is linear: 20000 labels before 40 MB of text (the
    # old parser measured the rest of the file for every label: quadratic);
    # one label short, so it is refused once parsed. attention.npy is sparse.
    lin = path("linear")
    os.makedirs(lin)
    T = 20000
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, %d, %d), }" % (T, T)
    hdr += " " * (-(10 + len(hdr) + 1) % 64) + "\n"
    with open(os.path.join(lin, "attention.npy"), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        f.truncate(10 + len(hdr) + 4 * T * T)
    with open(os.path.join(lin, "tokens.json"), "wb") as f:
        f.write(b'{"model": "x", "labels": [' + b", ".join(b'"t%d"' % i for i in range(T - 1)) + b'], "pad": "')
        f.write(b"x" * (40 << 20) + b'"}\n')
    t0 = time.time()
    why = one_line(limited([ATTN, "maps", "--from", lin, "-o", path("linout")], timeout=30))
    if why or time.time() - t0 > 20:
        errs.append("tokens.json of 20000 labels and 40 MB: %s (%.1f s)" % (why or "slow", time.time() - t0))
    result("unbounded input: /dev/zero and an endless FIFO stop in seconds under ulimit -v; FIFO model refused; "
           "tokens.json limited and parsed in linear time", errs)


# ---------------------------------------------------------------- converter bombs

def test_converter_bombs():
    errs = []
    d = hf_folder("eps", cfg_extra={"layer_norm_epsilon": 1e-300})
    r = run([PY, CONVERT, d, "-o", path("eps.gguf")], timeout=120)
    if one_line(r) or os.path.exists(path("eps.gguf")):
        errs.append("epsilon 1e-300: %s" % (one_line(r) or "written"))
    # a weight that overflows f16 would become inf: refused with the tensor's name, nothing written
    d = hf_folder("big", values={"h.0.mlp.c_fc.weight": 1e6})
    r = run([PY, CONVERT, d, "--dtype", "f16", "-o", path("big.gguf")], timeout=120)
    if one_line(r) or b"blk.0.ffn_up.weight" not in r.stderr or b"becomes inf" not in r.stderr or \
            os.path.exists(path("big.gguf")) or [f for f in os.listdir(path()) if f.startswith(".big.gguf")]:
        errs.append("1e6 into f16: %s %r" % (one_line(r) or "exit %d" % r.returncode, r.stderr[-200:]))
    # fuzzing finding #36: a 9 KB legacy pickle whose memo index asks CPython's
    # unpickler for 1.4 GB; refused after reading its opcodes, in CPU time
    # (user + system, not wall: the machine may be loaded)
    import resource
    bomb = os.path.join(ROOT, "tests", "fuzz", "regressions", "convert", "legacy-pickle-huge-memo-index",
                        "nanogpt_legacy.pt")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = run([PY, CONVERT, bomb, "-o", path("memo.gguf")], timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if one_line(r) or b"memo index" not in r.stderr or cpu > 3:
        errs.append("legacy pickle with memo index 174417761: %s, %.1f CPU s" % (one_line(r) or r.stderr[-120:], cpu))
    try:
        import torch
    except ImportError:
        skip("converter bombs: torch stride 0", "torch is not installed")
        torch = None
    if torch is not None:
        D, V = 8, 10
        sd = {"transformer.wte.weight": torch.zeros(1).expand(1 << 20, 1 << 20)}
        ck = path("bomb.pt")
        torch.save({"model": sd, "model_args": {"n_layer": 1, "n_head": 2, "n_embd": D, "block_size": 4,
                                                "vocab_size": V}}, ck)
        r = run(["sh", "-c", 'ulimit -v 2000000; exec "$@"', "sh", PY, CONVERT, ck, "-o", path("bomb.gguf")],
                timeout=120)
        if one_line(r) or b"transformer.wte.weight" not in r.stderr:
            errs.append("stride-0 tensor of 2^40 values: %s %r" % (one_line(r), r and r.stderr[-200:]))
    result("converter bombs: stride 0 over one element, epsilon 1e-300, a weight overflowing f16 and a pickle's "
           "huge memo index refused with the name, in bounded time", errs)


# ---------------------------------------------------------------- terminal output

def test_terminal():
    errs = []
    evil = "evil\x1b]0;pwned\x07\x1b[31mred\u009b2J"
    p = model_file("evil.gguf", extra=[ms.kv("attn.training.description", ms.STR, evil),
                                      ms.kv("attn.training.corpus", ms.STR, evil)],
                   edit=lambda k, t: ([x if b"general.name" not in x else ms.kv("general.name", ms.STR, evil)
                                       for x in k], t))
    for c in (["info"], ["run", "--ids", "1,2"], ["heads", "--ids", "1,2,3"], ["trace", "--ids", "1", "-n", "1"],
              ["compare", "--init", "random", "--ids", "1,2"]):
        r = run([ATTN] + c[:1] + ["-m", p] + c[1:])
        out = r.stdout + r.stderr
        if r.returncode != 0 or b"\x1b" in out or b"\x07" in out or b"\xc2\x9b" in out:
            errs.append("%s: raw control characters reach the terminal (exit %d)" % (c[0], r.returncode))
    fr = recorded_dir("evilfrom")
    with open(os.path.join(fr, "tokens.json"), "w") as f:
        f.write('{"model": "m\\u001b]0;x\\u0007", "labels": ["\\u001b[2J", "\\u009b1m"]}\n')
    r = run([ATTN, "maps", "--from", fr, "--term"])
    if r.returncode != 0 or b"\x1b[2J" in r.stdout or b"\x07" in r.stdout or b"\xc2\x9b" in r.stdout:
        errs.append("maps --from --term: raw label escapes (exit %d)" % r.returncode)
    result("terminal output: file strings (name, notes, corpus, --from labels) escaped", errs)


# ---------------------------------------------------------------- signals

def test_signals():
    errs = []
    big = path("big.gguf")
    ms.write(big, ms.big())
    ids = ",".join(str(i % 64) for i in range(512))
    env = dict(os.environ, ATTN_SIMD="scalar")
    for name in ("SIGHUP", "SIGQUIT", "SIGXFSZ", "SIGALRM", "SIGUSR1", "SIGUSR2"):
        out = path("sig_" + name)
        os.makedirs(out)
        # the signal at its default disposition in the child: under nohup (SIGHUP
        # ignored) attn rightly leaves an ignored signal ignored
        p = subprocess.Popen([ATTN, "run", "-m", big, "--ids", ids, "-t", "1", "--export", "npy,json", "-o", out],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                             preexec_fn=lambda s=getattr(signal, name): signal.signal(s, signal.SIG_DFL))
        seen = False
        for _ in range(2000):
            if any(".tmp." in f for f in os.listdir(out)):
                seen = True
                break
            if p.poll() is not None:
                break
            time.sleep(0.01)
        if not seen:
            p.kill()
            p.wait()
            errs.append("%s: no temporary file seen" % name)
            continue
        p.send_signal(getattr(signal, name))
        rc = p.wait()
        left = [f for f in os.listdir(out) if ".tmp." in f]
        if left or rc != -getattr(signal, name):
            errs.append("%s: exit %d, left %s" % (name, rc, left))
    result("signals: HUP, QUIT, XFSZ, ALRM, USR1, USR2 remove the temporary files", errs)


# ---------------------------------------------------------------- grids past 64

def test_grids():
    errs = []
    for label, kw, want in (("70 heads", dict(D=140, H=70, L=1, F=8), "head 69"),
                            ("66 layers", dict(D=4, H=1, L=66, F=4), "layer 65")):
        a = model_file("wide_a.gguf", V=6, ctx=4, **kw)
        out = path("grid_" + label.replace(" ", "_"))
        r = run([ATTN, "compare", "-m", a, "--init", "random", "--ids", "1,2", "-o", out, "--svg"], timeout=120)
        svg = os.path.join(out, "compare_grid.svg")
        if r.returncode != 0 or not os.path.exists(svg):
            errs.append("%s: exit %d %r" % (label, r.returncode, r.stderr[-200:]))
            continue
        s = open(svg, encoding="utf-8").read()
        first = "head 0" if "head" in want else "layer 0"
        if ">%s<" % want not in s or ">%s<" % first not in s:
            errs.append("%s: the grid has no label %r" % (label, want))
        # 70 headings cannot lie side by side over 70 narrow columns: they stand upright
        if "head" in want and not re.search(r'transform="rotate\(-90 [^"]*">%s<' % want, s):
            errs.append("%s: heading %r is not upright" % (label, want))
    result("grids past 64: compare labels every layer and head", errs)


def main():
    for t in (test_output_targets, test_nonfinite, test_degenerate, test_unbounded, test_converter_bombs,
              test_terminal, test_signals, test_grids):
        try:
            t()
        except Exception as e:  # a crash of one class is its FAIL, the others still run
            result(t.__name__, [repr(e)])
    done()


if __name__ == "__main__":
    main()
