#!/usr/bin/python3
"""PyTorch reference of genrec's SASRec with full cross-entropy ("SASRec+").

Reads a split exported by gr_split_export() (meta.txt, train.txt, valid.txt,
test.txt; see include/genrec/split.h), trains the same model as
src/models/sasrec.c and prints one JSON object with per-epoch seconds and the
final valid/test HR@10 / NDCG@10 (of the epoch chosen by early stopping).

Same as the C model:
  * item embeddings (n_items, C), normal(0, 0.02), scaled by sqrt(C) at the
    input and tied to the output logits (full softmax over all items);
  * learned positions (max_len, C); the last input item of every sequence
    gets position max_len - 1;
  * dropout on (embedding + position), and on the output of every residual
    branch (attention projection, FFN) before it is added;
  * n_layers pre-LN blocks: x += Drop(Wo Attn(LN1(x))), x += Drop(W2 ReLU(W1 LN2(x)))
    with one fused qkv projection, biases everywhere, causal attention with
    scale 1/sqrt(HS), FFN width C; then a final LayerNorm (eps 1e-5);
  * every matrix (linear weights, positions, items) normal(0, 0.02),
    LayerNorm weights 1, biases 0 (the engine's gr_tfm_init);
  * training sample of user u = the last max_len + 1 items of the training
    sequence: inputs s[0..L-2], targets s[1..L-1], CE at every position,
    averaged over all target positions of the batch;
  * every epoch the users with >= 2 training items are shuffled and cut into
    batches of `batch` sequences;
  * AdamW(lr, betas (0.9, 0.98), eps 1e-8, weight decay wd on every matrix:
    linear weights, positions, items); early stopping on validation NDCG@10 evaluated every
    epoch with `patience` evaluations without improvement; the best
    parameters are restored before the test evaluation;
  * scoring: the last max_len items of the query history, train mode off,
    last hidden state . item embeddings; ranking with the genrec rules:
    history items removed except the target, rank = #(score > target) +
    #(score == target and id < target).

Unlike the C model, batches are padded on the left to max_len (as the
original SASRec) and, by default, logits are computed for every position of
the padded batch and the padding is ignored by the loss (the common SASRec-CE
code); --gather computes logits only at the real positions.

Usage: /usr/bin/python3 bench/sasrec_torch.py SPLIT_DIR [--dim 64] [--epochs 200]
       [--patience 10] [--threads 2] [--time-epochs N] ...
       /usr/bin/python3 bench/sasrec_torch.py --check DUMP   (DUMP from bench/sasrec_equiv.c:
       same parameters and batch -> same loss and gradients as genrec)
"""
import argparse
import copy
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_split(d):
    with open(f"{d}/meta.txt") as f:
        n_users, n_items = map(int, f.read().split()[:2])
    train = [[] for _ in range(n_users)]
    with open(f"{d}/train.txt") as f:
        for line in f:
            a = line.split()
            if a:
                train[int(a[0])] = [int(x) for x in a[1:]]

    def queries(name):
        out = []
        with open(f"{d}/{name}") as f:
            for line in f:
                a = line.split()
                if "|" in a:
                    raise SystemExit(f"{name}: candidate lists (c20) are not supported")
                if len(a) >= 2:
                    out.append((int(a[0]), int(a[1]), [int(x) for x in a[2:]]))
        return out

    return n_users, n_items, train, queries("valid.txt"), queries("test.txt")


