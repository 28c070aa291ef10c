#!/usr/bin/env python3
# Copied unchanged from the team's peer baselines (shared/peers/peer_gan.py) so `keel bench speed` can run it.
"""Peer baseline: standard WGAN-GP and non-saturating GAN (PyTorch, CPU) on the
2-D 'ring of 8 Gaussians' and '5x5 grid of 25 Gaussians' mode-collapse benchmarks,
scored with the VEEGAN / PacGAN protocol.

Setup (fixed unless overridden by flags):
  ring : 8 modes on a circle of radius 1 (angles 2*pi*k/8), std 0.01 (PacGAN)
  grid : 25 modes at {-4,-2,0,2,4}^2, std 0.05
  G    : z (dim --zdim, N(0,I)) -> 3 x [Linear 128 + ReLU] -> Linear 2
  D    : 2 -> 3 x [Linear 128 + ReLU] -> Linear 1 (no normalisation layers)
  batch 256, Adam lr 1e-4, betas (0.5, 0.9) for both nets,
  WGAN-GP : n_critic 5, lambda 10, GP on random interpolates (Gulrajani et al. 2017)
  NS-GAN  : 1 D step per G step, BCE-with-logits, G maximises log D(G(z))
  real data: fresh samples every batch (mode uniform, then Gaussian noise).

Metric (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018):
  draw N_EVAL = 2500 generator samples;
  each sample is assigned to its nearest mode centre;
  'high quality' (HQ) = Euclidean distance to that centre <= 3 * std;
  modes        = #modes with >= 1 HQ sample assigned        (the paper metric)
  modes_strict = #modes with >= 25 HQ samples assigned, i.e. >= 1% of the 2500
                 draws (ours, to discount modes hit by a handful of stray samples)
  hq_pct       = 100 * #HQ / 2500
  kl           = KL(p || U) in nats, p = histogram of HQ samples over the K modes
                 normalised to sum 1, U = uniform 1/K; sum_k p_k log(K p_k), 0log0=0
                 (PacGAN's 'reverse KL'); 0 = perfectly balanced, log K = 1 mode.
"""
import argparse
import json
import math
import os
import sys
import time

# With 2 threads and OpenMP's default spin-waiting, torch ran ~20x slower on a loaded 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

N_EVAL = 2500


def mode_centres(name):
    if name == "ring":
        k = np.arange(8)
        c = np.stack([np.cos(2 * np.pi * k / 8), np.sin(2 * np.pi * k / 8)], 1)
        return c.astype(np.float32), 0.01
    if name == "grid":
        v = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
        c = np.array([[x, y] for x in v for y in v])
        return c.astype(np.float32), 0.05
    raise ValueError(name)


def mlp(din, dout, hidden=128, layers=3):
    mods, d = [], din
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    mods.append(nn.Linear(d, dout))
    return nn.Sequential(*mods)


def score(samples, centres, std):
    """samples: (N,2) numpy. Returns dict with the VEEGAN/PacGAN numbers."""
    d = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=2)  # (N,K)
    nearest = d.argmin(1)
    dist = d[np.arange(len(samples)), nearest]
    hq = dist <= 3.0 * std
    K = len(centres)
    counts = np.bincount(nearest[hq], minlength=K)
    n_hq = int(hq.sum())
    if n_hq > 0:
        p = counts / n_hq
        nz = p > 0
        kl = float(np.sum(p[nz] * np.log(K * p[nz])))
    else:
        kl = float("nan")
    return {
        "modes": int((counts >= 1).sum()),
        "modes_strict": int((counts >= 0.01 * len(samples)).sum()),
        "hq_pct": 100.0 * n_hq / len(samples),
        "kl": kl,
        "counts": counts.tolist(),
    }


