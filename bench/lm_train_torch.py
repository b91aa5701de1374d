#!/usr/bin/python3
"""PyTorch (eager, fp32) counterpart of bench_lm_train.c: the same GPT-2 /
Llama model math, the same batches, the same step (forward, full softmax
cross-entropy, backward, clip_grad_norm_ 1.0, AdamW with weight decay 0.1 on
matrices only, betas 0.9/0.95, eps 1e-8).

  GPT-2: token + learned position embeddings, pre-LayerNorm (eps 1e-5),
         fused-in-spirit q/k/v Linear with biases, GELU (tanh), tied head.
  Llama: RMSNorm (eps 1e-5), RoPE theta 10000 on adjacent pairs (2i, 2i+1)
         as genrec/llama2.c, grouped-query attention, SwiGLU, no biases,
         untied head.

  /usr/bin/python3 bench/lm_train_torch.py [--arch gpt2|llama] [--layers 6]
      [--dim 384] [--heads 6] [--kv-heads H] [--ff F] [--ctx 256]
      [--vocab 8192] [--batch 4] [--steps 8] [--skip 2] [--threads 2] [--lr 1e-3]
"""
import argparse
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PERIOD = 1009


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):
    # x (B, H, T, HS): rotate adjacent pairs (2i, 2i+1)
    B, H, T, HS = x.shape
    xr = x.view(B, H, T, HS // 2, 2)
    a, b = xr[..., 0], xr[..., 1]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).view(B, H, T, HS)


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        C, self.H, self.KV, self.llama = a.dim, a.heads, a.kv_heads, a.arch == "llama"
        self.HS = C // self.H
        bias = not self.llama
        Norm = (lambda d: RMSNorm(d)) if self.llama else (lambda d: nn.LayerNorm(d, eps=1e-5))
        self.ln1, self.ln2 = Norm(C), Norm(C)
        self.q = nn.Linear(C, C, bias=bias)
        self.k = nn.Linear(C, self.KV * self.HS, bias=bias)
        self.v = nn.Linear(C, self.KV * self.HS, bias=bias)
        self.o = nn.Linear(C, C, bias=bias)
        self.up = nn.Linear(C, a.ff, bias=bias)
        if self.llama:
            self.gate = nn.Linear(C, a.ff, bias=False)
        self.down = nn.Linear(a.ff, C, bias=bias)

    def forward(self, x, mask, cos, sin):
        B, T, C = x.shape
        h = self.ln1(x)
        q = self.q(h).view(B, T, self.H, self.HS).transpose(1, 2)
        k = self.k(h).view(B, T, self.KV, self.HS).transpose(1, 2)
        v = self.v(h).view(B, T, self.KV, self.HS).transpose(1, 2)
        if self.llama:
            q, k = rope(q, cos, sin), rope(k, cos, sin)
        if self.KV != self.H:
            rep = self.H // self.KV
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.HS))
        att = torch.softmax(att.masked_fill(mask, float("-inf")), -1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.o(y)
        h = self.ln2(x)
        if self.llama:
            f = F.silu(self.gate(h)) * self.up(h)
        else:
            f = F.gelu(self.up(h), approximate="tanh")
        return x + self.down(f)


class LM(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.llama = a.arch == "llama"
        self.tok = nn.Embedding(a.vocab, a.dim)
        if not self.llama:
            self.pos = nn.Embedding(a.ctx, a.dim)
        self.blocks = nn.ModuleList([Block(a) for _ in range(a.layers)])
        self.lnf = RMSNorm(a.dim) if self.llama else nn.LayerNorm(a.dim, eps=1e-5)
        if self.llama:
            self.head = nn.Linear(a.dim, a.vocab, bias=False)
        for name, p in self.named_parameters():  # genrec's init: N(0, 0.02) matrices, norms 1, biases 0
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        HS = a.dim // a.heads
        inv = 1.0 / (10000.0 ** (torch.arange(0, HS, 2, dtype=torch.float64) / HS))
        ang = torch.arange(a.ctx, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)
        self.register_buffer("mask", torch.triu(torch.ones(a.ctx, a.ctx, dtype=torch.bool), 1), persistent=False)

    def forward(self, idx, tgt):
        B, T = idx.shape
        x = self.tok(idx)
        if not self.llama:
            x = x + self.pos(torch.arange(T))
        for blk in self.blocks:
            x = blk(x, self.mask[:T, :T], self.cos[:T], self.sin[:T])
        x = self.lnf(x)
        logits = self.head(x) if self.llama else x @ self.tok.weight.t()
        return F.cross_entropy(logits.view(B * T, -1), tgt.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="gpt2", choices=["gpt2", "llama"])
    for k, v in [("layers", 6), ("dim", 384), ("heads", 6), ("kv-heads", 0), ("ff", 0), ("ctx", 256),
                 ("vocab", 8192), ("batch", 4), ("steps", 8), ("skip", 2), ("threads", 2)]:
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--lr", type=float, default=1e-3)
    a = ap.parse_args()
    a.kv_heads = a.kv_heads or a.heads
    a.ff = a.ff or (4 * a.dim if a.arch == "gpt2" else 1024)
    a.steps = max(a.steps, a.skip + 1)
    torch.set_num_threads(a.threads)
    torch.manual_seed(1337)
    model = LM(a)
    n = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() == 2]
    nodecay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    s, seq = 12345, []
    for _ in range(PERIOD):
        s = (s * 1103515245 + 12345) & 0x7FFFFFFF
        seq.append((s >> 8) % a.vocab)
    seq = torch.tensor(seq, dtype=torch.long)
    print(f"torch {a.arch}: layers {a.layers} dim {a.dim} heads {a.heads}/{a.kv_heads} ff {a.ff} ctx {a.ctx} "
          f"vocab {a.vocab}: {n / 1e6:.2f}M params; batch {a.batch} x {a.ctx}, {torch.get_num_threads()} threads "
          f"(torch {torch.__version__})")
    B, T = a.batch, a.ctx
    ar = torch.arange(T + 1)
    dts, first, last = [], None, None
    for step in range(a.steps):
        starts = (torch.arange(B) + step * B) * T
        win = seq[(starts[:, None] + ar[None, :]) % PERIOD]
        idx, tgt = win[:, :-1].contiguous(), win[:, 1:].contiguous()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = model(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        dts.append(dt)
        lv = loss.item()
        first = lv if first is None else first
        last = lv
        print(f"step {step} loss {lv:.4f} time {dt:.3f} s", flush=True)
    med = sorted(dts[a.skip:])[(a.steps - a.skip) // 2]
    tps = B * T / med
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"median step {med:.3f} s -> {tps:.0f} tokens/s; peak RSS {peak:.1f} MB")
    print(f"RESULT engine=torch arch={a.arch} params={n} tok_s={tps:.1f} loss0={first:.4f} loss_last={last:.4f} "
          f"peak_mb={peak:.1f}")


if __name__ == "__main__":
    main()
