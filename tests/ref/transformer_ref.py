#!/usr/bin/python3
"""PyTorch reference for tests/test_transformer.c and tests/test_adamw.c.

Usage: transformer_ref.py IN OUT [IN OUT ...]
Exit status 77 when numpy or torch cannot be imported (tests then skip).

Each IN file starts with an 8-byte tag (all little-endian):

"GRTFREF1": a transformer case, recomputed independently in float64 with
plain torch ops (a dense block-diagonal causal mask instead of packing,
repeat_interleave for grouped-query attention, F.layer_norm, F.gelu tanh):
  int32[12]  n_layer d_model n_head n_kv_head d_ff max_T norm act pos bias
             final_norm n_views          (norm 0 layer / 1 rms; act 0 gelu-tanh /
                                          1 relu / 2 swiglu; pos 0 learned / 1 rope / 2 none)
  float32[2] norm_eps rope_theta
  int32[2]   N n_seq
  int64      n_params
  n_views x  {int32 len, name bytes, int64 offset, int32 ndim, int64 shape[2]}
  float32    params[n_params], x[N*C]; int32 pos[N], seq_off[n_seq+1];
  float32    dout[N*C]
OUT: float32 out[N*C], dx[N*C], grads[n_params] (slab layout) for the loss
sum(out * dout).

"GRADAMW1": an AdamW case run with torch.optim.AdamW in float32, decayed and
non-decayed elements in two parameter groups:
  int64 n; int32 steps; float32 lr beta1 beta2 eps weight_decay;
  uint8 mask[n]; float32 p0[n]; float32 grads[steps][n]
OUT: float32 params after each step [steps][n].
"""
import math
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the C tests skip on exit code 77
    sys.stderr.write("transformer_ref.py: %s\n" % e)
    sys.exit(77)


class Reader:
    def __init__(self, data):
        self.d, self.o = data, 0

    def take(self, fmt):
        v = struct.unpack_from("<" + fmt, self.d, self.o)
        self.o += struct.calcsize("<" + fmt)
        return v

    def arr(self, dtype, n):
        a = np.frombuffer(self.d, dtype=dtype, count=n, offset=self.o)
        self.o += a.nbytes
        return a.copy()


def norm(h, w, b, kind, eps):
    if kind == 1:
        return h * torch.rsqrt((h * h).mean(-1, keepdim=True) + eps) * w
    return F.layer_norm(h, (h.shape[-1],), w, b, eps)


def rope(x, pos, theta):
    # x (N, H, HS): rotate adjacent pairs (2i, 2i+1) by pos * theta^(-2i/HS)
    N, H, HS = x.shape
    i = torch.arange(HS // 2, dtype=torch.float64)
    ang = pos.to(torch.float64)[:, None] * theta ** (-2.0 * i / HS)
    c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    xp = x.reshape(N, H, HS // 2, 2)
    x0, x1 = xp[..., 0], xp[..., 1]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), -1).reshape(N, H, HS)


