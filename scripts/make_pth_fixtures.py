#!/usr/bin/env python3
"""Writes the small PyTorch checkpoints under tests/fixtures/pth/ (optional; the tests only read them).

- mixed_zip.pth / mixed_legacy.pth: one state dict in both of torch.save's layouts (zip, and the
  legacy stream written with _use_new_zipfile_serialization=False). Its tensors exercise what the
  reader must handle: f32, f64, i64, u8, a 0-d scalar, an empty tensor, a transposed
  (non-contiguous) view, and a row view at an offset into a storage another tensor shares. Values
  follow formulas the Rust tests recompute (arange-based), so nothing is copied by hand.
- nested_zip.pth: {"state_dict": {...}, "epoch": 3}, a training checkpoint.
- lenet5_legacy.pth: the parameters of tests/fixtures/zennit/lenet5.safetensors, so a zoo model
  loaded from .pth can be compared with the same weights loaded from safetensors.

usage: python scripts/make_pth_fixtures.py   (needs torch and safetensors)
"""
import collections
import os

import torch
from safetensors.torch import load_file

OUT = os.path.join("tests", "fixtures", "pth")


def mixed():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd = collections.OrderedDict()
    sd["a"] = torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5
    sd["grid"] = base
    sd["row"] = base[1]  # offset 4 into grid's storage
    sd["t"] = base.t()  # shape [4, 3], strides [1, 4]
    sd["d"] = torch.arange(3, dtype=torch.float64) / 3.0
    sd["n"] = torch.tensor(7, dtype=torch.int64)  # like num_batches_tracked
    sd["u"] = torch.arange(4, dtype=torch.uint8) * 60
    sd["e"] = torch.zeros(0, 3)
    sd["s"] = torch.tensor(-1.25)
    return sd


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = mixed()
    torch.save(sd, os.path.join(OUT, "mixed_zip.pth"))
    torch.save(sd, os.path.join(OUT, "mixed_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"state_dict": collections.OrderedDict(a=sd["a"]), "epoch": 3}, os.path.join(OUT, "nested_zip.pth"))
    ref = load_file(os.path.join("tests", "fixtures", "zennit", "lenet5.safetensors"))
    params = collections.OrderedDict(
        (k, v.contiguous()) for k, v in ref.items() if k.startswith(("features.", "classifier."))
    )
    torch.save(params, os.path.join(OUT, "lenet5_legacy.pth"), _use_new_zipfile_serialization=False)
    for name in sorted(os.listdir(OUT)):
        path = os.path.join(OUT, name)
        back = torch.load(path, weights_only=True)
        print(f"{name}: {os.path.getsize(path)} bytes, {len(back)} entries")


if __name__ == "__main__":
    main()
