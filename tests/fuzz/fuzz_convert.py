"""Fuzzes tools/convert.py's readers: llama2.c .bin (v0, v1, v2), torch
pickles (zip ckpt.pt and the legacy format), safetensors with config.json,
nanoGPT meta.pkl and llama2.c tokenizer.bin. Random corruptions of the small
valid inputs in tests/fuzz/corpus_convert/ (byte-level, plus format-aware:
zip members rewritten with valid CRCs, safetensors headers and config.json
values changed) are converted in-process (convert.main), and each must:
  - exit 0 or 2; 2 with one line "convert.py: ..." on stderr (warnings aside),
    never a traceback, never exit 1 ("out of memory" from a small file is a
    huge allocation), never a hang (20 s)
  - leave no temporary file; and when it exits 0, write a GGUF that attn
    loads (`attn info`; `attn tokenize` for a vocabulary), so convert.py
    never claims success for a file attn refuses

    fuzz_convert.py --seconds N [--runs N] [--seed S] [--out DIR]   fuzz, saving what fails in DIR
    fuzz_convert.py --replay                              the seeds and tests/fuzz/regressions/convert/
Each failing input is kept as DIR/<signature>/<input> (+ report.txt); to keep
one as a regression test copy that folder to tests/fuzz/regressions/convert/.
"""
import argparse, atexit, contextlib, hashlib, importlib.util, io, json, os, random, resource, shutil, signal, struct
import subprocess, sys, tempfile, time, traceback, zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEEDS = os.path.join(ROOT, "tests", "fuzz", "corpus_convert")
REGRESSIONS = os.path.join(ROOT, "tests", "fuzz", "regressions", "convert")
ATTN = os.path.abspath(os.environ.get("ATTN", os.path.join(ROOT, "attn")))
VOCAB_ONLY = ("meta.pkl", "tokenizer.bin")  # seeds that are tokenizers (--vocab-only)
TIMEOUT = 20

