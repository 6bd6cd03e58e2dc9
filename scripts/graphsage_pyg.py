"""GraphSAGE in PyTorch Geometric on the data `warmstart-bench graphsage` exports: the same
graphs (each epoch's edges with its simulated cold-start links hidden), input features,
fanouts, batch size, objective and links, trained for a few epochs on the CPU. Prints one JSON
line with seconds per epoch and the losses, like the Rust side, so scripts/bench_graphsage.sh
can compare. `--save FILE` writes the trained weights under warmstart's parameter names
(safetensors), so `warmstart eval --models 'graphsage:init=FILE:epochs=0'` ranks with them.

PyG's own neighbour loaders need `pyg-lib` or `torch-sparse`, neither of which has CPU wheels
on PyPI; the uniform per-layer sampler is therefore written here in vectorised NumPy (the same
algorithm as ours: every destination node draws up to `fanout` distinct neighbours per layer),
and the message passing is PyG's `SAGEConv` on the sampled bipartite blocks. PyG's mean
aggregator ignores edge weights (ours weighs them); the cost is the same.

Inputs as in warmstart: every node has a raw row [content, one-hot shop, one-hot popularity
bucket, user flag] (a user's is the edge-weighted mean of its products' rows), mapped by one
linear layer (= content projection + shop and popularity embeddings + user bias), plus a
learned id embedding on id-only data (a user's: the mean over up to `user_items` sampled
products). Written the usual PyG way: the input layer runs on every sampled node.

    python scripts/graphsage_pyg.py DIR [--epochs 3] [--threads 2] [--sampler-workers 0|1] [--save FILE]

Threads: --threads intra-op threads train; with --sampler-workers 1 a DataLoader worker
process samples and relabels the next batches meanwhile (warmstart's trainer likewise runs
its sampler on a thread of its own beside its compute threads), else sampling runs in the
training loop, inside the timed epoch.
"""

import argparse
import json
import math
import os
import resource
import time

import numpy as np
from safetensors_io import save_safetensors
import torch
import torch.nn.functional as F
from torch_geometric.nn import SAGEConv

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seed", type=int, default=42)
p.add_argument("--save", help="write the weights here (safetensors, warmstart's names)")
p.add_argument(
    "--sampler-workers",
    type=int,
    default=0,
    help="DataLoader worker processes sampling the next batches while the main process trains "
    "(0: sample in the training loop, between steps)",
)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
rng = np.random.default_rng(a.seed)

cfg = json.load(open(os.path.join(a.dir, "config.json")))
load = lambda name: np.load(os.path.join(a.dir, name))
n_items, n_users = cfg["n_items"], cfg["n_users"]
site, popularity = torch.from_numpy(load("site.npy")), torch.from_numpy(load("popularity.npy"))
logq = torch.from_numpy(load("logq.npy"))
site_ranges = load("site_ranges.npy")
content = torch.from_numpy(load("content.npy")) if cfg["content_dim"] > 0 else None
hidden, dim, fanouts = cfg["hidden"], cfg["dim"], cfg["fanouts"]


def raw_rows():
    """Raw input rows of every node (products, then users as weighted means of theirs)."""
    c, s = cfg["content_dim"], max(cfg["n_sites"], 1)
    width = c + s + 16 + 1
    items = np.zeros((n_items, width), np.float32)
    if c:
        items[:, :c] = content.numpy()
    items[np.arange(n_items), c + site.numpy()] = 1
    items[np.arange(n_items), c + s + popularity.numpy()] = 1
    start, end = offsets[n_items], offsets[n_items + n_users]
    deg = np.diff(offsets[n_items:])
    rows = np.repeat(np.arange(n_users), deg)
    total = np.bincount(rows, weights=weights[start:end], minlength=n_users)
    w = weights[start:end] / np.maximum(total[rows], 1e-12)
    index = torch.from_numpy(np.stack([rows, neighbours[start:end]]))
    a = torch.sparse_coo_tensor(index, torch.from_numpy(w.astype(np.float32)), (n_users, n_items), check_invariants=False)
    users = torch.sparse.mm(a, torch.from_numpy(items)).numpy()
    users[:, -1] = 1
    return torch.from_numpy(np.concatenate([items, users]))


def load_epoch(e):
    """Epoch e's graph, links and raw rows (epoch 1 at the top, later ones in epochE/)."""
    global offsets, neighbours, weights, degree, links, raw
    d = "" if e == 1 or not os.path.isdir(os.path.join(a.dir, f"epoch{e}")) else f"epoch{e}"
    offsets, neighbours = load(os.path.join(d, "offsets.npy")), load(os.path.join(d, "neighbours.npy"))
    weights, links = load(os.path.join(d, "weights.npy")), load(os.path.join(d, "links.npy"))
    degree = np.diff(offsets)
    raw = raw_rows()


