#!/usr/bin/env python3
"""CDRIB's official code as a peer, judged on exactly warmstart's CDRIB cases.

CDRIB (Cao et al., ICDE 2022; MIT, ../shared/peers/cdrib) is run unchanged from a scratch copy
of its directory. Three things are swapped in from outside, without editing its files (the third is a
compatibility shim: `.cuda(device)` on a CPU device becomes `.to(device)`):
- its test and validation rows (`DataLoader.read_test_data`) are the cases a
  `warmstart eval --protocol cdrib --write-cases` run wrote (the same rows, the same 999
  negatives), in place of a fresh random draw;
- its predictions are recorded per case (wrapping `CrossTrainer.source_predict` /
  `target_predict`), ranked as its own `predict` ranks them, so that each case can be paired
  with warmstart's models' results on that case (`per_case.csv` of the same run).
Its training, model selection (validation MRR, evaluated every 5 epochs from epoch 10) and
reported test (the test metrics when validation last improved) are its own.

    .venv-torch/bin/python scripts/cdrib_peer.py --run runs/<cdrib run> --epochs 40
"""

import argparse
import csv
import json
import math
import os
import runpy
import shutil
import sys
import time
from pathlib import Path

# our task names (cases/<stem>.{test,valid}.tsv) by the CDRIB domain a test file belongs to:
# CDRIB's "source" is game (dataset game_video); its source test rows are the game rows of
# cold-start users, predicted from their video history
TASK_BY_DOMAIN = {"game": "cdrib-video_to_cdrib-game_sampled", "video": "cdrib-game_to_cdrib-video_sampled"}
KS = (1, 5, 10)


def file_stem(task):
    """A task name as warmstart names its case files: `a→b (sampled)` → `a_to_b_sampled`."""
    mapped = "".join(c if (c.isascii() and c.isalnum()) or c == "-" else "_" for c in task.replace("→", "_to_"))
    return "_".join(p for p in mapped.split("_") if p)


def read_cases(path):
    """[(user id, [target] + negatives)] from a cases TSV (user keys `cdrib:<n>`)."""
    out = []
    with open(path) as f:
        next(f)
        for line in f:
            case, user, relevant, candidates = line.rstrip("\n").split("\t")
            assert len(out) == int(case), f"{path}: cases out of order at {case}"
            cands = [int(i) for i in candidates.split(",")]
            assert cands[0] == int(relevant), f"{path}: case {case}: the target is not first"
            out.append((int(user.split(":")[-1]), cands))
    return out


