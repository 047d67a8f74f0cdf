#!/usr/bin/env python3
# The PyTorch yardstick for bench/train.ts and bench/generate.ts: a small GPT of our own with the
# same shapes and the same step (pre-LN blocks, tanh GELU, learned positions, tied head, AdamW
# with clipping), eager mode, on the same cores. Prints JSON lines like the TypeScript benches.
#   /usr/bin/python3 bench/pytorch_reference.py [--only A|B|C] [--steps 5] [--threads 2] [--generate]
#   [--device cuda]: the same step on a GPU (timings wait for the device: torch.cuda.synchronize).
# Debian: apt-get install python3-torch libopenblas0-openmp (torch uses the system BLAS).
import argparse
import json
import math
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "A": dict(vocab=256, context=64, d=128, layers=2, heads=4, batch=8),
    "B": dict(vocab=50257, context=128, d=256, layers=4, heads=4, batch=8),
    # GPT-2 small at full context, at the batch bench/train.ts uses (the largest that fits 16 GB).
    "C": dict(vocab=50257, context=1024, d=768, layers=12, heads=12, batch=3),
}


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def attend(self, x, past=None):
        B, T, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        shape = lambda t: t.view(B, T, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = shape(q), shape(k), shape(v)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        S = k.shape[2]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.shape[-1]))
        mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, d)
        return self.c_proj(y), (k, v)

    def forward(self, x, past=None):
        a, present = self.attend(self.ln_1(x), past)
        x = x + a
        x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x, present


class GPT(nn.Module):
    def __init__(self, vocab, context, d, layers, heads):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(context, d)
        self.h = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)

    def forward(self, ids, past=None, start=0):
        T = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(start, start + T, device=ids.device))
        presents = []
        for i, block in enumerate(self.h):
            x, p = block(x, None if past is None else past[i])
            presents.append(p)
        return self.ln_f(x) @ self.wte.weight.t(), presents


def flops_per_token(c):
    weights = c["layers"] * (4 * c["d"] ** 2 + 8 * c["d"] ** 2) + c["vocab"] * c["d"]
    return 6 * weights + 12 * c["layers"] * c["context"] * c["d"]


DEVICE = torch.device("cpu")


def sync():
    # CUDA kernels run asynchronously: a wall-clock reading means something only once they finished.
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def emit(**o):
    where = {"device": torch.cuda.get_device_name()} if DEVICE.type == "cuda" else {"threads": torch.get_num_threads()}
    print(json.dumps({"bench": "pytorch", **where, **o}), flush=True)


def train(name, c, steps):
    torch.manual_seed(1)
    model = GPT(c["vocab"], c["context"], c["d"], c["layers"], c["heads"]).to(DEVICE)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    B, T = c["batch"], c["context"]
    ids = (torch.arange(B * (T + 1)) * 7919 + 13) % c["vocab"]
    ids = ids.view(B, T + 1).to(DEVICE)
    x, y = ids[:, :-1], ids[:, 1:]

    def step():
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    step()  # warm-up
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    ms = (time.perf_counter() - t0) * 1000 / steps
    tps = B * T * 1000 / ms
    emit(config=name, vocab=c["vocab"], d_model=c["d"], layers=c["layers"], context=T, batch=B, steps=steps,
         ms_per_step=round(ms, 1), tokens_per_s=round(tps), rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
         model_gflops_per_s=round(flops_per_token(c) * tps / 1e9, 2))


@torch.no_grad()
def generate(c, new_tokens, batch):
    torch.manual_seed(1)
    model = GPT(c["vocab"], c["context"] + new_tokens + 10, c["d"], c["layers"], c["heads"]).to(DEVICE).eval()
    # The same 10-token prompt as bench/generate.ts, then greedy decoding with the cache.
    ids = ((torch.arange(10) * 7919) % c["vocab"]).repeat(batch, 1).to(DEVICE)
    sync()
    t0 = time.perf_counter()
    logits, past = model(ids)
    for i in range(new_tokens):
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        logits, past = model(nxt, past, start=10 + i)
    sync()
    s = time.perf_counter() - t0
    emit(metric="generate", config="B", batch=batch, new_tokens=new_tokens, cached=True, tokens_per_s=round(batch * new_tokens / s, 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--only")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--generate", action="store_true")
    p.add_argument("--new-tokens", type=int, default=100)
    p.add_argument("--batch", type=int, help="override the config's batch")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--gen-batch", type=int, default=1, help="sequences decoded at once with --generate")
    a = p.parse_args()
    global DEVICE
    DEVICE = torch.device(a.device)
    torch.set_num_threads(a.threads)
    if a.generate:
        generate(CONFIGS["B"], a.new_tokens, a.gen_batch)
        return
    for name, c in CONFIGS.items():
        if a.only and a.only != name:
            continue
        train(name, c if a.batch is None else {**c, "batch": a.batch}, a.steps if name != "C" else max(1, min(a.steps, 2)))


if __name__ == "__main__":
    main()
