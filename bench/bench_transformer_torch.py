#!/usr/bin/python3
"""PyTorch counterpart of bench_transformer.c: the same SASRec-sized pre-LN
transformer (d=64, 2 blocks, heads, d_ff=64, ReLU, LayerNorm, learned
positions, dropout 0.2) on a padded (batch, T, d) tensor, one training step
(forward, backward, AdamW) and an inference forward.

  /usr/bin/python3 bench/bench_transformer_torch.py [reps] [T] [batch] [threads] [heads]
"""
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, dff, p):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-8), nn.LayerNorm(d, eps=1e-8)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.up, self.down = nn.Linear(d, dff), nn.Linear(dff, d)
        self.h, self.p = heads, p

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        sh = lambda t: t.view(B, T, self.h, C // self.h).transpose(1, 2)
        q, k, v = sh(q), sh(k), sh(v)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.h)
        att = torch.softmax(att.masked_fill(mask, float("-inf")), -1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + F.dropout(self.proj(y), self.p, self.training)
        return x + F.dropout(self.down(F.relu(self.up(self.ln2(x)))), self.p, self.training)


class Model(nn.Module):
    def __init__(self, T, d=64, heads=1, dff=64, layers=2, p=0.2):
        super().__init__()
        self.pos = nn.Embedding(T, d)
        self.blocks = nn.ModuleList([Block(d, heads, dff, p) for _ in range(layers)])
        self.lnf, self.p = nn.LayerNorm(d, eps=1e-8), p
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

    def forward(self, x):
        h = F.dropout(x + self.pos.weight[None, : x.shape[1]], self.p, self.training)
        for b in self.blocks:
            h = b(h, self.mask)
        return self.lnf(h)


def main():
    a = sys.argv[1:]
    reps, T, B = (int(a[0]) if len(a) > 0 else 5), (int(a[1]) if len(a) > 1 else 200), (int(a[2]) if len(a) > 2 else 128)
    threads, heads = (int(a[3]) if len(a) > 3 else 2), (int(a[4]) if len(a) > 4 else 1)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = Model(T, heads=heads)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.0)
    x = torch.randn(B, T, 64) * 0.1
    tf = tb = to = ti = 0.0
    for rep in range(reps + 1):
        t0 = time.perf_counter()
        m.train()
        opt.zero_grad()
        out = m(x)
        t1 = time.perf_counter()
        (0.5 * (out * out).sum()).backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        m.eval()
        with torch.no_grad():
            m(x)
        t4 = time.perf_counter()
        if rep:
            tf, tb, to, ti = tf + t1 - t0, tb + t2 - t1, to + t3 - t2, ti + t4 - t3
    print("torch %s threads %d, %d seqs x T=%d (N=%d), d=64, heads %d: train step %.1f ms "
          "(fwd %.1f, bwd %.1f, adamw %.2f), inference fwd %.1f ms"
          % (torch.__version__, threads, B, T, B * T, heads, 1e3 * (tf + tb + to) / reps,
             1e3 * tf / reps, 1e3 * tb / reps, 1e3 * to / reps, 1e3 * ti / reps))


if __name__ == "__main__":
    main()