def run(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    centres_np, std = mode_centres(args.dataset)
    centres = torch.from_numpy(centres_np)
    K = len(centres_np)
    B = args.batch

    def real_batch():
        idx = torch.from_numpy(rng.integers(0, K, B))
        return centres[idx] + std * torch.randn(B, 2)

    G = mlp(args.zdim, 2, args.hidden, args.layers)
    D = mlp(2, 1, args.hidden, args.layers)
    optG = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.5, 0.9))
    optD = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.9))

    # fixed evaluation noise so successive checkpoints are comparable
    g_eval = torch.Generator().manual_seed(10_000 + args.seed)
    z_eval = torch.randn(N_EVAL, args.zdim, generator=g_eval)

    def evaluate():
        with torch.no_grad():
            s = G(z_eval).numpy()
        return score(s, centres_np, std), s

    n_critic = args.n_critic if args.method == "wgangp" else 1
    history = []
    train_time = 0.0
    cpu_time = 0.0
    load_start = os.getloadavg()[0]
    t_start = time.perf_counter()
    for step in range(1, args.steps + 1):
        t0 = time.perf_counter()
        c0 = time.process_time()
        # ---- discriminator / critic ----
        for _ in range(n_critic):
            x = real_batch()
            with torch.no_grad():
                xf = G(torch.randn(B, args.zdim))
            if args.method == "wgangp":
                eps = torch.rand(B, 1)
                xh = (eps * x + (1 - eps) * xf).requires_grad_(True)
                dh = D(xh)
                grad, = torch.autograd.grad(dh.sum(), xh, create_graph=True)
                gp = ((grad.norm(2, dim=1) - 1) ** 2).mean()
                lossD = D(xf).mean() - D(x).mean() + args.gp_lambda * gp
            else:
                lr_, lf_ = D(x), D(xf)
                lossD = (F.binary_cross_entropy_with_logits(lr_, torch.ones_like(lr_))
                         + F.binary_cross_entropy_with_logits(lf_, torch.zeros_like(lf_)))
            optD.zero_grad(set_to_none=True)
            lossD.backward()
            optD.step()
        # ---- generator ----
        for p in D.parameters():
            p.requires_grad_(False)
        out = D(G(torch.randn(B, args.zdim)))
        if args.method == "wgangp":
            lossG = -out.mean()
        else:
            lossG = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        optG.zero_grad(set_to_none=True)
        lossG.backward()
        optG.step()
        for p in D.parameters():
            p.requires_grad_(True)
        train_time += time.perf_counter() - t0
        cpu_time += time.process_time() - c0

        if step % args.eval_every == 0 or step == args.steps:
            m, _ = evaluate()
            m.pop("counts")
            m.update(step=step, lossD=float(lossD.detach()), lossG=float(lossG.detach()),
                     g_steps_per_s=step / train_time)
            history.append(m)
            if args.verbose:
                print(json.dumps(m), file=sys.stderr, flush=True)

    final, samples = evaluate()
    res = {
        "method": args.method, "dataset": args.dataset, "seed": args.seed,
        "zdim": args.zdim, "steps": args.steps, "n_critic": n_critic,
        "gp_lambda": args.gp_lambda if args.method == "wgangp" else None,
        "batch": B, "lr": args.lr, "threads": args.threads,
        "train_s": round(train_time, 2),
        "wall_s": round(time.perf_counter() - t_start, 2),
        "g_steps_per_s": round(args.steps / train_time, 2),
        "d_steps_per_s": round(args.steps * n_critic / train_time, 2),
        "cpu_s": round(cpu_time, 2),
        "ms_per_g_step_wall": round(1000 * train_time / args.steps, 2),
        "ms_per_g_step_cpu": round(1000 * cpu_time / args.steps, 2),
        "loadavg_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "torch": torch.__version__,
        **final,
        "history": history,
    }
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        tag = f"{args.method}_{args.dataset}_z{args.zdim}_s{args.seed}"
        np.save(os.path.join(args.out_dir, f"samples_{tag}.npy"), samples.astype(np.float32))
        with open(os.path.join(args.out_dir, "peer_gan_results.jsonl"), "a") as f:
            f.write(json.dumps(res) + "\n")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", choices=["wgangp", "nsgan"], required=True)
    ap.add_argument("--dataset", choices=["ring", "grid"], required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="generator steps (default grid 5000, ring 2000)")
    ap.add_argument("--zdim", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--n-critic", type=int, default=5)
    ap.add_argument("--gp-lambda", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--out-dir", default="results")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.steps is None:
        args.steps = 5000 if args.dataset == "grid" else 2000
    res = run(args)
    short = {k: v for k, v in res.items() if k != "history"}
    print(json.dumps(short))


if __name__ == "__main__":
    main()
