#!/usr/bin/env python3
"""Checks `relprop export --format onnx` against the ONNX tools (optional; the Rust tests need no Python).

For every zoo model: export it, run `onnx.checker.check_model` (full check, with shape inference), run the
file in onnxruntime at a batch size other than the one relprop records with, and compare the logits with
`relprop predict --model NAME` on the same input.

usage: python scripts/check_onnx_export.py [PATH_TO_RELPROP_BINARY]   (needs numpy, onnx, onnxruntime)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

MODELS = ["mlp", "lenet5", "vgg_small", "vgg_small_bn", "resnet_small", "multidigit"]
BATCH = 5
TOLERANCE = 1e-5


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join("target", "release", "relprop")
    rng = np.random.default_rng(0)
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            path = os.path.join(tmp, f"{name}.onnx")
            subprocess.run([binary, "export", "--model", name, "--out", path], check=True, capture_output=True)
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            side = 56 if name == "multidigit" else 28
            x = rng.uniform(0.0, 1.0, size=(BATCH, 1, side, side)).astype(np.float32)
            xp, lp = os.path.join(tmp, f"{name}-x.npy"), os.path.join(tmp, f"{name}-logits.npy")
            np.save(xp, x)
            subprocess.run([binary, "predict", "--model", name, "--input", xp, "--out", lp],
                           check=True, capture_output=True)
            ours = np.load(lp)
            session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            (theirs,) = session.run(["logits"], {"input": x})
            err = float(np.abs(theirs - ours).max() / np.abs(ours).max())
            worst = max(worst, err)
            ops = sorted({n.op_type for n in model.graph.node})
            print(f"{name:>13}: checker ok, opset {model.opset_import[0].version}, {len(model.graph.node)} nodes "
                  f"({', '.join(ops)}), onnxruntime logits {theirs.shape} max rel diff {err:.2e}")
    print(f"worst max rel diff {worst:.2e} (tolerance {TOLERANCE:.0e})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
