#!/usr/bin/env python3
"""The PyTorch + Zennit side of `relprop bench`, and the ratio table.

Times the same cells as `relprop bench` (same models, batches and methods) with PyTorch
and Zennit on this machine, then, given relprop's CSV (`relprop bench --csv FILE`), prints
a Markdown table of both timings and their ratio (reference ms / relprop ms: above 1 means
relprop is faster). Run both in one sitting: this machine is shared and noisy.

    bash scripts/setup_reference.sh                  # once: a venv with torch and zennit
    cargo run --release -- bench --csv relprop.csv
    $VENV/bin/python scripts/bench_reference.py --relprop relprop.csv

or, with the two sides interleaved cell by cell (each cell timed twice on each side,
alternating, so that both sides of a ratio see the same load on a shared machine):

    cargo build --release
    $VENV/bin/python scripts/bench_reference.py --relprop-bin target/release/relprop

Weights do not change the cost, so the models use PyTorch's default initialisation.
"""
import argparse
import copy
import csv
import os
import statistics
import subprocess
import tempfile
import time

import torch
from torch import nn
from zennit.composites import EpsilonAlpha2Beta1, EpsilonGammaBox, EpsilonPlus
from zennit.composites import LayerMapComposite, SpecialFirstLayerMapComposite
from zennit.rules import Pass, ZBox, ZPlus
from zennit.types import Activation, Convolution

CLASSES = 10


class Net(nn.Module):
    """`features` (convolutions) -> flatten -> `classifier`, with relprop's layer names."""

    def __init__(self, features, classifier):
        super().__init__()
        self.features = nn.Sequential(*features) if features else None
        self.classifier = nn.Sequential(*classifier)

    def forward(self, x):
        if self.features is not None:
            x = self.features(x)
        return self.classifier(x.flatten(1))


def lenet5():
    return Net(
        [nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)],
        [nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, CLASSES)],
    )


def vgg_small():
    convs = []
    for i, (cin, cout) in enumerate([(1, 32), (32, 32), (32, 64), (64, 64)]):
        convs += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
        if i % 2 == 1:
            convs.append(nn.MaxPool2d(2))
    return Net(convs, [nn.Linear(3136, 256), nn.ReLU(), nn.Linear(256, CLASSES)])


MODELS = {"lenet5": lenet5, "vgg_small": vgg_small}


def bounded_deep_taylor():
    """ZBox(0, 1) on the first conv/linear layer, ZPlus on the others (the SGLRP rule set)."""
    return SpecialFirstLayerMapComposite(
        layer_map=[(Activation, Pass()), (Convolution, ZPlus()), (nn.Linear, ZPlus())],
        first_map=[((Convolution, nn.Linear), ZBox(low=0.0, high=1.0))],
    )


def one_hot(logits, t):
    return nn.functional.one_hot(t, logits.shape[1]).to(logits.dtype)


def softmax_gradient(logits, t):
    y = logits.softmax(1)
    return y.gather(1, t[:, None]) * (one_hot(logits, t) - y)


def target_score(logits, t):
    return logits.gather(1, t[:, None]) * one_hot(logits, t)


class Cell:
    """A timed job: builds its composites once (as a long-lived explainer would)."""

    def __init__(self, method, model):
        self.method, self.model, self.hooks = method, model, []
        composite = {
            "lrp-epsilon-plus": EpsilonPlus,
            "lrp-epsilon-alpha2-beta1": EpsilonAlpha2Beta1,
            "lrp-epsilon-gamma-box": lambda: EpsilonGammaBox(low=0.0, high=1.0),
            "sglrp": bounded_deep_taylor,
            "clrp2": bounded_deep_taylor,
        }.get(method)
        self.dual = None
        if method == "clrp2":
            # CLRP2's dual model: the output layer's weights and bias negated.
            self.dual = copy.deepcopy(model)
            last = [m for m in self.dual.modules() if isinstance(m, nn.Linear)][-1]
            with torch.no_grad():
                last.weight.neg_()
                last.bias.neg_()
        for m in (model, self.dual):
            if composite is not None and m is not None:
                c = composite()
                c.register(m)
                self.hooks.append(c)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-6) if method == "train-step" else None

    def close(self):
        for c in self.hooks:
            c.remove()

    @staticmethod
    def vjp(model, x, seed_fn):
        x = x.detach().requires_grad_(True)
        logits = model(x)
        t = logits.argmax(1)
        seed = seed_fn if torch.is_tensor(seed_fn) else seed_fn(logits.detach(), t)
        (g,) = torch.autograd.grad(logits, x, grad_outputs=seed)
        return g, seed

    def __call__(self, x):
        m = self.method
        if m == "forward":
            with torch.no_grad():
                return self.model(x)
        if m == "train-step":
            self.optimizer.zero_grad()
            logits = self.model(x)
            loss = nn.functional.cross_entropy(logits, torch.arange(x.shape[0]) % CLASSES)
            loss.backward()
            self.optimizer.step()
            return loss
        if m == "sglrp":
            return self.vjp(self.model, x, softmax_gradient)[0]
        if m == "clrp2":
            g, seed = self.vjp(self.model, x, target_score)
            return (g - self.vjp(self.dual, x, seed)[0]).clamp(min=0)
        return self.vjp(self.model, x, one_hot)[0]  # gradient and lrp-*


