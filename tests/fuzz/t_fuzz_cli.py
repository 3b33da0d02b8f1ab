"""Replays the command lines of tests/fuzz/corpus_cli/ and every one the CLI
fuzzer crashed on (tests/fuzz/regressions/cli/) through the attn binary, the
way tests/fuzz/fuzz_cli.c runs them: files for `maps --from rec` first when
the input starts with 0xFF (a prompt file p.txt first when it starts with
0xFE), then arguments split on NUL, '/' -> '_',
'..' -> '_.', -t capped at 4, `bench` skipped, in a scratch directory with
m.gguf, l.gguf, c.gguf, stdin from /dev/null. Each must exit 0, 1 or 2 (no
signal), a failure's last stderr line must start "attn: ", and no temporary
file may be left behind."""
import os, shutil, subprocess, sys, tempfile

ATTN = os.path.abspath(os.environ.get("ATTN", "./attn"))
HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "corpus_gguf")
MODELS = {"m.gguf": "gpt2_bpe.gguf", "l.gguf": "llama_spm_gqa.gguf", "c.gguf": "nanogpt_rope_char.gguf"}


def files_of(data, work):
    """An input starting 0xFF carries rec/attention.npy and rec/tokens.json
    first; one starting 0xFE a prompt file p.txt (2-byte length, bytes)."""
    if data and data[0] == 0xFE:
        n = data[1] | data[2] << 8 if len(data) >= 3 else 0
        at = min(3, len(data))
        n = min(n, len(data) - at)
        with open(os.path.join(work, "p.txt"), "wb") as f:
            f.write(data[at:at + n])
        return data[at + n:]
    if not data or data[0] != 0xFF:
        return data
    os.makedirs(os.path.join(work, "rec"), exist_ok=True)
    at = 1
    for name in ("attention.npy", "tokens.json"):
        n = data[at] | data[at + 1] << 8 if at + 2 <= len(data) else 0
        at = min(at + 2, len(data))
        n = min(n, len(data) - at)
        with open(os.path.join(work, "rec", name), "wb") as f:
            f.write(data[at:at + n])
        at += n
    return data[at:]


def argv_of(data):
    args = []
    for a in data.split(b"\0")[:64]:
        a = a.replace(b"/", b"_")
        while b".." in a:
            a = a.replace(b"..", b"_.", 1)
        args.append(a)
    for i in range(len(args) - 1):
        if args[i] in (b"-t", b"--threads"):
            try:
                if int(args[i + 1]) > 4:
                    args[i + 1] = b"4"
            except ValueError:
                pass
    return args


def main():
    failed = 0
    for kind in ("corpus_cli", os.path.join("regressions", "cli")):
        d = os.path.join(HERE, kind)
        names = sorted(os.listdir(d)) if os.path.isdir(d) else []
        bad = []
        for name in names:
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            work = tempfile.mkdtemp(prefix="attn_fuzzcli_")
            args = argv_of(files_of(data, work))
            if args and args[0] == b"bench":
                shutil.rmtree(work, ignore_errors=True)
                continue
            try:
                for dst, src in MODELS.items():
                    shutil.copy(os.path.join(SEEDS, src), os.path.join(work, dst))
                try:
                    p = subprocess.run([ATTN.encode()] + args, cwd=work, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
                except subprocess.TimeoutExpired:
                    bad.append("%s: timed out" % name)
                    continue
                err = p.stderr.decode("utf-8", "replace").rstrip("\n").split("\n")
                left = [os.path.join(r, x) for r, _, fs in os.walk(work) for x in fs if ".tmp." in x]
                if p.returncode not in (0, 1, 2):
                    bad.append("%s: exit status %d, stderr %r" % (name, p.returncode, p.stderr[-300:]))
                elif p.returncode and not err[-1].startswith("attn: "):
                    bad.append("%s: exit %d without a final 'attn: ' line: %r" % (name, p.returncode, p.stderr[-300:]))
                elif left:
                    bad.append("%s: temporary files left: %s" % (name, left))
            finally:
                shutil.rmtree(work, ignore_errors=True)
        test = "fuzz cli replay %s (%d command lines)" % (kind, len(names))
        if bad:
            failed += 1
            print("FAIL %s: %d bad, first %s" % (test, len(bad), bad[0]))
        else:
            print("PASS " + test)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
