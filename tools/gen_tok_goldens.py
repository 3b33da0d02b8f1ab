#!/usr/bin/python3
"""Regenerate the tokenizer golden files in tests/data/ from the references
(nothing here is computed by attn):

  tok_gpt2.golden          npm gpt-3-encoder: encode(line) for each line of
                           tests/data/tokenizer_corpus.txt (needs `cd tests && npm install`)
  tok_llama.golden         Debian python3-sentencepiece on ../shared/models/tokenizer.model:
                           [bos] + encode(line), what a Llama model is fed
  tok_llama_bytes.golden   sentencepiece on byte strings with invalid UTF-8:
                           "<hex of the bytes>\t<bos ids...>"
  tok_llama_decode.golden  sentencepiece decode of id sequences (byte tokens that
                           form invalid UTF-8, <unk>, <s>, leading "▁"...):
                           "<ids...>\t<hex of the decoded UTF-8 text>"

Golden lines hold ids separated by one space, one line per corpus line (the
corpus is split on "\\n" only; its final newline ends the last line).
Run from the repo root: /usr/bin/python3 tools/gen_tok_goldens.py
"""
import json
import os
import random
import subprocess
import sys

import sentencepiece

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "tests", "data")
CORPUS = os.path.join(DATA, "tokenizer_corpus.txt")
SPM_MODEL = os.path.join(ROOT, "..", "shared", "models", "tokenizer.model")

GPT2_JS = r"""
const fs = require('fs');
const enc = require('gpt-3-encoder');
const lines = fs.readFileSync(process.argv[1], 'utf8').split('\n');
lines.pop(); // after the final newline
let out = [], trips = 0;
for (const l of lines) {
    const ids = enc.encode(l);
    if (enc.decode(ids) === l) trips++;
    out.push(ids.join(' '));
}
fs.writeFileSync(process.argv[2], out.join('\n') + '\n');
console.error(`gpt-3-encoder: ${lines.length} lines, decode(encode(line)) == line for ${trips}`);
"""


def corpus_lines():
    data = open(CORPUS, "rb").read()
    assert data.endswith(b"\n"), "corpus must end with a newline"
    return data[:-1].split(b"\n")


def write(name, lines):
    path = os.path.join(DATA, name)
    with open(path + ".tmp", "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(l + "\n" for l in lines))
    os.replace(path + ".tmp", path)
    print("wrote tests/data/%s: %d lines" % (name, len(lines)), file=sys.stderr)


def ids_str(ids):
    return " ".join(str(i) for i in ids)


def gen_gpt2():
    out = os.path.join(DATA, "tok_gpt2.golden")
    subprocess.run(["node", "-e", GPT2_JS, CORPUS, out + ".tmp"], cwd=os.path.join(ROOT, "tests"), check=True)
    os.replace(out + ".tmp", out)
    print("wrote tests/data/tok_gpt2.golden", file=sys.stderr)


def gen_llama(sp):
    bos = sp.bos_id()
    lines, trips = [], 0
    corpus = corpus_lines()
    for raw in corpus:
        text = raw.decode("utf-8")
        ids = sp.encode(text)
        trips += sp.decode(ids) == text
        lines.append(ids_str([bos] + ids))
    print("sentencepiece: %d lines, decode(encode(line)) == line for %d" % (len(corpus), trips), file=sys.stderr)
    write("tok_llama.golden", lines)


def gen_llama_bytes(sp):
    rnd = random.Random(4)
    cases = [b"\xff", b"\xfe\xff", b"a\xe2\x82b", b"\xed\xa0\x80", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\xaf",
             b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf0\x9f\x98", b"\x80abc", b"caf\xc3", b"caf\xc3 au lait",
             b"\xef\xbf\xbd", b"\xef\xbf\xbe", "한국어".encode()[:-1] + b" \xa0\xa1", b" \xff ", b"\xff\xff\xff",
             "▁x▁ ▁".encode(), b"\x00", b"a\x00b", b"\xe2\x96", b"\xe2\x96\x81\xe2\x96", b"\x7f\x80\x81\x82"]
    pool = [b"a", b" ", b"\t", b"\n", b"\xff", b"\x80", b"\xc3", b"\xa9", b"\xe2", b"\x96", b"\x81", b"\xf0", b"\x9f",
            "한".encode(), "é".encode(), b"\xed", b"\xa0", b"x", b"1"]
    for _ in range(200):
        cases.append(b"".join(rnd.choice(pool) for _ in range(rnd.randrange(1, 20))))
    write("tok_llama_bytes.golden", [c.hex() + "\t" + ids_str([sp.bos_id()] + sp.encode(c)) for c in cases])


def gen_llama_decode(sp):
    rnd = random.Random(7)
    n = sp.vocab_size()
    byte_ids = [i for i in range(n) if sp.is_byte(i)]
    space = sp.piece_to_id("\u2581")
    seqs = [[1, 15043], [15043], [space, 15043], [space, space, 15043], [1, space, 15043], [0, 15043], [2, 15043],
            [1, 2, 15043], [231, 15043], [231, 187, 15043], [258], [231, 187], [13, 15043], [1, 13, 15043], [0], [1], [],
            [space], [1, space], [0, 0, space, 0]]
    for _ in range(400):
        s = []
        for _ in range(rnd.randrange(1, 14)):
            r = rnd.random()
            if r < 0.35: s.append(rnd.choice(byte_ids))
            elif r < 0.45: s.append(rnd.choice([0, 1, 2, space]))
            else: s.append(rnd.randrange(n))
        seqs.append(s)
    write("tok_llama_decode.golden", [ids_str(s) + "\t" + sp.decode(s).encode("utf-8").hex() for s in seqs])


def main():
    sp = sentencepiece.SentencePieceProcessor(model_file=SPM_MODEL)
    gen_llama(sp)
    gen_llama_bytes(sp)
    gen_llama_decode(sp)
    gen_gpt2()


if __name__ == "__main__":
    main()
