"""sentence-transformers side of scripts/bench_embed.sh: encodes the texts warmstart-bench-embed
wrote (same order, same batch size, same thread count) and compares speed and values.

usage: bench_embed.py OUT_DIR MODEL_DIR --batch 64 --threads 2
"""
import argparse
import json
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("model_dir")
p.add_argument("--batch", type=int, default=64)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--window", type=int, default=256)
a = p.parse_args()

torch.set_num_threads(a.threads)
texts = open(f"{a.out}/texts.txt", encoding="utf-8").read().split("\n")[:-1]
model = SentenceTransformer(a.model_dir, device="cpu")
model.max_seq_length = a.window  # the window warmstart used (from sentence_bert_config.json)
model.encode(texts[:1])  # warm-up
start = time.perf_counter()
theirs = model.encode(texts, batch_size=a.batch, normalize_embeddings=True, convert_to_numpy=True)
secs = time.perf_counter() - start
ours = np.fromfile(f"{a.out}/vectors.f32", dtype="<f4").reshape(len(texts), -1)
cos = (ours * theirs).sum(axis=1)
print(json.dumps({
    "texts": len(texts), "seconds": secs, "texts_per_second": len(texts) / secs,
    "window_tokens": model.max_seq_length, "torch": torch.__version__,
    "cosine_ours_theirs_min": float(cos.min()), "cosine_ours_theirs_mean": float(cos.mean()),
}))
