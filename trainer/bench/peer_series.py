#!/usr/bin/env python3
"""PyTorch peer of Keel's default series run, for `keel bench speed` (CPU).

The same work as `keel train --data basicmotions` does per generator step, written the way a PyTorch
user would write it:
  G: [z (32), one-hot class] -> 3 x [Linear 256 + ReLU] -> Linear C*T
  D: C*T -> 3 x [Linear 256 + LeakyReLU 0.2] = h;  D(x, y) = Linear(h) + <E y, h>  (projection)
  D step: non-saturating loss + R1 (gamma 10) on the real batch through
          torch.autograd.grad(create_graph=True); G step: non-saturating loss through D;
  Adam lr_g 5e-4, lr_d 1e-3, betas (0.5, 0.99); batch 64; an EMA of G (0.999) after every step.

Modes:
  --data DIR           time --steps generator steps on DIR/rows.f32 and DIR/labels.u32 (what Keel
                       trains on); prints one JSON line with g_steps_per_s.
  --check DIR          load Keel's initial weights and a fixed batch from DIR/manifest.json (written
                       by `keel bench speed`), print parameter counts and both losses as JSON, so the
                       bench can check that this peer is Keel's model and loss before timing it.
                       Also checks the 2-D peer (`peer_gan.mlp`) the same way.
"""
import argparse
import copy
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_gan import mlp  # the 2-D peer's networks, checked by --check as they are timed


class Generator(nn.Module):
    def __init__(self, latent, classes, out_dim, width=256, depth=3):
        super().__init__()
        self.net = mlp(latent + classes, out_dim, width, depth)

    def forward(self, z, y):
        return self.net(torch.cat([z, y], 1))


class Discriminator(nn.Module):
    def __init__(self, in_dim, classes, width=256, depth=3, slope=0.2):
        super().__init__()
        layers, d = [], in_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.LeakyReLU(slope)]
            d = width
        self.trunk = nn.Sequential(*layers)
        self.out = nn.Linear(width, 1)
        self.embed = nn.Parameter(torch.zeros(classes, width))

    def forward(self, x, y):
        h = self.trunk(x)
        return self.out(h) + (h * (y @ self.embed)).sum(1, keepdim=True)


def d_loss_r1(D, x, y, fake, gamma):
    x = x.requires_grad_(True)
    r = D(x, y)
    (g,) = torch.autograd.grad(r.sum(), x, create_graph=True)
    f = D(fake, y)
    loss = (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
            + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)))
    return loss + gamma / 2 * g.pow(2).sum(1).mean()


def g_loss(D, fake, y):
    out = D(fake, y)
    return F.binary_cross_entropy_with_logits(out, torch.ones_like(out))


def params(m):
    return sum(p.numel() for p in m.parameters())


def load_linears(linears, tensors):
    """Keel's Linear keeps weight [in, out]; torch's is [out, in]."""
    with torch.no_grad():
        for lin, (w, b) in zip(linears, tensors):
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))


