"""PyTorch (CPU) re-implementation of the training loop of warmstart's two-tower retrieval model
(crates/models/src/two_tower.rs, `TwoTower::fit_with` / `TwoTower::loss`), to compare epoch
times with the Rust (candle) implementation on exactly the same data and batches.

Install torch (CPU use, from PyPI only; this is scripts/install_torch_cpu.sh):

    install_torch_cpu() {
      local venv="${1:-.venv-torch}"
      if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import torch" 2>/dev/null; then
        return 0
      fi
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q numpy filelock "typing-extensions>=4.13.0" "sympy>=1.13.3" \\
        "networkx>=2.5.1" jinja2 "fsspec>=0.8.5" "setuptools>=77.0.3"
      "$venv/bin/pip" install -q --no-deps torch==2.15.0 \\
        nvidia-cuda-runtime==13.2.86 nvidia-cuda-cupti==13.2.86 nvidia-cuda-nvrtc==13.2.86 \\
        nvidia-cublas==13.4.1.3 nvidia-cusparse==12.7.10.12 nvidia-cufft==12.2.0.57 \\
        nvidia-cufile==1.17.1.22 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 \\
        nvidia-cudnn-cu13==9.26.0.51 nvidia-nvshmem-cu13==3.7.2
    }

  PyPI's Linux x86_64 torch is a CUDA build whose shared libraries are linked against the CUDA
  runtime wheels, so `import torch` needs them even on CPU; the CPU-only wheel is on
  download.pytorch.org, which is not reachable here. Installing torch with --no-deps plus only
  the linked-against nvidia wheels (no triton, cusolver, nvjitlink, ...) takes ~4.0 GB instead
  of ~5.3 GB.

usage: .venv-torch/bin/python scripts/two_tower_torch.py DIR [--epochs 3] [--threads 2] [--seed 42] [--save FILE]

DIR is what the Rust side exports (`TwoTowerExport`), little-endian .npy files:
  config.json          n_items, content_dim (0 = none), dim, hidden, batch, learning_rate,
                       weight_decay, loss ("softmax"|"bce"), negatives, pooling ("mean"|"attention"),
                       id_embedding, id_dim, embeddings [[name, emb_dim, vocab], ...],
                       initial_scale (ln of the logit scale), warmup_steps, total_steps,
                       uniform_negatives, user_mlp, lr_floor, adam_betas, adam_eps
  content.npy          float32 (n_items, content_dim), absent when content_dim == 0
  features.npy         int64 (n_items, len(embeddings)): each item's row in each embedding table
  site_ranges.npy      int64 (n_sites, 2): [start, end) item ids of each site
  logq.npy             float32 (n_items,): log sampling probability of each item as a target
  epoch_offsets.npy    int64 (epochs+1,): where each epoch's examples start (each epoch is a
                       fresh draw of targets and histories, as warmstart draws them)
  targets.npy          int64 (E,): target item of each example, in training order
  history_offsets.npy  int64 (E+1,); history_items.npy int64 (H,); history_weights.npy float32 (H,)

What is mirrored (all parameters float32, shapes as in Rust's `Shape::specs`):
  item tower   concat(content[ids], the feature embeddings, id embedding if on)
               -> Linear(in, hidden) -> ReLU -> Linear(hidden, dim) -> L2-normalise
  per batch    U = unique items of the histories, targets and negatives in first-appearance
               order; H = item_tower(U) once; P (B x |U|) = summed history weights.
               The index structures are built inside the timed loop, as Rust builds them per batch.
  user tower   mean: (P / rowsum(P)) @ H; attention: softmax(H@query + log P, -1e9 outside the
               history) @ H; then pooled + MLP(pooled) (when user_mlp) -> L2-normalise
  loss         softmax: user @ columns.T * exp(s), columns = the batch's targets (then the
               uniform negatives, if any), minus log expected count (logq + ln B for targets,
               ln(R/|site|) for R uniform negatives), other columns holding a row's own target
               masked with -1e9, cross-entropy against the diagonal.
               bce: `negatives` uniform same-site negatives per example; mean softplus loss.
  optimiser    AdamW (betas, eps and weight decay from config.json, decoupled weight decay on every
               parameter, as candle_nn::AdamW), learning rate per step from
               warmstart_core::schedule::warmup_cosine: linear warm-up, then cosine decay to
               lr_floor * peak at total_steps.
Timed per epoch: the batch loop only (index building, forward, backward, step, reading the loss),
as Rust's `train_seconds`. Epoch e walks epoch e's exported examples, in order.

Prints one JSON line on stdout; progress goes to stderr.

Threads: torch.set_num_threads(--threads) (intra-op, OpenMP/MKL). OpenMP threads spin while
waiting; on a machine busy with other work (more runnable threads than cores) that can make a
2-thread run several times slower than a 1-thread run. Time on an idle machine, or set
OMP_WAIT_POLICY=PASSIVE in the environment (read when torch starts) when it cannot be idle.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
from safetensors_io import save_safetensors
import torch
import torch.nn.functional as F


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def load(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    npy = lambda name: np.load(os.path.join(d, name))  # noqa: E731
    data = {
        "features": npy("features.npy").astype(np.int64, copy=False),
        "site_ranges": npy("site_ranges.npy").astype(np.int64, copy=False),
        "logq": npy("logq.npy").astype(np.float32, copy=False),
        "epoch_offsets": npy("epoch_offsets.npy").astype(np.int64, copy=False),
        "targets": npy("targets.npy").astype(np.int64, copy=False),
        "offsets": npy("history_offsets.npy").astype(np.int64, copy=False),
        "items": npy("history_items.npy").astype(np.int64, copy=False),
        "weights": npy("history_weights.npy").astype(np.float32, copy=False),
        "content": npy("content.npy").astype(np.float32, copy=False) if cfg["content_dim"] > 0 else None,
    }
    n, e = cfg["n_items"], len(data["targets"])
    assert data["features"].shape == (n, len(cfg["embeddings"])), data["features"].shape
    assert data["logq"].shape == (n,) and data["offsets"].shape == (e + 1,)
    assert len(data["items"]) == len(data["weights"]) == data["offsets"][-1]
    if data["content"] is not None:
        assert data["content"].shape == (n, cfg["content_dim"]), data["content"].shape
    return cfg, data


class TwoTower:
    """Parameters and the two towers; init as Rust's `Shape::specs` (normal, given std)."""

    def __init__(self, cfg, data, gen):
        self.cfg = cfg
        dim, hidden = cfg["dim"], cfg["hidden"]
        # every constant comes from config.json (the Rust side writes what it trains with)
        normal = lambda shape, std: torch.nn.Parameter(torch.randn(*shape, generator=gen) * std)  # noqa: E731
        self.tables = [normal((vocab, emb_dim), 0.1) for _, emb_dim, vocab in cfg["embeddings"]]
        self.ids = normal((cfg["n_items"], cfg["id_dim"]), 0.1) if cfg["id_embedding"] else None
        id_dim = self.ids.shape[1] if self.ids is not None else 0
        in_dim = cfg["content_dim"] + sum(e[1] for e in cfg["embeddings"]) + id_dim

        def lin(i, o, gain):
            return normal((i, o), gain / math.sqrt(i)), torch.nn.Parameter(torch.zeros(o))

        self.item = [lin(in_dim, hidden, math.sqrt(2.0)), lin(hidden, dim, 1.0)]
        self.user = [lin(dim, hidden, math.sqrt(2.0)), lin(hidden, dim, 0.1)] if cfg["user_mlp"] else None
        self.query = normal((dim,), 0.1)
        self.scale = torch.nn.Parameter(torch.tensor(float(cfg["initial_scale"])))
        # constants: content vectors and each table's index per item (one contiguous row per table)
        self.content = torch.from_numpy(data["content"]) if data["content"] is not None else None
        self.features = torch.from_numpy(np.ascontiguousarray(data["features"].T))

    def warmstart_weights(self):
        """The parameters under warmstart's names and layouts (weights as in × out)."""
        out = {f"emb.{name}": t for (name, _, _), t in zip(self.cfg["embeddings"], self.tables)}
        if self.ids is not None:
            out["emb.id"] = self.ids
        for i, (w, b) in enumerate(self.item):
            out[f"item.{i}.weight"], out[f"item.{i}.bias"] = w, b
        for i, (w, b) in enumerate(self.user or []):
            out[f"user.{i}.weight"], out[f"user.{i}.bias"] = w, b
        out["query"], out["scale"] = self.query, self.scale
        return {k: v.detach().contiguous().float() for k, v in out.items()}

    def parameters(self):
        ps = list(self.tables) + ([self.ids] if self.ids is not None else [])
        for w, b in self.item + (self.user or []):
            ps += [w, b]
        return ps + [self.query, self.scale]

    @staticmethod
    def l2(x):
        return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @staticmethod
    def mlp(x, layers):
        (w0, b0), (w1, b1) = layers
        return torch.addmm(b1, torch.addmm(b0, x, w0).relu(), w1)

    def item_tower(self, ids):
        parts = [] if self.content is None else [self.content.index_select(0, ids)]
        rows = self.features.index_select(1, ids)  # tables x |ids|
        parts += [t.index_select(0, rows[j]) for j, t in enumerate(self.tables)]
        if self.ids is not None:
            parts.append(self.ids.index_select(0, ids))
        return self.l2(self.mlp(torch.cat(parts, 1), self.item))

    def user_tower(self, pool, h):
        if self.cfg["pooling"] == "mean":
            pooled = (pool / pool.sum(1, keepdim=True).clamp_min(1e-12)) @ h
        elif self.cfg["pooling"] == "attention":
            logits = (h @ self.query).unsqueeze(0)  # 1 x U
            scores = torch.where(pool > 0, logits + pool.clamp_min(1e-12).log(), torch.full_like(pool, -1e9))
            pooled = torch.softmax(scores, -1) @ h
        else:
            raise ValueError(f"unknown pooling {self.cfg['pooling']!r}")
        if self.user is not None:
            pooled = pooled + self.mlp(pooled, self.user)
        return self.l2(pooled)


