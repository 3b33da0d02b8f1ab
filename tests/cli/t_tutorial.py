"""The chapter's exercises on the built-in model (issue 14): heads filters and
sorting, compare's type labels against uniform attention, and the option
syntax every command shares (attn.c cli_split_args, cli_index_list,
--ids parsing): --opt=value equals --opt value, `last` as a layer, an option
given twice is refused, a range that goes down gets a clear message, an empty
--ids item is refused. Uses the built-in model (2 layers, 4 heads)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from testlib import ERRORS, attn, done, read_npy, result, scratch


def case(name, fn):
    try:
        errs = fn()
    except ERRORS as e:
        errs = [e]
    result("tutorial " + name, errs)


def eq_form():
    a = attn("run", "--ids", "5,6,7", "-k", "3", "--format", "json", rc=0).stdout
    b = attn("run", "--ids=5,6,7", "-k", "3", "--format=json", rc=0).stdout
    c = attn("heads", "-p", "a b a b", "--layers=1", "--format=tsv", rc=0).stdout
    d = attn("heads", "-p", "a b a b", "--layers", "1", "--format", "tsv", rc=0).stdout
    e = attn("run", "-p", "--x=y", "-k", "1", rc=0).stdout  # a value after -p is never split
    return ([] if a == b else ["--opt=value output differs"]) + ([] if c == d else ["heads --layers=1 differs"]) + \
        ([] if '--x=y' in e or "x" in e else ["-p --x=y was split"])


def last_layer():
    tmp = scratch("t_opts_")
    attn("maps", "-p", "a b c", "--layers", "last", "--heads", "0", "-o", tmp, "--no-grid", rc=0)
    names = sorted(os.listdir(tmp))
    return [] if any(n.startswith("L01_H00") for n in names) else ["--layers last drew %s" % names]


def twice():
    errs = []
    for args in (("run", "-p", "a", "-k", "3", "-k", "4"), ("heads", "-p", "a b", "--by", "self", "--by=first"),
                 ("run", "-p", "a", "--prompt", "b")):
        r = attn(*args)
        if r.returncode != 2 or "given twice" not in r.stderr:
            errs.append("%s: exit %d %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    r = attn("compare", "-m", "x.gguf", "-m", "y.gguf", "-p", "a")
    if "given twice" in r.stderr:
        errs.append("-m twice refused")
    return errs


def down_range():
    r = attn("maps", "-p", "a b", "--layers", "1-0", "-o", scratch("t_opts_"))
    return [] if r.returncode == 2 and "goes down" in r.stderr and "0-1" in r.stderr else \
        ["exit %d: %s" % (r.returncode, r.stderr.strip())]


def empty_ids():
    errs = []
    for ids in ("1,,2", "1,2,", ",1"):
        r = attn("run", "--ids", ids)
        if r.returncode != 2 or "attn: --ids" not in r.stderr:
            errs.append("--ids %s: exit %d %s" % (ids, r.returncode, r.stderr.strip()))
    attn("run", "--ids", "1, 2", rc=0)
    return errs


def heads_filters():
    errs = []
    rows = lambda out: [dict(zip(out[0].split("\t"), l.split("\t"))) for l in out[1:]]  # noqa: E731
    tsv = lambda *a: rows(attn("heads", "-p", "the cat sat on the mat the cat", "--format", "tsv", *a,  # noqa: E731
                                rc=0).stdout.splitlines())
    allr = tsv()
    got = tsv("--layers", "last", "--heads", "0,2")
    if [(r["layer"], r["head"]) for r in got] != [("1", "0"), ("1", "2")]:
        errs.append("--layers last --heads 0,2 gave %s" % [(r["layer"], r["head"]) for r in got])
    asc = tsv("--by", "entropy_bits", "--asc")
    ent = sorted(float(r["entropy_bits"]) for r in allr)
    if [float(r["entropy_bits"]) for r in asc] != ent:
        errs.append("--by entropy_bits --asc not ascending")
    table = attn("heads", "-p", "the cat sat on the mat the cat", rc=0).stdout.splitlines()
    if max(len(l) for l in table) > 100:
        errs.append("default table is %d columns wide" % max(len(l) for l in table))
    wide = attn("heads", "-p", "the cat sat on the mat the cat", "--wide", rc=0).stdout
    if "unif" not in wide.splitlines()[-9]:
        errs.append("--wide has no unif column")
    return errs


def compare_labels():
    """Untrained heads get no type; a named type's score is >= 2 x and >= 0.2
    above uniform causal attention's (from `heads`' own unif columns)."""
    p = "the cat sat on the mat. the cat sat on the mat."
    out = attn("compare", "--init", "random", "-p", p, "--format", "tsv", rc=0).stdout.splitlines()
    rows = [dict(zip(out[0].split("\t"), l.split("\t"))) for l in out[1:]]
    hs = attn("heads", "-p", p, "--format", "tsv", rc=0).stdout.splitlines()
    hrows = [dict(zip(hs[0].split("\t"), l.split("\t"))) for l in hs[1:]]
    names = {"prev": "previous", "first": "first", "self": "self", "induct": "induction", "dup": "duplicate"}
    errs, named = [], 0
    for r, h in zip(rows, hrows):
        if r["type_B"] != "\u2014":
            errs.append("random init L%s H%s labelled %r" % (r["layer"], r["head"], r["type_B"]))
        t = r["type_A"].split()
        if t[0] in names:
            named += 1
            v, u = float(h[names[t[0]]]), float(h[names[t[0]] + "_uniform"])
            if not (v >= 2 * u and v - u >= 0.2):
                errs.append("L%s H%s %s %.3f vs uniform %.3f" % (r["layer"], r["head"], t[0], v, u))
    return errs + ([] if named else ["no head of the trained model named"])


def per_token():
    """run --per-token honours --layers/--heads in every format; the TSV keeps the
    attention columns (L<l>H<h> = "pos:prob ..."), equal to attention.npy's top 3."""
    tmp = scratch("t_opts_")
    args = ("run", "-p", "the cat sat on the mat", "--per-token", "--layers", "last", "--heads", "0,2", "-k", "2")
    tsv = attn(*args, "--format", "tsv", rc=0).stdout.splitlines()
    table = attn(*args, rc=0).stdout
    js = json.loads(attn(*args, "--format", "json", rc=0).stdout)
    attn("run", "-p", "the cat sat on the mat", "--export", "npy", "-o", tmp, rc=0)
    shape, a = read_npy(os.path.join(tmp, "attention.npy"))
    L, H, T, _ = shape
    errs = []
    head = tsv[0].split("\t")
    if head[7:] != ["L1H0", "L1H2"]:
        errs.append("TSV attention columns %s" % head[7:])
    for line in tsv[1:]:
        row = dict(zip(head, line.split("\t")))
        t = int(row["position"])
        for col, h in (("L1H0", 0), ("L1H2", 2)):
            base = ((1 * H + h) * T + t) * T
            want = sorted(range(t + 1), key=lambda j: -a[base + j])[:3]
            got = [int(x.split(":")[0]) for x in row[col].split()]
            if got != want[:len(got)] or not got:
                errs.append("pos %d %s: %s, attention.npy's top keys %s" % (t, col, got, want))
    if "L0 H" in table or "L1 H1" in table or "L1 H0" not in table:
        errs.append("table shows other heads")
    if any({(x["layer"], x["head"]) for x in p["attends"]} != {(1, 0), (1, 2)} for p in js["positions"]):
        errs.append("JSON attends other heads")
    return errs


