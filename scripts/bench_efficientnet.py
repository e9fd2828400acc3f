#!/usr/bin/env python3
"""EfficientNet-Lite0 speed and memory: relprop against PyTorch + Zennit on timm's tf_efficientnet_lite0
(BatchNorm folded into the convolutions), and relprop's forward against onnxruntime on relprop's ONNX
export of the same network. A benchmark, not a test: the numbers depend on the machine and its load.

Cells (batch 1 and 16): forward, gradient, LRP EpsilonPlus, SGLRP (bounded deep Taylor: ZBox on the first
convolution with the input bounds mapped through the normalisation, ZPlus elsewhere, SGLRP's softmax
seed). The two sides are interleaved cell by cell, each cell timed on each side twice in alternation,
so both sides of a ratio see the same load on a shared machine; the median is reported. Peak memory is
the maximum resident set of one process that explains a batch of 16 with EpsilonPlus (relprop's CLI
against a Python process doing the same with Zennit).

usage: python scripts/bench_efficientnet.py [--relprop-bin target/release/relprop] [--threads 2]
       (needs torch, timm, zennit, onnxruntime; the weights fetched with `relprop fetch efficientnet_lite0`)
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import timm
import torch
from torch import nn
from zennit.attribution import Gradient
from zennit.composites import EpsilonPlus, SpecialFirstLayerMapComposite
from zennit.rules import Epsilon, Pass, ZBox, ZPlus
from zennit.types import Convolution, Linear

BATCHES = [1, 16]
METHODS = ["forward", "gradient", "lrp-epsilon-plus", "sglrp"]


def fold(model):
    """Folds every BatchNorm into the convolution before it (timm's BatchNormAct2d keeps its activation)."""
    pairs = [("conv_stem", "bn1"), ("conv_head", "bn2")]
    for stage in model.blocks:
        for block in stage:
            if hasattr(block, "conv_pwl"):  # inverted residual: expand, depthwise, project
                convs = [("conv_pw", "bn1"), ("conv_dw", "bn2"), ("conv_pwl", "bn3")]
            else:  # depthwise separable: depthwise, project
                convs = [("conv_dw", "bn1"), ("conv_pw", "bn2")]
            for c, b in convs:
                fold_pair(block, c, b)
    for c, b in pairs:
        fold_pair(model, c, b)
    return model


def fold_pair(parent, conv_name, bn_name):
    conv, bn = getattr(parent, conv_name), getattr(parent, bn_name)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    with torch.no_grad():
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        bias = bn.bias - bn.running_mean * scale
        conv.bias = nn.Parameter(bias if conv.bias is None else conv.bias * scale + bias)
    setattr(parent, bn_name, bn.act if hasattr(bn, "act") else nn.Identity())


def sglrp_seed(logits, target):
    p = torch.softmax(logits, 1)
    pt = p.gather(1, target[:, None])
    seed = -pt * p
    seed.scatter_(1, target[:, None], (pt * (1 - pt)))
    return seed


def torch_cell(model, method, x, composites):
    target = torch.zeros(x.shape[0], dtype=torch.long)
    if method == "forward":
        with torch.no_grad():
            model(x)
        return
    if method == "gradient":
        xg = x.clone().requires_grad_(True)
        out = model(xg)
        out.gather(1, target[:, None]).sum().backward()
        return
    composite = composites[method]
    with Gradient(model=model, composite=composite) as attributor:
        if method == "sglrp":
            with torch.no_grad():
                logits = model(x)
            attributor(x, sglrp_seed(logits, target))
        else:
            attributor(x, torch.eye(1000)[target])


def time_torch(model, method, x, composites, min_seconds):
    torch_cell(model, method, x, composites)  # warm-up
    times = []
    start = time.perf_counter()
    while not times or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        torch_cell(model, method, x, composites)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def time_relprop(binary, method, batch, min_seconds):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.csv")
        subprocess.run(
            [binary, "bench", "--models", "efficientnet_lite0", "--batch-sizes", str(batch), "--methods", method,
             "--min-seconds", str(min_seconds), "--csv", out],
            check=True, capture_output=True,
        )
        with open(out) as f:
            row = next(csv.DictReader(f))
    key = next(k for k in row if k.startswith("ms"))
    return float(row[key])


def time_onnxruntime(path, x, min_seconds, threads):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    feed = {s.get_inputs()[0].name: x.numpy()}
    s.run(None, feed)
    times = []
    start = time.perf_counter()
    while not times or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        s.run(None, feed)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def peak_memory_kb(cmd):
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, check=True, capture_output=True, text=True)
    return int(out.stderr.strip().splitlines()[-1])


