"""Option syntax every command shares (attn.c cli_split_args, cli_index_list,
--ids parsing): --opt=value equals --opt value, `last` as a layer, an option
given twice is refused, a range that goes down gets a clear message, an empty
--ids item is refused. Uses the built-in model (2 layers, 4 heads)."""
import os

from testlib import ERRORS, attn, done, result, scratch


def case(name, fn):
    try:
        errs = fn()
    except ERRORS as e:
        errs = [e]
    result("options " + name, errs)


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


for n, f in (("--opt=value", eq_form), ("last layer", last_layer), ("given twice", twice),
             ("range goes down", down_range), ("--ids empty item", empty_ids)):
    case(n, f)
done()