def labels_in_tables():
    """A '"' inside a label is escaped; the columns after a label with '\u00b7' line
    up (display width, not bytes) in run's and trace's tables."""
    errs = []
    out = attn("run", "-p", 'he said "no" to', "-k", "12", rc=0).stdout.splitlines()
    rows = [l for l in out if l.strip()[:1].isdigit()]
    if not any('"\u00b7\\""' in l for l in rows):
        errs.append("no escaped quote label in %s" % rows)
    cols = {len(l.rsplit("  ", 2)[0].rstrip()) for l in rows}  # code points up to the prob column
    ends = {len(l) for l in rows}
    if len(ends) != 1:
        errs.append("run table rows end at %s (code points)" % sorted(ends))
    out = attn("trace", "-p", 'he said "', "-n", "2", "-k", "8", rc=0).stdout.splitlines()
    rows = [l for l in out if l.strip()[:1].isdigit() and "." in l]
    starts = {l.index(".", l.index('"', 14) + 1 if '"' in l else 0) for l in rows}
    if len({len(l.replace("  <- chosen", "")) for l in rows}) != 1:
        errs.append("trace table rows end at %s" % sorted({len(l.replace("  <- chosen", "")) for l in rows}))
    return errs + ([] if cols else ["no rows"]) + ([] if starts else ["no trace rows"])


def maps_annot():
    """--annot writes the numbers (the picture differs from --no-annot); on by default
    for T <= 16, off above; text colour follows the cell (checked by eye: tools/readme)."""
    def png(*args):
        d = scratch("t_annot_")
        attn("maps", *args, "--layers", "0", "--heads", "1", "--no-grid", "-o", d, rc=0)
        with open(os.path.join(d, "L00_H01.png"), "rb") as f:
            return f.read()
    short, long_ = "The cat sat on the mat.", "The cat sat on the mat. The cat sat on the mat. The dog ran."
    errs = []
    a, n, d = png("-p", short, "--annot"), png("-p", short, "--no-annot"), png("-p", short)
    if a == n:
        errs.append("--annot draws nothing")
    if d != a:
        errs.append("a short prompt is not annotated by default")
    if png("-p", long_) != png("-p", long_, "--no-annot"):
        errs.append("a prompt of more than 16 tokens is annotated by default")
    return errs


for n, f in (("maps --annot", maps_annot), ("run --per-token --layers/--heads", per_token), ("labels in tables", labels_in_tables), ("compare type labels", compare_labels), ("heads --layers/--heads/--asc/--wide", heads_filters), ("--opt=value", eq_form), ("last layer", last_layer), ("given twice", twice),
             ("range goes down", down_range), ("--ids empty item", empty_ids)):
    case(n, f)
done()