ZENNIT_PEAK = """
import sys, torch, timm
sys.path.insert(0, {scripts!r})
from bench_efficientnet import fold, time_torch, make_composites
torch.set_num_threads({threads})
model = fold(timm.create_model("tf_efficientnet_lite0").eval())
x = torch.rand(16, 3, 224, 224) * 2 - 1
from bench_efficientnet import torch_cell
torch_cell(model, "lrp-epsilon-plus", x, make_composites())
"""


def make_composites():
    # The first convolution sees normalised inputs: [0, 1] maps to [-1, 1].
    bdt = SpecialFirstLayerMapComposite(
        layer_map=[(Convolution, ZPlus()), (Linear, ZPlus())],
        first_map=[(Convolution, ZBox(low=-1.0, high=1.0))],
    )
    return {"lrp-epsilon-plus": EpsilonPlus(), "sglrp": bdt}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--relprop-bin", default=os.path.join("target", "release", "relprop"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    model = fold(timm.create_model("tf_efficientnet_lite0").eval())
    composites = make_composites()
    rows = []
    for batch in BATCHES:
        # timm's model takes normalised inputs, relprop's raw ones in [0, 1]: same cost.
        x = torch.rand(batch, 3, 224, 224) * 2 - 1
        for method in METHODS:
            ours, theirs = [], []
            for _ in range(2):
                ours.append(time_relprop(args.relprop_bin, method, batch, args.min_seconds))
                theirs.append(time_torch(model, method, x, composites, args.min_seconds))
            r, t = statistics.median(ours), statistics.median(theirs)
            rows.append((method, batch, r, t))
            print(f"{method:>18} batch {batch:>2}: relprop {r:8.1f} ms  PyTorch+Zennit {t:8.1f} ms  ratio {t / r:5.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "efficientnet_lite0.onnx")
        subprocess.run([args.relprop_bin, "export", "--model", "efficientnet_lite0", "--out", onnx_path], check=True,
                       capture_output=True)
        for batch in BATCHES:
            x = torch.rand(batch, 3, 224, 224)
            r = [time_relprop(args.relprop_bin, "forward", batch, args.min_seconds) for _ in range(2)]
            o = [time_onnxruntime(onnx_path, x, args.min_seconds, args.threads) for _ in range(2)]
            print(f"forward batch {batch:>2}: relprop {statistics.median(r):8.1f} ms  onnxruntime {statistics.median(o):8.1f} ms",
                  flush=True)
        x16 = os.path.join(tmp, "x16.npy")
        np.save(x16, np.random.default_rng(0).random((16, 3, 224, 224), dtype=np.float32))
        ours = peak_memory_kb([args.relprop_bin, "explain", "--model", "efficientnet_lite0", "--input", x16, "--method",
                               "lrp", "--rules", "epsilon-plus", "--out", os.path.join(tmp, "r.npy")])
        script = ZENNIT_PEAK.format(scripts=os.path.dirname(os.path.abspath(__file__)), threads=args.threads)
        theirs = peak_memory_kb([sys.executable, "-c", script])
        print(f"peak memory, EpsilonPlus at batch 16: relprop {ours / 1024:.0f} MiB, PyTorch+Zennit {theirs / 1024:.0f} MiB")
    print()
    print("| method | batch | relprop ms | PyTorch + Zennit ms | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for method, batch, r, t in rows:
        print(f"| {method} | {batch} | {r:.1f} | {t:.1f} | {t / r:.2f}x |")


if __name__ == "__main__":
    main()