def transformer_case(r, out_path):
    (n_layer, C, NH, KVH, Fd, max_T, norm_kind, act, pos_kind, bias, final_norm,
     n_views) = r.take("12i")
    eps, theta = r.take("2f")
    N, n_seq = r.take("2i")
    (n_params,) = r.take("q")
    views = []
    for _ in range(n_views):
        (ln,) = r.take("i")
        name = r.d[r.o:r.o + ln].decode()
        r.o += ln
        (off,) = r.take("q")
        (nd,) = r.take("i")
        shape = r.take("2q")[:nd]
        views.append((name, off, shape))
    params = r.arr(np.float32, n_params)
    x = torch.tensor(r.arr(np.float32, N * C).reshape(N, C), dtype=torch.float64, requires_grad=True)
    pos = torch.tensor(r.arr(np.int32, N).astype(np.int64))
    seq_off = r.arr(np.int32, n_seq + 1)
    dout = torch.tensor(r.arr(np.float32, N * C).reshape(N, C), dtype=torch.float64)

    P = {}
    for name, off, shape in views:
        n = int(np.prod(shape))
        P[name] = torch.tensor(params[off:off + n].reshape(shape), dtype=torch.float64, requires_grad=True)
    g = lambda n: P.get(n)

    HS = C // NH
    seq_id = torch.zeros(N, dtype=torch.int64)
    for s in range(n_seq):
        seq_id[seq_off[s]:seq_off[s + 1]] = s
    idx = torch.arange(N)
    allowed = (seq_id[:, None] == seq_id[None, :]) & (idx[None, :] <= idx[:, None])

    h = x + g("pos_embd")[pos] if pos_kind == 0 else x
    for l in range(n_layer):
        p = lambda n: g("blk.%d.%s" % (l, n))
        a = norm(h, p("attn_norm.weight"), p("attn_norm.bias"), norm_kind, eps)
        q = F.linear(a, p("attn_q.weight"), p("attn_q.bias")).reshape(N, NH, HS)
        k = F.linear(a, p("attn_k.weight"), p("attn_k.bias")).reshape(N, KVH, HS)
        v = F.linear(a, p("attn_v.weight"), p("attn_v.bias")).reshape(N, KVH, HS)
        if pos_kind == 1:
            q, k = rope(q, pos, theta), rope(k, pos, theta)
        k = k.repeat_interleave(NH // KVH, dim=1)
        v = v.repeat_interleave(NH // KVH, dim=1)
        sc = torch.einsum("ihd,jhd->hij", q, k) / math.sqrt(HS)
        sc = sc.masked_fill(~allowed[None], float("-inf"))
        y = torch.einsum("hij,jhd->ihd", torch.softmax(sc, -1), v).reshape(N, C)
        h = h + F.linear(y, p("attn_output.weight"), p("attn_output.bias"))
        b = norm(h, p("ffn_norm.weight"), p("ffn_norm.bias"), norm_kind, eps)
        u = F.linear(b, p("ffn_up.weight"), p("ffn_up.bias"))
        if act == 2:
            gt = F.linear(b, p("ffn_gate.weight"), p("ffn_gate.bias"))
            f = u * F.silu(gt)
        elif act == 1:
            f = F.relu(u)
        else:
            f = F.gelu(u, approximate="tanh")
        h = h + F.linear(f, p("ffn_down.weight"), p("ffn_down.bias"))
    if final_norm:
        h = norm(h, g("output_norm.weight"), g("output_norm.bias"), norm_kind, eps)
    (h * dout).sum().backward()

    grads = np.zeros(n_params, dtype=np.float32)
    for name, off, shape in views:
        gr = P[name].grad
        if gr is not None:
            grads[off:off + gr.numel()] = gr.reshape(-1).numpy().astype(np.float32)
    with open(out_path, "wb") as f:
        f.write(h.detach().numpy().astype(np.float32).tobytes())
        f.write(x.grad.numpy().astype(np.float32).tobytes())
        f.write(grads.tobytes())


def adamw_case(r, out_path):
    (n,) = r.take("q")
    (steps,) = r.take("i")
    lr, b1, b2, eps, wd = r.take("5f")
    mask = r.arr(np.uint8, n).astype(bool)
    p0 = r.arr(np.float32, n)
    grads = r.arr(np.float32, steps * n).reshape(steps, n)
    # hyperparameters as the decimal values the C side rounded to float
    h = lambda v: float(np.format_float_positional(np.float32(v), unique=True))
    pd = torch.tensor(p0[mask], requires_grad=True)
    pn = torch.tensor(p0[~mask], requires_grad=True)
    opt = torch.optim.AdamW([{"params": [pd], "weight_decay": h(wd)},
                             {"params": [pn], "weight_decay": 0.0}],
                            lr=h(lr), betas=(h(b1), h(b2)), eps=h(eps))
    out = []
    for t in range(steps):
        pd.grad = torch.tensor(grads[t][mask])
        pn.grad = torch.tensor(grads[t][~mask])
        opt.step()
        cur = np.empty(n, dtype=np.float32)
        cur[mask] = pd.detach().numpy()
        cur[~mask] = pn.detach().numpy()
        out.append(cur)
    with open(out_path, "wb") as f:
        f.write(np.stack(out).astype(np.float32).tobytes())


def main(argv):
    if len(argv) < 3 or len(argv) % 2 == 0:
        sys.exit("usage: transformer_ref.py IN OUT [IN OUT ...]")
    torch.set_num_threads(1)
    for i in range(1, len(argv), 2):
        with open(argv[i], "rb") as f:
            data = f.read()
        r = Reader(data)
        tag = data[:8]
        r.o = 8
        if tag == b"GRTFREF1":
            transformer_case(r, argv[i + 1])
        elif tag == b"GRADAMW1":
            adamw_case(r, argv[i + 1])
        else:
            sys.exit("%s: unknown tag %r" % (argv[i], tag))


if __name__ == "__main__":
    main(sys.argv)