def case_metrics(rank):
    m = {"mrr": 1.0 / (rank + 1)}
    for k in KS:
        m[f"hit@{k}"] = 1.0 if rank < k else 0.0
        m[f"ndcg@{k}"] = 1.0 / math.log2(rank + 2) if rank < k else 0.0
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = Path(__file__).resolve().parent.parent
    ap.add_argument("--run", required=True, type=Path, help="run directory of `warmstart eval --protocol cdrib --write-cases`")
    ap.add_argument("--peer", type=Path, default=root.parent / "shared/peers/cdrib/CDRIB")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("WARMSTART_DATA", root.parent / "shared/data")) / "cdrib-game-video")
    ap.add_argument("--work", type=Path, default=root / "target/peers/cdrib")
    ap.add_argument("--epochs", type=int, required=True, help="CDRIB's --num_epoch (its default is 100)")
    ap.add_argument("--batch-size", type=int, default=1024, help="CDRIB's --batch_size (its default is 1024)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, help="JSON written here (default: <run>/cdrib_peer.json)")
    a = ap.parse_args()
    a.run, a.work = a.run.resolve(), a.work.resolve()  # CDRIB runs from inside its directory
    out = (a.out or a.run / "cdrib_peer.json").resolve()

    import numpy as np
    import torch
    from scipy import stats

    torch.set_num_threads(a.threads)
    # CDRIB was written for a GPU: it moves fresh tensors with `.cuda(other.device)`, which
    # fails for a CPU device in current PyTorch; on a CPU device that is `.to(device)`
    cuda = torch.Tensor.cuda

    def cuda_or_cpu(self, device=None, *args, **kw):
        if device is not None and torch.device(device).type == "cpu":
            return self.to(device)
        return cuda(self, device, *args, **kw)

    torch.Tensor.cuda = cuda_or_cpu
    # scratch copy: CDRIB reads ../dataset/<name>/ and writes ./saved_models/
    if a.work.exists():
        shutil.rmtree(a.work)
    shutil.copytree(a.peer, a.work / "CDRIB")
    (a.work / "dataset").mkdir()
    os.symlink(a.data.resolve() / "game", a.work / "dataset/game_video")
    os.symlink(a.data.resolve() / "video", a.work / "dataset/video_game")
    os.chdir(a.work / "CDRIB")
    sys.path.insert(0, str(a.work / "CDRIB"))

    cases = {
        (domain, split): read_cases(a.run / "cases" / f"{task}.{split}.tsv")
        for domain, task in TASK_BY_DOMAIN.items()
        for split in ("test", "valid")
    }
    index = {
        (domain, u, tuple(c)): (split, n)
        for (domain, split), cs in cases.items()
        for n, (u, c) in enumerate(cs)
    }
    ranks = {key: [None] * len(cs) for key, cs in cases.items()}
    evaluated = {key: [] for key in cases}  # epochs at which each split was last ranked
    epoch = {"n": 0}

    import utils.loader as loader
    import model.trainer as trainer

    def read_test_data(self, test_file, item_set):
        domain = "game" if "/game_video/" in test_file else "video"
        split = "test" if test_file.endswith("test.txt") else "valid"
        with open(test_file) as f:
            users = [int(line.split("\t")[0]) for line in f if line.strip()]
        self.MIN_USER, self.MAX_USER = min(users), max(users)  # as CDRIB computes them
        rows = cases[(domain, split)]
        missing = sum(1 for _, c in rows for i in c if i not in item_set)
        assert missing == 0, f"{missing} candidates of {domain}/{split} have no training row"
        print(f"{domain} {split}: {len(rows)} cases from warmstart's run")
        return [[u, list(c)] for u, c in rows]

    loader.DataLoader.read_test_data = read_test_data

    def recording(predict, domain):
        def wrapped(self, batch):
            scores = predict(self, batch)
            users = batch[0].tolist()
            items = batch[1].tolist()
            order = (-scores).argsort(dim=1).argsort(dim=1)[:, 0].tolist()  # CDRIB's own rank
            for u, c, r in zip(users, items, order):
                split, n = index[(domain, u, tuple(c))]
                ranks[(domain, split)][n] = r
                if n == 0:
                    evaluated[(domain, split)].append(epoch["n"])
            return scores

        return wrapped

    trainer.CrossTrainer.source_predict = recording(trainer.CrossTrainer.source_predict, "game")
    trainer.CrossTrainer.target_predict = recording(trainer.CrossTrainer.target_predict, "video")
    # the epoch counter (CDRIB's loop is module-level code): one call of evaluate_embedding per
    # evaluation, after `epoch` training epochs
    evaluate_embedding = trainer.CrossTrainer.evaluate_embedding

    def counting(self, *args, **kw):
        epoch["n"] = args[-1] if args else kw.get("epoch")
        return evaluate_embedding(self, *args, **kw)

    trainer.CrossTrainer.evaluate_embedding = counting

    # progress inside an epoch (CDRIB prints once per epoch)
    reconstruct_graph = trainer.CrossTrainer.reconstruct_graph
    steps = {"n": 0, "t": time.time(), "total": 0}

    def timed(self, *args, **kw):
        loss = reconstruct_graph(self, *args, **kw)
        steps["n"] += 1
        steps["total"] += 1
        if steps["n"] % 20 == 0:
            print(f"  step {steps['n']}: {(time.time() - steps['t']) / 20:.2f} s/step", flush=True)
            steps["t"] = time.time()
        return loss

    trainer.CrossTrainer.reconstruct_graph = timed

    sys.argv = ["train_rec.py", "--id", "gv", "--dataset", "game_video", "--cpu", "--num_epoch", str(a.epochs),
                "--batch_size", str(a.batch_size)]
    started = time.time()
    runpy.run_path("train_rec.py", run_name="__main__")
    seconds = time.time() - started

    # the peer beside warmstart's models, case for case
    ours = {}
    with open(a.run / "per_case.csv") as f:
        for row in csv.DictReader(f):
            ours.setdefault((row["model"], file_stem(row["task"])), []).append(row)
    result = {"peer": "CDRIB official code (MIT), ../shared/peers/cdrib", "epochs": a.epochs,
              "batch_size": a.batch_size, "steps": steps["total"], "threads": a.threads,
              "train_seconds": round(seconds, 1), "tasks": {}}
    for domain, task in TASK_BY_DOMAIN.items():
        r = ranks[(domain, "test")]
        assert all(x is not None for x in r), f"{task}: the peer never ranked the test cases (no validation gain?)"
        peer = [case_metrics(x) for x in r]
        entry = {"cases": len(r), "test_ranked_at_epochs": evaluated[(domain, "test")],
                 "cdrib": {m: float(np.mean([p[m] for p in peer])) for m in peer[0]}, "vs": {},
                 "ranks": r}  # the peer's 0-based rank of each case's target, for pairing again later
        for (model, t), rows in sorted(ours.items()):
            if t != task:
                continue
            assert len(rows) == len(r), f"{model} on {task}: {len(rows)} cases, the peer {len(r)}"
            mine = np.array([float(x["ndcg@10"]) for x in rows])
            theirs = np.array([p["ndcg@10"] for p in peer])
            t_stat, p_value = stats.ttest_rel(mine, theirs)
            entry["vs"][model] = {"ndcg@10": float(mine.mean()), "hit@10": float(np.mean([float(x["hit@10"]) for x in rows])),
                                  "mrr": float(np.mean([float(x["mrr"]) for x in rows])),
                                  "diff_ndcg@10": float(mine.mean() - theirs.mean()),
                                  "t": float(t_stat), "p": float(p_value)}
        result["tasks"][task] = entry
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