def median_ms(fn, min_runs, min_seconds):
    fn()  # warm-up
    times, start = [], time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < min_seconds and len(times) < 1000):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def relprop_cell_ms(binary, name, method, n, seconds):
    """relprop's median ms for one cell, from `relprop bench` on that cell alone."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cell.csv")
        subprocess.run([binary, "bench", "--models", name, "--batch-sizes", str(n), "--methods", method,
                        "--min-seconds", str(seconds), "--csv", out],
                       check=True, stdout=subprocess.DEVNULL)
        with open(out) as f:
            return float(next(csv.DictReader(f))["ms"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="lenet5,vgg_small")
    p.add_argument("--batch-sizes", default="1,32,64,256")
    p.add_argument("--methods", default="forward,gradient,lrp-epsilon-plus,lrp-epsilon-alpha2-beta1,"
                                        "lrp-epsilon-gamma-box,sglrp,clrp2,train-step")
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--relprop", help="CSV written by `relprop bench --csv`")
    p.add_argument("--relprop-bin", help="relprop binary: time its side cell by cell, interleaved")
    p.add_argument("--relprop-csv", help="with --relprop-bin: also write relprop's timings as CSV")
    p.add_argument("--csv", help="also write the reference timings as CSV")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    ours = {}
    if a.relprop:
        with open(a.relprop) as f:
            for r in csv.DictReader(f):
                ours[(r["model"], r["method"], int(r["batch"]))] = float(r["ms"])
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| model | method | batch | PyTorch + Zennit ms | relprop ms | ratio (reference / relprop) |")
    print("|---|---|---:|---:|---:|---:|")
    for name in a.models.split(","):
        model = MODELS[name]().eval()
        for n in map(int, a.batch_sizes.split(",")):
            x = torch.rand(n, 1, 28, 28)
            for method in a.methods.split(","):
                cell = Cell(method, model)
                runs = 5 if n >= 256 else 10
                if a.relprop_bin:
                    # relprop, PyTorch, relprop, PyTorch: each side's figure is the mean of
                    # its two medians, taken within seconds of the other side's.
                    half = a.min_seconds / 2
                    mine_runs, ref_runs = [], []
                    for _ in range(2):
                        mine_runs.append(relprop_cell_ms(a.relprop_bin, name, method, n, half))
                        ref_runs.append(median_ms(lambda: cell(x), runs, half))
                    ours[(name, method, n)] = statistics.mean(mine_runs)
                    ms = statistics.mean(ref_runs)
                else:
                    ms = median_ms(lambda: cell(x), runs, a.min_seconds)
                cell.close()
                mine = ours.get((name, method, n))
                ratio = f"{ms / mine:.2f}x" if mine else ""
                mine_s = f"{mine:.2f}" if mine else ""
                print(f"| {name} | {method} | {n} | {ms:.2f} | {mine_s} | {ratio} |", flush=True)
                rows.append((name, method, n, ms))
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["model", "method", "batch", "ms"])
            w.writerows(rows)
    if a.relprop_bin and a.relprop_csv:
        with open(a.relprop_csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["model", "method", "batch", "ms"])
            w.writerows([(m, meth, n, ms) for (m, meth, n), ms in ours.items()])


if __name__ == "__main__":
    main()