def check(dirname):
    with open(os.path.join(dirname, "manifest.json")) as f:
        m = json.load(f)
    raw = np.fromfile(os.path.join(dirname, "tensors.f32"), dtype="<f4")
    t = {k: raw[o:o + int(np.prod(s))].reshape(s) for k, (o, s) in m["tensors"].items()}

    def pairs(prefix, n):
        return [(t[f"{prefix}{i}.w"], t[f"{prefix}{i}.b"]) for i in range(n)]

    case = m["case"]
    torch.set_num_threads(1)
    if case == "series":
        G = Generator(m["latent"], m["classes"], m["dim"], m["width"], m["depth"])
        D = Discriminator(m["dim"], m["classes"], m["width"], m["depth"], m["slope"])
        load_linears([l for l in G.net if isinstance(l, nn.Linear)], pairs("g", m["depth"] + 1))
        load_linears([l for l in D.trunk if isinstance(l, nn.Linear)] + [D.out], pairs("d", m["depth"] + 1))
        with torch.no_grad():
            D.embed.copy_(torch.from_numpy(t["embed"]))
        x, y = torch.from_numpy(t["x"]), torch.from_numpy(t["y"])
        with torch.no_grad():
            fake = G(torch.from_numpy(t["z_d"]), y)
        loss_d = d_loss_r1(D, x, y, fake, m["r1"])
        loss_g = g_loss(D, G(torch.from_numpy(t["z_g"]), y), y)
    else:
        G = mlp(m["latent"], m["dim"], m["width"], m["depth"])
        D = mlp(m["dim"], 1, m["width"], m["depth"])
        load_linears([l for l in G if isinstance(l, nn.Linear)], pairs("g", m["depth"] + 1))
        load_linears([l for l in D if isinstance(l, nn.Linear)], pairs("d", m["depth"] + 1))
        x = torch.from_numpy(t["x"])
        with torch.no_grad():
            fake = G(torch.from_numpy(t["z_d"]))
        out = D(G(torch.from_numpy(t["z_g"])))
        if case == "wgangp":  # as peer_gan.py computes it
            eps = torch.from_numpy(t["eps"])
            xh = (eps * x + (1 - eps) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(D(xh).sum(), xh, create_graph=True)
            gp = ((grad.norm(2, dim=1) - 1) ** 2).mean()
            loss_d = D(fake).mean() - D(x).mean() + m["gp"] * gp
            loss_g = -out.mean()
        else:
            lr_, lf_ = D(x), D(fake)
            loss_d = (F.binary_cross_entropy_with_logits(lr_, torch.ones_like(lr_))
                      + F.binary_cross_entropy_with_logits(lf_, torch.zeros_like(lf_)))
            loss_g = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
    print(json.dumps({"params_g": params(G), "params_d": params(D),
                      "loss_d": float(loss_d), "loss_g": float(loss_g)}))


def time_series(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    with open(os.path.join(args.data, "manifest.json")) as f:
        m = json.load(f)
    rows = torch.from_numpy(np.fromfile(os.path.join(args.data, "rows.f32"), dtype="<f4").reshape(-1, m["dim"]))
    labels = np.fromfile(os.path.join(args.data, "labels.u32"), dtype="<u4").astype(np.int64)
    K, B, n = m["classes"], args.batch, len(labels)
    onehot = torch.eye(K)
    G = Generator(args.latent, K, m["dim"])
    D = Discriminator(m["dim"], K)
    ema = copy.deepcopy(G).requires_grad_(False)
    optG = torch.optim.Adam(G.parameters(), lr=5e-4, betas=(0.5, 0.99))
    optD = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.99))

    def step(i):
        idx = torch.from_numpy(rng.integers(0, n, B))
        x, y = rows[idx], onehot[torch.from_numpy(labels[idx.numpy()])]
        with torch.no_grad():
            fake = G(torch.randn(B, args.latent), y)
        lossD = d_loss_r1(D, x.clone(), y, fake, 10.0)
        optD.zero_grad(set_to_none=True)
        lossD.backward()
        optD.step()
        yg = onehot[torch.from_numpy(labels[rng.integers(0, n, B)])]
        for p in D.parameters():
            p.requires_grad_(False)
        lossG = g_loss(D, G(torch.randn(B, args.latent), yg), yg)
        optG.zero_grad(set_to_none=True)
        lossG.backward()
        optG.step()
        for p in D.parameters():
            p.requires_grad_(True)
        with torch.no_grad():
            for e, p in zip(ema.parameters(), G.parameters()):
                if i < args.ema_start:
                    e.copy_(p)
                else:
                    e.mul_(0.999).add_(p, alpha=0.001)

    for i in range(20):  # warm-up, as Keel's side does
        step(i)
    t0 = time.perf_counter()
    for i in range(20, 20 + args.steps):
        step(i)
    dt = time.perf_counter() - t0
    print(json.dumps({"g_steps_per_s": args.steps / dt, "torch": torch.__version__}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", metavar="DIR")
    ap.add_argument("--data", metavar="DIR")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--latent", type=int, default=32)
    ap.add_argument("--ema-start", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.check:
        check(args.check)
    elif args.data:
        time_series(args)
    else:
        ap.error("give --check DIR or --data DIR")


if __name__ == "__main__":
    main()
