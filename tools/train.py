#!/usr/bin/python3
"""train.py: train attn's built-in model, a small LLaMA-style LM on the Brown Corpus (CPU, PyTorch).

    tools/get_corpus.sh /work/train_out/brown.txt
    nice /usr/bin/python3 tools/train.py --corpus /work/train_out/brown.txt --out /work/train_out

Steps: split the corpus into documents (every 50th document, starting at the
25th, is held out), train a byte-level BPE on the training documents
(tools/bpe_train.py), tokenise, train the model, and save Hugging Face LLaMA
folders (config.json, pytorch_model.bin, vocab.json, merges.txt) at the
--save-steps and at the end, under OUT/ckpt_STEP/. Each saved checkpoint is
also measured (held-out loss, previous/first-token and induction scores,
computed here from the attention probabilities) into OUT/metrics.json.

Model: pre-norm LLaMA (RMSNorm, RoPE in HF rotate_half order, SwiGLU, no
biases, tied embeddings). Data mix: in a fraction --repeat-frac of the
training sequences one random span is copied to a later place in the same
sequence, so that copying earlier text pays off and induction heads form
within a short CPU run.
"""
import argparse
import json
import math
import os
import random
import sys
import time

# torch threads its own ops; OpenBLAS's extra spinning threads on top of them
# make a step 2-3x slower on a shared machine (measured), so matmuls stay on the calling thread
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe_train  # noqa: E402

EOT = bpe_train.EOT


# ---------------------------------------------------------------- tokenizer

class BPE:
    """GPT-2 byte-level BPE encoder over vocab.json + merges.txt (with a per-word cache)."""

    def __init__(self, folder):
        with open(os.path.join(folder, "vocab.json"), encoding="utf-8") as f:
            self.vocab = json.load(f)
        with open(os.path.join(folder, "merges.txt"), encoding="utf-8") as f:
            merges = [tuple(l.split()) for l in f.read().splitlines()[1:] if l]
        self.rank = {m: i for i, m in enumerate(merges)}
        self.byte_map = dict(bpe_train.bytes_to_unicode())
        self.cache = {}

    def word(self, w):
        if w in self.cache:
            return self.cache[w]
        parts = [self.byte_map[b] for b in w.encode("utf-8")]
        while len(parts) > 1:
            pairs = [(self.rank.get(p, 1 << 30), i) for i, p in enumerate(zip(parts, parts[1:]))]
            r, i = min(pairs)
            if r == 1 << 30:
                break
            a, b = parts[i], parts[i + 1]
            out, j = [], 0
            while j < len(parts):
                if j + 1 < len(parts) and parts[j] == a and parts[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(parts[j])
                    j += 1
            parts = out
        ids = [self.vocab[p] for p in parts]
        self.cache[w] = ids
        return ids

    def encode(self, text):
        ids = []
        for w in bpe_train.GPT2_SPLIT.findall(text):
            ids.extend(self.word(w))
        return ids


# ---------------------------------------------------------------- model

class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(T, hd, theta):
    inv = theta ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)   # (hd/2,)
    ang = torch.outer(torch.arange(T, dtype=torch.float32), inv)           # (T, hd/2)
    ang = torch.cat([ang, ang], dim=-1)                                    # (T, hd) halves layout
    return ang.cos(), ang.sin()


