"""tools/convert.py on corrupted inputs (tests/fuzz/fuzz_convert.py): the seeds
and every kept failure (tests/fuzz/regressions/convert/) replayed, then 300
random corruptions with a fixed seed. Each must give exit 0 or 2 with one
line, no traceback, no temporary file, and a file attn loads when it says 0."""
import os, shutil, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ = os.path.join(HERE, "fuzz_convert.py")
py = os.environ.get("PY") or sys.executable
r = subprocess.run([py, FUZZ, "--replay"], capture_output=True, text=True)
sys.stdout.write(r.stdout)
failed = r.returncode != 0 and "FAIL" not in r.stdout
out = tempfile.mkdtemp(prefix="attn_fuzzconv_out_")
try:
    r = subprocess.run([py, FUZZ, "--runs", "300", "--seconds", "60", "--seed", "9", "--out", out],
                       capture_output=True, text=True)
    found = [l for l in r.stdout.splitlines() if "FOUND" in l]
    if r.returncode == 0 and "300 runs" in r.stdout:
        print("PASS fuzz convert: 300 random corruptions (seed 9)")
    elif "SKIP" in r.stdout:
        sys.stdout.write(r.stdout)
    else:
        failed = True
        print("FAIL fuzz convert: 300 random corruptions (seed 9): %s" % ("; ".join(found[:3]) or r.stdout[-300:] + r.stderr[-300:]))
        for d in os.listdir(out):
            with open(os.path.join(out, d, "report.txt")) as f:
                print("   " + f.read().strip().replace("\n", "\n   ")[:1500])
finally:
    shutil.rmtree(out, ignore_errors=True)
sys.exit(1 if failed else 0)