def auto_max_len(train):
    """Same rule as sasrec.c: 95th percentile (nearest rank) of the training
    sequence lengths minus 1, rounded up to a multiple of 8, in [8, 200]."""
    lens = sorted(len(s) - 1 for s in train if len(s) >= 2)
    if not lens:
        return 8
    p = lens[min(len(lens) - 1, (95 * len(lens) + 99) // 100 - 1)]
    v = (p + 7) // 8 * 8
    return max(8, min(200, v))


class Block(nn.Module):
    def __init__(self, C, H, dropout, n_layers):
        super().__init__()
        self.ln1 = nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.ln2 = nn.LayerNorm(C)
        self.fc1 = nn.Linear(C, C)
        self.fc2 = nn.Linear(C, C)
        self.H = H
        self.drop = nn.Dropout(dropout)
        for lin in (self.qkv, self.proj, self.fc1, self.fc2):
            nn.init.normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        hs = C // self.H
        q = q.view(B, T, self.H, hs).transpose(1, 2)
        k = k.view(B, T, self.H, hs).transpose(1, 2)
        v = v.view(B, T, self.H, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.drop(self.proj(y))
        x = x + self.drop(self.fc2(F.relu(self.fc1(self.ln2(x)))))
        return x


class SASRec(nn.Module):
    def __init__(self, n_items, C, L, H, max_len, dropout):
        super().__init__()
        self.item = nn.Embedding(n_items, C)
        self.pos = nn.Embedding(max_len, C)
        nn.init.normal_(self.item.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)
        self.blocks = nn.ModuleList([Block(C, H, dropout, L) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)
        self.drop = nn.Dropout(dropout)
        self.scale = math.sqrt(C)
        self.max_len = max_len

    def hidden(self, seq, valid):
        """seq (B, T) left-padded item ids (padding = 0), valid (B, T) bool.
        Returns (B, T, C) hidden states; padded rows are meaningless."""
        B, T = seq.shape
        pos = torch.arange(self.max_len - T, self.max_len)
        x = self.item(seq) * self.scale + self.pos(pos)[None]
        x = self.drop(x)
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        # a real query sees earlier real keys; a padded query only itself
        mask = causal[None] & valid[:, None, :]
        mask = mask | torch.eye(T, dtype=torch.bool)[None]
        mask = mask[:, None]  # (B, 1, T, T)
        for b in self.blocks:
            x = b(x, mask)
        return self.ln_f(x)


def make_batch(seqs, T):
    B = len(seqs)
    seq = np.zeros((B, T), dtype=np.int64)
    valid = np.zeros((B, T), dtype=bool)
    for i, s in enumerate(seqs):
        if s:
            seq[i, T - len(s):] = s
            valid[i, T - len(s):] = True
    return torch.from_numpy(seq), torch.from_numpy(valid)


def train_epoch(model, opt, train, users, rng, args):
    model.train()
    order = users[rng.permutation(len(users))]
    T = model.max_len
    total, n_tok = 0.0, 0
    for b in range(0, len(order), args.batch):
        inp, tgt = [], []
        for u in order[b:b + args.batch]:
            s = train[u][-(T + 1):]
            inp.append(s[:-1])
            tgt.append(s[1:])
        seq, valid = make_batch(inp, T)
        target, _ = make_batch(tgt, T)
        target[~valid] = -100
        h = model.hidden(seq, valid)
        if args.gather:
            logits = h[valid] @ model.item.weight.T
            loss = F.cross_entropy(logits, target[valid])
        else:
            logits = h @ model.item.weight.T
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), target.view(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        k = int(valid.sum())
        total += float(loss) * k
        n_tok += k
    return total / max(n_tok, 1)


@torch.no_grad()
def evaluate(model, queries, n_items, batch=256):
    model.eval()
    T = model.max_len
    ks = (1, 5, 10, 20, 50)
    hr = {k: 0.0 for k in ks}
    ndcg = {k: 0.0 for k in ks}
    ids = torch.arange(n_items)
    for b in range(0, len(queries), batch):
        qs = queries[b:b + batch]
        seq, valid = make_batch([q[2][-T:] for q in qs], T)
        h = model.hidden(seq, valid)[:, -1]
        scores = h @ model.item.weight.T
        for i, (_, t, hist) in enumerate(qs):
            if not hist:
                s = torch.zeros(n_items)
            else:
                s = scores[i].clone()
            st = s[t].item()
            if hist:
                hi = torch.tensor(hist)
                s[hi] = float("-inf")
            s[t] = st
            rank = int((s > st).sum()) + int(((s == st) & (ids < t)).sum())
            for k in ks:
                if rank < k:
                    hr[k] += 1
                    ndcg[k] += 1.0 / math.log2(rank + 2)
    n = max(len(queries), 1)
    out = {f"HR@{k}": hr[k] / n for k in ks}
    out.update({f"NDCG@{k}": ndcg[k] / n for k in ks})
    return out


def check_dump(path):
    """Compare with a dump of bench/sasrec_equiv.c: load its parameters into
    the PyTorch model (float64), recompute loss and gradients, exit 1 on a
    mismatch."""
    torch.set_default_dtype(torch.float64)
    d, P, G = {}, {}, {}
    for line in open(path):
        a = line.split()
        if a[0] in ("P", "G"):
            (P if a[0] == "P" else G)[a[1]] = torch.tensor(np.array(a[2:], dtype=np.float64))
        else:
            d[a[0]] = a[1:]
    C, V, T, L, H = (int(x) for x in d["dims"])
    m = SASRec(V, C, L, H, T, 0.0)
    with torch.no_grad():
        m.item.weight.copy_(torch.tensor(np.array(d["E"], dtype=np.float64)).view(V, C))
        m.pos.weight.copy_(P["pos_embd"].view(T, C))
        for l, b in enumerate(m.blocks):
            g = lambda n: P[f"blk.{l}.{n}"]
            b.ln1.weight.copy_(g("attn_norm.weight"))
            b.ln1.bias.copy_(g("attn_norm.bias"))
            b.qkv.weight.copy_(torch.cat([g("attn_q.weight"), g("attn_k.weight"), g("attn_v.weight")]).view(3 * C, C))
            b.qkv.bias.copy_(torch.cat([g("attn_q.bias"), g("attn_k.bias"), g("attn_v.bias")]))
            b.proj.weight.copy_(g("attn_output.weight").view(C, C))
            b.proj.bias.copy_(g("attn_output.bias"))
            b.ln2.weight.copy_(g("ffn_norm.weight"))
            b.ln2.bias.copy_(g("ffn_norm.bias"))
            b.fc1.weight.copy_(g("ffn_up.weight").view(C, C))
            b.fc1.bias.copy_(g("ffn_up.bias"))
            b.fc2.weight.copy_(g("ffn_down.weight").view(C, C))
            b.fc2.bias.copy_(g("ffn_down.bias"))
        m.ln_f.weight.copy_(P["output_norm.weight"])
        m.ln_f.bias.copy_(P["output_norm.bias"])
    lens = [int(x) for x in d["seqs"]]
    tok, tgt = [int(x) for x in d["tok"]], [int(x) for x in d["tgt"]]
    seqs, tgts, o = [], [], 0
    for n in lens:
        seqs.append(tok[o:o + n])
        tgts.append(tgt[o:o + n])
        o += n
    seq, valid = make_batch(seqs, T)
    target, _ = make_batch(tgts, T)
    h = m.hidden(seq, valid)
    loss = F.cross_entropy(h[valid] @ m.item.weight.T, target[valid])
    loss.backward()
    pairs = [("loss", torch.tensor([float(d["loss"][0])]), loss.detach().view(1)),
             ("items", torch.tensor(np.array(d["dE"], dtype=np.float64)).view(V, C), m.item.weight.grad),
             ("pos_embd", G["pos_embd"].view(T, C), m.pos.weight.grad),
             ("output_norm.weight", G["output_norm.weight"], m.ln_f.weight.grad)]
    for l, b in enumerate(m.blocks):
        g = lambda n: G[f"blk.{l}.{n}"]
        pairs += [(f"blk.{l}.attn_qkv.weight", torch.cat([g("attn_q.weight"), g("attn_k.weight"),
                                                         g("attn_v.weight")]).view(3 * C, C), b.qkv.weight.grad),
                  (f"blk.{l}.attn_qkv.bias", torch.cat([g("attn_q.bias"), g("attn_k.bias"), g("attn_v.bias")]),
                   b.qkv.bias.grad),
                  (f"blk.{l}.attn_output.weight", g("attn_output.weight").view(C, C), b.proj.weight.grad),
                  (f"blk.{l}.attn_norm.weight", g("attn_norm.weight"), b.ln1.weight.grad),
                  (f"blk.{l}.ffn_up.weight", g("ffn_up.weight").view(C, C), b.fc1.weight.grad),
                  (f"blk.{l}.ffn_down.bias", g("ffn_down.bias"), b.fc2.bias.grad)]
    worst = 0.0
    for name, c, t in pairs:
        err = float((c - t).abs().max() / max(1.0, float(t.abs().max())))
        worst = max(worst, err)
        print(f"{name:28s} max rel diff {err:.2e}")
    ok = worst < 1e-5
    print(f"genrec vs PyTorch: loss {float(d['loss'][0]):.7f} vs {loss.item():.7f}; "
          f"{'OK' if ok else 'MISMATCH'} (worst {worst:.2e})")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("split", nargs="?")
    ap.add_argument("--check", metavar="DUMP", help="compare with a dump of bench/sasrec_equiv.c and exit")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--max-len", type=int, default=200, help="0 = the automatic rule of sasrec.c")
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=0.0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gather", action="store_true", help="logits only at real (non-padded) positions")
    ap.add_argument("--time-epochs", type=int, default=0,
                    help="only time this many training epochs (no evaluation)")
    args = ap.parse_args()
    if args.check:
        sys.exit(check_dump(args.check))
    if not args.split:
        ap.error("SPLIT_DIR is required")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    n_users, n_items, train, valid, test = read_split(args.split)
    max_len = args.max_len if args.max_len > 0 else auto_max_len(train)
    users = np.array([u for u in range(n_users) if len(train[u]) >= 2], dtype=np.int64)
    model = SASRec(n_items, args.dim, args.layers, args.heads, max_len, args.dropout)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() == 2 else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-8)
    epoch_s, epoch_cpu, losses, valid_curve = [], [], [], []
    best, best_epoch, best_state, bad = -1.0, 0, None, 0
    n_epochs = args.time_epochs if args.time_epochs > 0 else args.epochs
    for ep in range(1, n_epochs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = train_epoch(model, opt, train, users, rng, args)
        epoch_s.append(time.perf_counter() - t0)
        epoch_cpu.append(time.process_time() - c0)
        losses.append(loss)
        if args.time_epochs > 0:
            print(f"epoch {ep} loss {loss:.4f} {epoch_s[-1]:.2f}s (cpu {epoch_cpu[-1]:.2f}s)", file=sys.stderr)
            continue
        v = evaluate(model, valid, n_items)["NDCG@10"]
        valid_curve.append(v)
        print(f"epoch {ep} loss {loss:.4f} valid NDCG@10 {v:.4f} {epoch_s[-1]:.2f}s (cpu {epoch_cpu[-1]:.2f}s)",
              file=sys.stderr)
        if v > best:
            best, best_epoch, bad = v, ep, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad >= args.patience:
                break
    res = {"impl": "pytorch", "torch": torch.__version__, "threads": args.threads,
           "gather": args.gather, "max_len": max_len, "n_users": n_users, "n_items": n_items,
           "epochs_run": len(epoch_s), "epoch_seconds": float(np.median(epoch_s)),
           "epoch_seconds_all": [round(x, 4) for x in epoch_s],
           "epoch_cpu_seconds": float(np.median(epoch_cpu)), "loss": [round(x, 5) for x in losses]}
    if args.time_epochs == 0:
        model.load_state_dict(best_state)
        vm = evaluate(model, valid, n_items)
        tm = evaluate(model, test, n_items)
        res.update({"best_epoch": best_epoch, "valid_curve": [round(x, 5) for x in valid_curve],
                    "valid": {"HR@10": vm["HR@10"], "NDCG@10": vm["NDCG@10"]},
                    "test": tm})
    print(json.dumps(res))


if __name__ == "__main__":
    main()