class Batches:
    """Builds one batch's index structures (as `TwoTower::loss` does in Rust, per batch)."""

    def __init__(self, cfg, data, rng):
        self.cfg, self.d, self.rng = cfg, data, rng
        ranges = data["site_ranges"]
        self.site_starts = ranges[:, 0]
        self.site_ends = ranges[:, 1]

    def site_of(self, items):
        return np.searchsorted(self.site_starts, items, side="right") - 1

    def uniform_same_site(self, of_items, k):
        """`k` uniform draws from the site of each of `of_items` (len(of_items) x k)."""
        s = self.site_of(of_items)
        lo, hi = self.site_starts[s][:, None], self.site_ends[s][:, None]
        return self.rng.integers(lo, hi, size=(len(of_items), k))

    def build(self, start, end):
        d, cfg = self.d, self.cfg
        b = end - start
        o0, o1 = d["offsets"][start], d["offsets"][end]
        h_items, h_weights = d["items"][o0:o1], d["weights"][o0:o1]
        h_rows = np.repeat(np.arange(b), np.diff(d["offsets"][start:end + 1]))
        targets = d["targets"][start:end]
        if cfg["loss"] == "bce":
            negs = self.uniform_same_site(targets, cfg["negatives"]).reshape(-1)
        else:  # mixed negative sampling: a shared set of uniform draws from the batch's sites
            r = cfg["uniform_negatives"]
            negs = self.uniform_same_site(targets[self.rng.integers(0, b, size=r)], 1).reshape(-1)
        # unique items in first-appearance order: histories, targets, negatives
        allv = np.concatenate([h_items, targets, negs])
        uniq, first, inverse = np.unique(allv, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        slots = rank[inverse.reshape(-1)]
        n_u, n_h = len(uniq), len(h_items)
        pool = np.bincount(h_rows * n_u + slots[:n_h], weights=h_weights, minlength=b * n_u)
        out = {
            "items": torch.from_numpy(uniq[order]),
            "pool": torch.from_numpy(pool.astype(np.float32).reshape(b, n_u)),
            "target_slots": slots[n_h:n_h + b],
            "neg_slots": slots[n_h + b:],
        }
        if cfg["loss"] == "softmax":
            # columns: the batch's targets (expected count B*q), then the uniform negatives
            # (expected count R/|site|); -log(expected count) added, repeats of a row's target masked
            col_items = np.concatenate([targets, negs])
            col_logq = d["logq"][targets].astype(np.float64) + math.log(b)
            if len(negs):
                s = self.site_of(negs)
                col_logq = np.concatenate([col_logq, np.log(len(negs) / (self.site_ends[s] - self.site_starts[s]))])
            corr = np.broadcast_to(-col_logq.astype(np.float32), (b, len(col_items))).copy()
            same = targets[:, None] == col_items[None, :]
            same[np.arange(b), np.arange(b)] = False
            corr[same] = -1e9
            out["col_slots"] = torch.from_numpy(np.concatenate([out["target_slots"], out["neg_slots"]]))
            out["correction"] = torch.from_numpy(corr)
        else:
            out["target_slots"] = torch.from_numpy(out["target_slots"])
            out["neg_slots"] = torch.from_numpy(out["neg_slots"])
        return out


def loss_of(model, cfg, batch):
    h = model.item_tower(batch["items"])
    users = model.user_tower(batch["pool"], h)
    scale = model.scale.exp()
    if cfg["loss"] == "softmax":
        cols = h.index_select(0, batch["col_slots"])
        logits = (users @ cols.T) * scale + batch["correction"]
        return F.cross_entropy(logits, torch.arange(users.shape[0]))
    if cfg["loss"] == "bce":
        b, k = users.shape[0], cfg["negatives"]
        pos = h.index_select(0, batch["target_slots"])
        neg = h.index_select(0, batch["neg_slots"]).reshape(b, k, -1)
        pos_logit = (users * pos).sum(1) * scale
        neg_logit = (neg * users.unsqueeze(1)).sum(2) * scale
        return (F.softplus(-pos_logit).sum() + F.softplus(neg_logit).sum()) / (b * (1 + k))
    raise ValueError(f"unknown loss {cfg['loss']!r}")


def warmup_cosine(step, warmup, total, peak, floor):
    """warmstart_core::schedule::warmup_cosine, ending at floor * peak (lr_floor in config.json)."""
    warmup = max(warmup, 1)
    if step < warmup:
        return peak * (step + 1) / warmup
    p = min((step - warmup) / max(total - warmup, 1), 1.0)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dir")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--save", help="write the trained weights here (safetensors, warmstart's names), so "
                   "`warmstart eval --models 'two-tower:init=FILE:epochs=0'` ranks with them")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    cfg, data = load(a.dir)
    gen = torch.Generator().manual_seed(a.seed)
    model = TwoTower(cfg, data, gen)
    params = model.parameters()
    opt = torch.optim.AdamW(params, lr=cfg["learning_rate"], betas=tuple(cfg["adam_betas"]), eps=cfg["adam_eps"],
                            weight_decay=cfg["weight_decay"])
    batches = Batches(cfg, data, np.random.default_rng(a.seed))
    bs = cfg["batch"]
    bounds = data["epoch_offsets"]
    if a.epochs > len(bounds) - 1:
        sys.exit(f"{a.epochs} epochs asked, {len(bounds) - 1} exported")

    def chunks_of(epoch):
        lo, hi = bounds[epoch], bounds[epoch + 1]
        return [c for c in ((s, min(s + bs, hi)) for s in range(lo, hi, bs)) if c[1] - c[0] >= 2]

    n_examples = int(bounds[1] - bounds[0])
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {cfg['n_items']} items, "
        f"content_dim {cfg['content_dim']}, {n_examples} examples per epoch, {len(chunks_of(0))} batches of {bs}, "
        f"loss {cfg['loss']}, pooling {cfg['pooling']}, id_embedding {cfg['id_embedding']}, "
        f"{sum(p.numel() for p in params)} parameters")

    step, times, losses = 0, [], []
    floor = cfg["lr_floor"]
    for epoch in range(a.epochs):
        chunks = chunks_of(epoch)
        started = time.perf_counter()
        total = 0.0
        for s, e in chunks:
            lr = warmup_cosine(step, cfg["warmup_steps"], cfg["total_steps"], cfg["learning_rate"], floor)
            for g in opt.param_groups:
                g["lr"] = lr
            batch = batches.build(s, e)
            loss = loss_of(model, cfg, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = loss.item()
            if not math.isfinite(value):
                sys.exit(f"training diverged at step {step}")
            total += value
            step += 1
        times.append(time.perf_counter() - started)
        losses.append(total / max(len(chunks), 1))
        log(f"epoch {epoch + 1}: {times[-1]:.2f} s, loss {losses[-1]:.4f}")

    if a.save:
        save_safetensors(a.save, model.warmstart_weights())
    median = statistics.median(times)
    print(json.dumps({
        "framework": "pytorch", "torch": torch.__version__, "threads": a.threads,
        "examples": n_examples, "batch": bs, "epoch_seconds": times, "epoch_seconds_median": median,
        "examples_per_second": n_examples / median, "loss": losses,
    }))


if __name__ == "__main__":
    main()
