#!/usr/bin/env python3
"""bpe_train.py: train a GPT-2 style byte-level BPE vocabulary (standard library only).

    python3 tools/bpe_train.py TEXT.txt OUTDIR --vocab-size 4096

Writes OUTDIR/vocab.json (token -> id) and OUTDIR/merges.txt ("#version: 0.2"
then one "a b" merge per line, rank order), the format of GPT-2 and Hugging
Face tokenizers. Token ids: the 256 byte tokens in GPT-2's byte-to-unicode
order, then one token per merge, then "<|endoftext|>" last.

Pre-tokenisation uses a standard-library `re` approximation of GPT-2's
pattern (\\p{L} -> [^\\W\\d_], \\p{N} -> \\d); it only decides which merges
are learned, the tokenizers that apply them use the real pattern.

Training: count the distinct pre-tokens once, then repeat: take the most
frequent adjacent pair (ties: the smaller pair in string order), merge it in
the words that contain it and update the pair counts of those words only.
"""
import argparse
import collections
import json
import os
import re
import sys
import time

GPT2_SPLIT = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")
EOT = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's map from the 256 byte values to printable unicode characters, in GPT-2's id order."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return list(zip(bs, (chr(c) for c in cs)))


def count_words(text, byte_map):
    """Distinct pre-tokens as tuples of byte-unicode symbols, with their counts."""
    counts = collections.Counter(GPT2_SPLIT.findall(text))
    words, freqs = [], []
    for w, c in counts.items():
        words.append([byte_map[b] for b in w.encode("utf-8")])
        freqs.append(c)
    return words, freqs


def train(words, freqs, n_merges, log=None):
    pair_count = collections.defaultdict(int)      # (a, b) -> weighted count
    pair_words = collections.defaultdict(set)      # (a, b) -> ids of words containing it
    for i, w in enumerate(words):
        for p in zip(w, w[1:]):
            pair_count[p] += freqs[i]
            pair_words[p].add(i)
    merges = []
    t0 = time.time()
    while len(merges) < n_merges and pair_count:
        top = max(pair_count.values())
        if top < 2:
            break
        best = min(p for p, c in pair_count.items() if c == top)
        merges.append(best)
        a, b = best
        ab = a + b
        for i in pair_words.pop(best):
            w, f = words[i], freqs[i]
            for p in zip(w, w[1:]):                # remove this word's old pairs
                pair_count[p] -= f
            j, nw = 0, []
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    nw.append(ab)
                    j += 2
                else:
                    nw.append(w[j])
                    j += 1
            words[i] = nw
            for p in zip(nw, nw[1:]):              # add the new ones
                pair_count[p] += f
                pair_words[p].add(i)
        for p in [p for p, c in pair_count.items() if c <= 0]:
            del pair_count[p]
            pair_words.pop(p, None)
        if log and len(merges) % 500 == 0:
            log(f"bpe_train: {len(merges)} merges, {time.time() - t0:.1f}s, last {a!r}+{b!r}")
    return merges


def build(text, vocab_size, outdir, log=None):
    """Train on `text` and write outdir/vocab.json and outdir/merges.txt; returns the vocabulary."""
    table = bytes_to_unicode()
    words, freqs = count_words(text, dict(table))
    if log:
        log(f"bpe_train: {len(text)} chars, {len(words)} distinct pre-tokens")
    merges = train(words, freqs, vocab_size - 256 - 1, log)
    vocab = {ch: i for i, (_, ch) in enumerate(table)}
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab[EOT] = len(vocab)
    os.makedirs(outdir, exist_ok=True)
    for name, body in (("vocab.json", json.dumps(vocab, ensure_ascii=False)),
                       ("merges.txt", "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))):
        path = os.path.join(outdir, name)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(path + ".tmp", path)
    if log:
        log(f"bpe_train: {len(merges)} merges, vocab {len(vocab)} -> {outdir}")
    return vocab


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("text", help="UTF-8 training text")
    ap.add_argument("outdir")
    ap.add_argument("--vocab-size", type=int, default=4096, help="including the 256 bytes and <|endoftext|>")
    args = ap.parse_args()
    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    build(text, args.vocab_size, args.outdir, lambda s: print(s, file=sys.stderr))


if __name__ == "__main__":
    main()