load_epoch(1)


def sample(nodes, fanout, rng=rng):
    """Up to `fanout` distinct neighbours of each node: (destination index, neighbour id)."""
    deg = degree[nodes]
    starts = offsets[nodes]
    total = int(deg.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    dst = np.repeat(np.arange(len(nodes)), deg)
    edge = np.arange(total) - np.repeat(np.cumsum(deg) - deg, deg) + np.repeat(starts, deg)
    # random keys; keep the `fanout` smallest per node
    keys = rng.random(total)
    order = np.lexsort((keys, dst))
    dst, edge = dst[order], edge[order]
    rank = np.arange(total) - np.repeat(np.cumsum(deg) - deg, deg)
    keep = rank < fanout
    return dst[keep], neighbours[edge[keep]]


# position of each node in the current batch's node list (-1: not in it); one per process
position_of = np.full(n_items + n_users, -1, np.int64)


def first_appearance(ids):
    """`ids` without repeats, in the order they first appear (vectorised)."""
    _, first = np.unique(ids, return_index=True)
    return ids[np.sort(first)]


class Blocks:
    """Nodes hop by hop (targets first) and each layer's bipartite edge index. The node
    relabelling is vectorised NumPy (a position array, not a Python dict)."""

    def __init__(self, targets, rng):
        nodes = first_appearance(targets)
        position_of[nodes] = np.arange(len(nodes))
        self.hop_ends = [len(nodes)]
        self.edges = []
        for fanout in fanouts:
            dst, nb = sample(nodes, fanout, rng)
            new = first_appearance(nb[position_of[nb] < 0])
            position_of[new] = np.arange(len(nodes), len(nodes) + len(new))
            nodes = np.concatenate([nodes, new])
            self.edges.append(torch.from_numpy(np.stack([position_of[nb], dst])))
            self.hop_ends.append(len(nodes))
        self.nodes = nodes
        self.target_rows = position_of[targets].copy()
        position_of[nodes] = -1


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.input = torch.nn.Linear(raw.shape[1], hidden, bias=False)
        self.ids = torch.nn.Embedding(n_items, hidden) if cfg["id_embedding"] else None
        aggr = "max" if cfg["aggregator"] == "max" else "mean"
        dims = [(hidden, dim if l + 1 == len(fanouts) else hidden) for l in range(len(fanouts))]
        self.convs = torch.nn.ModuleList(
            [SAGEConv((i, i), o, aggr=aggr, project=(aggr == "max")) for i, o in dims]
        )
        self.scale = torch.nn.Parameter(torch.tensor(cfg["initial_scale"]))

    def warmstart_weights(self):
        """The parameters under warmstart's names and layouts (weights as in × out)."""
        c, s = cfg["content_dim"], max(cfg["n_sites"], 1)
        w = self.input.weight.detach().T.contiguous()
        out = {"input.site": w[c : c + s], "input.popularity": w[c + s : c + s + 16], "input.user": w[-1]}
        if c:
            out["input.content"] = w[:c]
        if self.ids is not None:
            out["input.id"] = self.ids.weight.detach()
        for l, conv in enumerate(self.convs):
            out[f"layer{l}.self.weight"] = conv.lin_r.weight.detach().T
            out[f"layer{l}.self.bias"] = conv.lin_l.bias.detach()
            out[f"layer{l}.neigh.weight"] = conv.lin_l.weight.detach().T
            if cfg["aggregator"] == "max":
                out[f"layer{l}.pool.weight"] = conv.lin.weight.detach().T
                out[f"layer{l}.pool.bias"] = conv.lin.bias.detach()
        out["scale"] = self.scale.detach()
        return {k: v.contiguous().float() for k, v in out.items()}

    def inputs(self, nodes):
        x = self.input(raw[torch.from_numpy(nodes)])
        if self.ids is None:
            return x
        is_item = nodes < n_items
        item_pos = np.nonzero(is_item)[0]
        parts = torch.zeros(len(nodes), hidden)
        parts[torch.from_numpy(item_pos)] = self.ids(torch.from_numpy(nodes[item_pos]))
        user_pos = np.nonzero(~is_item)[0]
        if len(user_pos):
            dst, nb = sample(nodes[user_pos], cfg["user_items"])
            agg = torch.zeros(len(user_pos), hidden).index_add_(0, torch.from_numpy(dst), self.ids(torch.from_numpy(nb)))
            count = torch.bincount(torch.from_numpy(dst), minlength=len(user_pos)).clamp(min=1).unsqueeze(1)
            parts[torch.from_numpy(user_pos)] = agg / count
        return x + parts

    def forward(self, blocks):
        h = self.inputs(blocks.nodes)
        layers = len(fanouts)
        for l, conv in enumerate(self.convs):
            hop = layers - 1 - l
            n_dst = blocks.hop_ends[hop]
            if l > 0:
                h = F.dropout(h, cfg["dropout"], self.training)
            h = conv((h, h[:n_dst]), blocks.edges[hop])
            h = F.normalize(h, dim=-1) if l + 1 == layers else F.relu(h)
        return h


model = Model()
opt = torch.optim.AdamW(model.parameters(), lr=cfg["learning_rate"], weight_decay=cfg["weight_decay"])
batch = cfg["batch"]
item_site = site.numpy()


def make_batch(chunk, rng):
    """The sampling half of a step: targets, negatives and sampled blocks."""
    users = chunk[:, 0] + n_items
    pos = chunk[:, 1]
    b = len(chunk)
    targets = [users, pos]
    if cfg["loss"] == "bce":
        ranges = site_ranges[item_site[pos]]
        neg = (ranges[:, :1] + rng.random((b, cfg["negatives"])) * (ranges[:, 1:] - ranges[:, :1])).astype(np.int64)
        targets.append(neg.reshape(-1))
    return pos, Blocks(np.concatenate(targets), rng)


def step(pos, blocks):
    b = len(pos)
    z = model(blocks)
    rows = torch.from_numpy(blocks.target_rows)
    zu, zp = z[rows[:b]], z[rows[b : 2 * b]]
    scale = model.scale.exp()
    if cfg["loss"] == "softmax":
        logits = scale * zu @ zp.T - (logq[torch.from_numpy(pos)] + math.log(b)).unsqueeze(0)
        same = torch.from_numpy(pos[:, None] == pos[None, :]) & ~torch.eye(b, dtype=torch.bool)
        logits = logits.masked_fill(same, -1e9)
        return F.cross_entropy(logits, torch.arange(b))
    zn = z[rows[2 * b :]].view(b, cfg["negatives"], -1)
    pos_logit = scale * (zu * zp).sum(-1)
    neg_logit = scale * (zn * zu.unsqueeze(1)).sum(-1)
    return (F.softplus(-pos_logit).sum() + F.softplus(neg_logit).sum()) / (pos_logit.numel() + neg_logit.numel())


class Sampled(torch.utils.data.IterableDataset):
    """Epoch `epoch`'s batches, sampled in a DataLoader worker process (forked after the
    epoch's graph is loaded) while the main process trains on the previous one."""

    def __init__(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        rng = np.random.default_rng((a.seed, self.epoch))
        for s in range(0, len(links), batch):
            chunk = links[s : s + batch]
            if len(chunk) >= 2:
                yield make_batch(chunk, rng)


def as_sampled(x):
    """Batches pass from the worker as they were made (no conversion to tensors)."""
    return x


def batches(epoch):
    if a.sampler_workers == 0:
        for s in range(0, len(links), batch):
            chunk = links[s : s + batch]
            if len(chunk) >= 2:
                yield make_batch(chunk, rng)
    else:
        yield from torch.utils.data.DataLoader(
            Sampled(epoch), batch_size=None, num_workers=a.sampler_workers, prefetch_factor=4, collate_fn=as_sampled
        )


seconds, losses = [], []
for epoch in range(a.epochs):
    if epoch:
        load_epoch(epoch + 1)
    model.train()
    started = time.perf_counter()
    total, count = 0.0, 0
    for pos, blocks in batches(epoch):
        loss = step(pos, blocks)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
        count += 1
    seconds.append(time.perf_counter() - started)
    losses.append(total / max(count, 1))
    print(f"pyg epoch {epoch + 1}: {seconds[-1]:.1f}s, loss {losses[-1]:.4f}", file=__import__("sys").stderr)

if a.save:
    save_safetensors(a.save, model.warmstart_weights())

median = sorted(seconds)[len(seconds) // 2]
print(
    json.dumps(
        {
            "framework": f"pyg {__import__('torch_geometric').__version__} / torch {torch.__version__}"
            + (f", {a.sampler_workers} sampler worker" if a.sampler_workers else ", sampling in the loop"),
            "threads": a.threads,
            "sampler_workers": a.sampler_workers,
            "links": len(links),
            "batch": batch,
            "epoch_seconds": seconds,
            "epoch_seconds_median": median,
            "links_per_second": len(links) / median,
            "loss": losses,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )
)