def rope(x, cos, sin):
    # HF rotate_half: the pairs are (i, i + hd/2)
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
    return x * cos + rot * sin


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.n_head = c["num_attention_heads"]
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(self, x, cos, sin, keep=None):
        B, T, D = x.shape
        H, hd = self.n_head, D // self.n_head
        q = self.q_proj(x).view(B, T, H, hd).transpose(1, 2)   # (B, H, T, hd)
        k = self.k_proj(x).view(B, T, H, hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, H, hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)           # (B, H, T, T)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        if keep is not None:
            keep.append(att.detach())
        y = (att @ v).transpose(1, 2).reshape(B, T, D)
        return self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, f = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = MLP(c)

    def forward(self, x, cos, sin, keep=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, keep)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Block(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class Llama(nn.Module):
    """Module names are Hugging Face LlamaForCausalLM's, so state_dict() is an HF checkpoint."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Body(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self.lm_head.weight = self.model.embed_tokens.weight      # tied
        hd = c["hidden_size"] // c["num_attention_heads"]
        cos, sin = rope_tables(c["max_position_embeddings"], hd, c["rope_theta"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * c["num_hidden_layers"]) if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx, keep=None):
        T = idx.shape[1]
        x = self.model.embed_tokens(idx)
        cos, sin = self.cos[:T], self.sin[:T]
        for layer in self.model.layers:
            x = layer(x, cos, sin, keep)
        return self.lm_head(self.model.norm(x))


# ---------------------------------------------------------------- data

def split_corpus(text, every=50, first=25):
    """Documents are separated by an empty line; every `every`-th one from `first` is held out."""
    docs = text.split("\n\n")
    train = [d for i, d in enumerate(docs) if i % every != first]
    val = [d for i, d in enumerate(docs) if i % every == first]
    return train, val


def tokens_of(bpe, docs):
    eot = bpe.vocab[EOT]
    ids = []
    for d in docs:
        ids.append(eot)
        ids.extend(bpe.encode(d))
    return torch.tensor(ids, dtype=torch.long)


def batch(data, B, T, repeat_frac, random_frac, V, rng, pure_frac=0.0):
    """B windows of T+1 tokens; in a fraction repeat_frac of them copy a span [a, a+L) to
    [b, b+L), b >= a+L; in a fraction random_frac of those the span is first filled with
    uniformly random tokens (then only copying can predict its second occurrence).
    A fraction pure_frac of the windows is instead one random sequence of 8..40 ids
    repeated to fill the window: the induction test's task, with no text around it."""
    rows = []
    for _ in range(B):
        if rng.random() < pure_frac:
            L = rng.randint(8, 40)
            seq = [rng.randrange(V - 1) for _ in range(L)]
            rows.append(torch.tensor((seq * ((T + 1) // L + 1))[:T + 1]))
            continue
        s = rng.randrange(len(data) - T - 1)
        row = data[s:s + T + 1].clone()
        if rng.random() < repeat_frac:
            L = rng.randint(8, (T + 1) // 2)
            a = rng.randrange(0, T + 1 - 2 * L + 1)
            b = rng.randrange(a + L, T + 1 - L + 1)
            if rng.random() < random_frac:
                row[a:a + L] = torch.tensor([rng.randrange(V - 1) for _ in range(L)])
            row[b:b + L] = row[a:a + L].clone()
        rows.append(row)
    x = torch.stack(rows)
    return x[:, :-1], x[:, 1:]


# ---------------------------------------------------------------- measurements

@torch.no_grad()
def heldout_loss(model, val, T):
    model.eval()
    n = (len(val) - 1) // T
    xs = torch.stack([val[i * T:i * T + T] for i in range(n)])
    ys = torch.stack([val[i * T + 1:i * T + T + 1] for i in range(n)])
    tot = 0.0
    for i in range(0, n, 16):
        logits = model(xs[i:i + 16])
        tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ys[i:i + 16].reshape(-1), reduction="sum").item()
    model.train()
    return tot / (n * T)


def head_scores(att, ids):
    """att: (L, H, T, T) one sequence; ids: (T,). Scores as in attn.h / README (mean over defined rows)."""
    L, H, T, _ = att.shape
    r = torch.arange(1, T)
    prev = att[:, :, r, r - 1].mean(-1)                 # (L, H)
    first = att[:, :, 1:, 0].mean(-1)
    # induction: keys j+1 with ids[j] == ids[i], j+1 < i
    m = torch.zeros(T, T)
    for i in range(T):
        for j in range(i - 1):
            if ids[j] == ids[i]:
                m[i, j + 1] = 1.0
    rows = m.sum(1) > 0
    ind = (att * m).sum(-1)[:, :, rows].mean(-1) if rows.any() else torch.full((L, H), float("nan"))
    return prev, first, ind


@torch.no_grad()
def measure(model, val, vocab_size, eot, T, n_seq=8, rep_len=50, seed=0):
    """Mean head scores over held-out windows (previous, first) and over random repeated sequences (induction)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    P = Fi = I = 0
    for k in range(n_seq):
        s = int(torch.randint(len(val) - T, (1,), generator=g))
        ids = val[s:s + T]
        keep = []
        model(ids[None], keep)
        p, f, _ = head_scores(torch.stack([a[0] for a in keep]), ids)
        P, Fi = P + p / n_seq, Fi + f / n_seq
    l1 = l2 = 0.0
    for k in range(n_seq):
        r = torch.randint(0, vocab_size, (rep_len,), generator=g)
        r[r == eot] = 0
        ids = torch.cat([r, r])
        keep = []
        logits = model(ids[None], keep)
        _, _, ind = head_scores(torch.stack([a[0] for a in keep]), ids)
        I = I + ind / n_seq
        nll = F.cross_entropy(logits[0, :-1], ids[1:], reduction="none")
        l1 += nll[:rep_len - 1].mean().item() / n_seq
        l2 += nll[rep_len:].mean().item() / n_seq
    model.train()
    return {"previous": P.tolist(), "first": Fi.tolist(), "induction": I.tolist(),
            "induction_loss": {"first_repeat": l1, "second_repeat": l2}}


def unigram_entropy(data, V):
    c = torch.bincount(data, minlength=V).double()
    p = c[c > 0] / c.sum()
    return float(-(p * p.log()).sum())


# ---------------------------------------------------------------- saving

def save_hf(model, bpe_dir, out):
    os.makedirs(out, exist_ok=True)
    cfg = dict(model.c)
    cfg.update({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
                "tie_word_embeddings": True, "torch_dtype": "float32"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save(sd, os.path.join(out, "pytorch_model.bin"))
    for n in ("vocab.json", "merges.txt"):
        with open(os.path.join(bpe_dir, n), "rb") as a, open(os.path.join(out, n), "wb") as b:
            b.write(a.read())


# ---------------------------------------------------------------- report

def report(metrics):
    """Markdown tables for TRAINING.md: loss curve and per-checkpoint head scores."""
    out = ["| step | train loss (mean of the last --log-every steps) | held-out loss |", "|---:|---:|---:|"]
    rows = {}
    for e in metrics["log"]:
        rows.setdefault(e["step"], {}).update(e)
    for step, ck in metrics["checkpoints"].items():
        rows.setdefault(int(step), {})["heldout"] = ck["heldout_loss"]
    for step in sorted(rows):
        r = rows[step]
        if "heldout" in r or step % 100 == 0:
            tr = f"{r['train']:.3f}" if "train" in r else ""
            ho = f"{r['heldout']:.3f}" if "heldout" in r else ""
            out.append(f"| {step} | {tr} | {ho} |")
    out += ["", "| checkpoint | held-out loss | best previous-token head | best first-token head | "
            "best induction head | loss on 1st / 2nd repeat |", "|---:|---:|---|---|---|---|"]
    for step, ck in sorted(metrics["checkpoints"].items(), key=lambda kv: int(kv[0])):
        cells = []
        for k in ("previous", "first", "induction"):
            v, l, h = max((v, l, h) for l, row in enumerate(ck[k]) for h, v in enumerate(row))
            cells.append(f"L{l}H{h} {v:.2f}")
        il = ck["induction_loss"]
        out.append(f"| {step} | {ck['heldout_loss']:.3f} | {' | '.join(cells)} | "
                   f"{il['first_repeat']:.2f} / {il['second_repeat']:.2f} |")
    for step, ck in sorted(metrics["checkpoints"].items(), key=lambda kv: int(kv[0])):
        out += ["", f"Step {step}: per-head scores (layer rows, head columns) previous / first / induction:", "",
                "| layer | " + " | ".join(f"H{h}" for h in range(len(ck["previous"][0]))) + " |",
                "|---|" + "---|" * len(ck["previous"][0])]
        for l in range(len(ck["previous"])):
            out.append(f"| L{l} | " + " | ".join(
                f"{ck['previous'][l][h]:.2f} / {ck['first'][l][h]:.2f} / {ck['induction'][l][h]:.2f}"
                for h in range(len(ck["previous"][l]))) + " |")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--ffn", type=int, default=512)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--repeat-frac", type=float, default=0.6)
    ap.add_argument("--random-frac", type=float, default=0.3)
    ap.add_argument("--pure-frac", type=float, default=0.0, help="windows that are one repeated random sequence")
    ap.add_argument("--save-steps", default="0,200,500,1000")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)")
    ap.add_argument("--report-only", action="store_true", help="print OUT/metrics.json as Markdown tables and exit")
    return ap.parse_args()


def open_log(out):
    """log(s): print s and append it to OUT/train_log.txt."""
    logf = open(os.path.join(out, "train_log.txt"), "a")

    def log(s):
        print(s, flush=True)
        logf.write(s + "\n")
        logf.flush()
    return log


def prepare_data(args, log):
    """Split the corpus, train (or reuse) the BPE, tokenise: (bpe_dir, V,
    train tokens, held-out tokens, unigram entropy in nats/token)."""
    with open(args.corpus, encoding="utf-8") as f:
        train_docs, val_docs = split_corpus(f.read())
    bpe_dir = os.path.join(args.out, "bpe")
    if not os.path.exists(os.path.join(bpe_dir, "merges.txt")):
        t = time.time()
        bpe_train.build("\n\n".join(train_docs), args.vocab_size, bpe_dir)
        log(f"bpe: trained on the training documents in {time.time() - t:.1f}s")
    bpe = BPE(bpe_dir)
    V = len(bpe.vocab)
    train = tokens_of(bpe, train_docs)
    val = tokens_of(bpe, val_docs)
    H1 = unigram_entropy(train, V)
    log(f"data: {len(train_docs)} train docs {len(train)} tokens, {len(val_docs)} held-out docs {len(val)} tokens, "
        f"unigram entropy {H1:.3f} nats/token")
    return bpe_dir, V, train, val, H1


def checkpoint(step, args, model, bpe_dir, val, V, metrics, log):
    """Save OUT/ckpt_STEP, measure it into metrics, rewrite OUT/metrics.json."""
    t = time.time()
    d = os.path.join(args.out, f"ckpt_{step}")
    save_hf(model, bpe_dir, d)
    m = measure(model, val, V, V - 1, args.ctx)
    m["heldout_loss"] = heldout_loss(model, val, args.ctx)
    metrics["checkpoints"][step] = m
    best = lambda k: max((v, l, h) for l, row in enumerate(m[k]) for h, v in enumerate(row))
    log(f"ckpt {step}: heldout {m['heldout_loss']:.4f}  best previous {best('previous')}  "
        f"first {best('first')}  induction {best('induction')}  repeat loss "
        f"{m['induction_loss']['first_repeat']:.2f}->{m['induction_loss']['second_repeat']:.2f} "
        f"({time.time() - t:.1f}s) -> {d}")
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)


def train_step(args, model, opt, train, V, rng, step):
    """One AdamW step at the warmup + cosine learning rate: (loss, lr)."""
    lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
    for g in opt.param_groups:
        g["lr"] = lr
    x, y = batch(train, args.batch, args.ctx, args.repeat_frac, args.random_frac, V, rng, args.pure_frac)
    logits = model(x)
    loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item(), lr


def main():
    args = parse_args()
    if args.report_only:
        with open(os.path.join(args.out, "metrics.json")) as f:
            sys.stdout.write(report(json.load(f)))
        return

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    log = open_log(args.out)
    log(f"train.py {' '.join(sys.argv[1:])}")
    bpe_dir, V, train, val, H1 = prepare_data(args, log)

    c = {"vocab_size": V, "hidden_size": args.dim, "intermediate_size": args.ffn,
         "num_hidden_layers": args.layers, "num_attention_heads": args.heads,
         "num_key_value_heads": args.heads, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
         "max_position_embeddings": args.ctx, "bos_token_id": V - 1, "eos_token_id": V - 1}
    model = Llama(c)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params} parameters, config {json.dumps(c)}")

    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    save_steps = {int(s) for s in args.save_steps.split(",") if s}
    metrics = {"unigram_entropy": H1, "params": n_params, "config": c, "args": vars(args),
               "train_tokens": len(train), "heldout_tokens": len(val), "log": [], "checkpoints": {}}

    t0 = time.time()
    acc = 0.0
    for step in range(args.steps + 1):
        if step in save_steps or step == args.steps:
            checkpoint(step, args, model, bpe_dir, val, V, metrics, log)
        if step == args.steps:
            break
        if step > 0 and step % args.eval_every == 0:
            vl = heldout_loss(model, val, args.ctx)
            log(f"step {step}: heldout {vl:.4f}")
            metrics["log"].append({"step": step, "heldout": vl})
        loss, lr = train_step(args, model, opt, train, V, rng, step)
        acc += loss
        if (step + 1) % args.log_every == 0:
            log(f"step {step + 1}: train {acc / args.log_every:.4f}  lr {lr:.2e}  {time.time() - t0:.0f}s")
            metrics["log"].append({"step": step + 1, "train": acc / args.log_every})
            acc = 0.0
    log(f"done in {time.time() - t0:.0f}s")
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report(metrics))

if __name__ == "__main__":
    main()