INTS = [0, 1, 2, 3, 7, 8, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1023, 4096, 65535, 65536, 1 << 20, 1 << 24,
        (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 40, (1 << 63) - 1, 1 << 63, (1 << 64) - 1,
        # float bit patterns (issue 13): f32 NaN, +-inf, 1e-45; f16 NaN, inf; f64 NaN, inf, 1e-300
        0x7FC00000, 0x7F800000, 0xFF800000, 1, 0x7E00, 0x7C00, 0x7FF8000000000000, 0x7FF0000000000000,
        0x017E37E43C88759C]
JSON_VALUES = [0, -1, 1, 2, 3, 1 << 31, 1 << 63, 10 ** 30, 1.5, -0.0, 1e308, "x", "", None,
               True, [], {}, [0], [1 << 62, 1 << 62], [-1, 2], "F16", "BF16", "F64", "I64", "U8", "BOOL",
               # issue 13: values that are 0 or inf as float32, non-finite, shapes with huge products
               1e-300, 1e39, float("nan"), float("inf"), 1 << 40, [1 << 20, 1 << 20], [1 << 40]]


class Hang(Exception):
    pass


def load_convert():
    spec = importlib.util.spec_from_file_location("convert_under_test", os.path.join(ROOT, "tools", "convert.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------- mutations

def mutate_bytes(rng, b):
    b = bytearray(b)
    for _ in range(rng.choice([1, 1, 1, 2, 3, 5])):
        op = rng.randrange(8)
        n = len(b)
        if n == 0:
            b += bytes([rng.randrange(256)])
            continue
        i = rng.randrange(n)
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif op in (2, 3):  # an interesting little-endian integer, often at an aligned offset
            w = rng.choice([4, 8])
            if op == 3:
                i -= i % w
            v = rng.choice(INTS)
            if rng.random() < 0.3:
                v = -v
            b[i:i + w] = (v & ((1 << (8 * w)) - 1)).to_bytes(w, "little")
        elif op == 4:
            del b[rng.randrange(n):]
        elif op == 5:
            j = min(n, i + rng.randrange(1, 64))
            del b[i:j]
        elif op == 6:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        else:
            j = min(n, i + rng.randrange(1, 64))
            b[i:i] = b[i:j]
    return bytes(b)


def mutate_pickle_ints(rng, data):
    """Lying strides, offsets and shapes (issue 13): one integer argument of the
    pickle (BININT1/BININT2/BININT: tensor sizes, strides, storage offsets and
    element counts) replaced by an interesting value, re-encoded at its width."""
    import pickletools
    try:
        ops = [(op, pos) for op, arg, pos in pickletools.genops(data) if op.name in ("BININT1", "BININT2", "BININT")]
    except Exception:
        return mutate_bytes(rng, data)
    if not ops:
        return mutate_bytes(rng, data)
    op, pos = rng.choice(ops)
    v = rng.choice([0, 0, 1, 2, 255, 65535, 1 << 20, (1 << 31) - 1, -1, -(1 << 31)])
    if -(1 << 31) <= v < 1 << 31 and (v < 0 or v > 65535 or rng.random() < 0.5):
        new = b"J" + struct.pack("<i", v)
    elif 0 <= v < 256:
        new = b"K" + bytes([v])
    else:
        new = b"M" + struct.pack("<H", v & 0xFFFF)
    width = {"BININT1": 2, "BININT2": 3, "BININT": 5}[op.name]
    return data[:pos] + new + data[pos + width:]


def mutate_zip(rng, path):
    """Rewrite the zip with one member mutated (valid CRCs, so the pickle is reached)."""
    with zipfile.ZipFile(path) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    k = [j for j, (i, _) in enumerate(items) if i.filename.endswith("data.pkl")]
    j = k[0] if k and rng.random() < 0.7 else rng.randrange(len(items))
    info, data = items[j]
    pkl = info.filename.endswith("data.pkl")
    items[j] = (info, mutate_pickle_ints(rng, data) if pkl and rng.random() < 0.5 else mutate_bytes(rng, data))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i, d in items:
            z.writestr(i, d)


def mutate_json_value(rng, obj):
    """Change one value somewhere in a JSON object (or drop/add a key)."""
    if isinstance(obj, dict) and obj:
        k = rng.choice(list(obj))
        r = rng.random()
        if r < 0.1:
            del obj[k]
        elif r < 0.5 and isinstance(obj[k], (dict, list)):
            mutate_json_value(rng, obj[k])
        else:
            obj[k] = rng.choice(JSON_VALUES)
    elif isinstance(obj, list) and obj:
        i = rng.randrange(len(obj))
        if isinstance(obj[i], (dict, list)) and rng.random() < 0.5:
            mutate_json_value(rng, obj[i])
        else:
            obj[i] = rng.choice(JSON_VALUES)


def mutate_safetensors(rng, path):
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    hdr = json.loads(b[8:8 + n])
    mutate_json_value(rng, hdr)
    h = json.dumps(hdr).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b[8 + n:])


def mutate_input(rng, src, dst):
    """Copy seed src (file or folder) to dst, corrupted."""
    if os.path.isdir(src):
        shutil.copytree(src, dst)
        names = sorted(os.listdir(dst))
        target = os.path.join(dst, rng.choice(names))
        r = rng.random()
        if target.endswith(".json") and r < 0.7:
            with open(target) as f:
                obj = json.load(f)
            mutate_json_value(rng, obj)
            with open(target, "w") as f:
                json.dump(obj, f)
            return
        if target.endswith(".safetensors") and r < 0.5:
            mutate_safetensors(rng, target)
            return
    else:
        shutil.copy(src, dst)
        target = dst
        if zipfile.is_zipfile(dst) and rng.random() < 0.7:
            mutate_zip(rng, dst)
            return
    with open(target, "rb") as f:
        b = f.read()
    with open(target, "wb") as f:
        f.write(mutate_bytes(rng, b))


# ---------------------------------------------------------------- one case

def no_limit():
    """attn runs without the harness's address-space limit (ASan reserves terabytes)."""
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def on_alarm(sig, frame):
    raise Hang()


def run_case(conv, src, work, vocab_only, dtype="f32"):
    """Convert src; return None if it behaved, else (signature, report)."""
    out = os.path.join(work, "out", "m.gguf")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    argv = [src, "-o", out, "--dtype", dtype] + (["--vocab-only"] if vocab_only else [])
    err, sout = io.StringIO(), io.StringIO()
    signal.alarm(TIMEOUT)
    try:
        with contextlib.redirect_stdout(sout), contextlib.redirect_stderr(err):
            try:
                rc = conv.main(argv)
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else 1
    except Hang:
        return "hang", "no answer in %d s" % TIMEOUT
    except BaseException as e:
        tb = traceback.extract_tb(e.__traceback__)
        where = [f for f in tb if f.filename.endswith("convert.py")]
        loc = "%s:%d" % (os.path.basename(where[-1].filename), where[-1].lineno) if where else "?"
        return "traceback %s %s" % (type(e).__name__, loc), traceback.format_exc()
    finally:
        signal.alarm(0)
    msg = err.getvalue()
    lines = [l for l in msg.rstrip("\n").split("\n") if l and not l.startswith("convert.py: warning:")]
    left = [f for f in os.listdir(os.path.dirname(out)) if f != "m.gguf"]
    if rc not in (0, 2):
        return "exit %d %s" % (rc, (lines or ["?"])[-1].split(":")[-1].strip()[:40]), msg
    if rc == 2 and (len(lines) != 1 or not lines[0].startswith("convert.py: ")):
        return "not one line", msg
    if left:
        return "temporary files left", repr(left)
    if rc == 0:
        cmd = ["tokenize", "-m", out, "--ids", "0"] if vocab_only else ["info", "-m", out]
        p = subprocess.run([ATTN] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
                           preexec_fn=no_limit)
        if p.returncode != 0:
            return "attn refuses converted file", p.stderr.decode(errors="replace")
        os.unlink(out)
    return None


# ---------------------------------------------------------------- drivers

def seeds():
    return sorted(os.listdir(SEEDS))


def fuzz(conv, seconds, seed, outdir, max_runs=None):
    rng = random.Random(seed)
    found, runs, t0 = {}, 0, time.time()
    base = tempfile.mkdtemp(prefix="attn_fuzzconv_")
    names = seeds()
    try:
        while time.time() - t0 < seconds and (max_runs is None or runs < max_runs):
            name = rng.choice(names)
            work = os.path.join(base, "w")
            shutil.rmtree(work, ignore_errors=True)
            os.makedirs(work)
            src = os.path.join(work, name)
            mutate_input(rng, os.path.join(SEEDS, name), src)
            dtype = rng.choice(["f32", "f32", "f16", "bf16", "q8_0"])
            r = run_case(conv, src, work, name in VOCAB_ONLY, dtype)
            runs += 1
            if r and r[0] not in found:
                found[r[0]] = name
                sig = hashlib.sha1(r[0].encode()).hexdigest()[:10]
                keep = os.path.join(outdir, sig)
                shutil.rmtree(keep, ignore_errors=True)
                os.makedirs(keep)
                (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(keep, name))
                with open(os.path.join(keep, "report.txt"), "w") as f:
                    f.write("%s\ndtype %s\n%s\n" % (r[0], dtype, r[1]))
                print("fuzz_convert: FOUND %s (%s) -> %s" % (r[0], name, keep), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("stat::number_of_executed_units: %d" % runs)
    print("fuzz_convert: %d runs in %.0fs, %d distinct findings" % (runs, time.time() - t0, len(found)))
    return 1 if found else 0


def replay(conv):
    """The seeds (must convert) and every kept regression (must behave)."""
    failed = 0
    base = tempfile.mkdtemp(prefix="attn_fuzzconv_")
    try:
        cases = [(os.path.join(SEEDS, n), n) for n in seeds()]
        if os.path.isdir(REGRESSIONS):
            for d in sorted(os.listdir(REGRESSIONS)):
                for n in os.listdir(os.path.join(REGRESSIONS, d)):
                    if n not in ("report.txt", "dtype"):
                        cases.append((os.path.join(REGRESSIONS, d, n), d + "/" + n))
        bad = []
        for path, label in cases:
            work = os.path.join(base, "w")
            shutil.rmtree(work, ignore_errors=True)
            os.makedirs(work)
            src = os.path.join(work, os.path.basename(path))
            (shutil.copytree if os.path.isdir(path) else shutil.copy)(path, src)
            dtype = "f32"
            rep = os.path.join(os.path.dirname(path), "report.txt")
            if os.path.exists(rep):
                with open(rep) as f:
                    dtype = (f.read().split("\n")[1:2] or ["dtype f32"])[0].split()[-1]
            r = run_case(conv, src, work, os.path.basename(path) in VOCAB_ONLY, dtype)
            if r:
                bad.append("%s: %s: %s" % (label, r[0], r[1].strip().split("\n")[-1][:200]))
        name = "fuzz convert replay (%d seeds and regressions)" % len(cases)
        if bad:
            failed = 1
            print("FAIL %s: %d bad, first %s" % (name, len(bad), bad[0]))
        else:
            print("PASS " + name)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return failed


def main():
    global ATTN
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", default=os.path.join(ROOT, "build-fuzz", "fuzz", "work", "convert"))
    ap.add_argument("--runs", type=int, default=None, help="stop after this many inputs")
    ap.add_argument("--replay", action="store_true")
    a = ap.parse_args()
    if not os.access(ATTN, os.X_OK):
        print("SKIP fuzz convert: %s not built" % ATTN)
        return 0
    # a huge allocation from a small file shows as MemoryError (exit 1), not a machine out of memory
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
    signal.signal(signal.SIGALRM, on_alarm)
    sys.setrecursionlimit(10000)
    conv = load_convert()
    # a private copy of attn: the shared one may be relinked while we run
    priv = os.path.join(tempfile.mkdtemp(prefix="attn_fuzzconv_bin_"), "attn")
    atexit.register(shutil.rmtree, os.path.dirname(priv), True)
    shutil.copy(ATTN, priv)
    ATTN = priv
    if a.replay:
        return replay(conv)
    seed = a.seed if a.seed is not None else int(time.time())
    print("fuzz_convert: seed %d, %g s" % (seed, a.seconds), flush=True)
    os.makedirs(a.out, exist_ok=True)
    return fuzz(conv, a.seconds, seed, a.out, a.runs)


if __name__ == "__main__":
    sys.exit(main())
