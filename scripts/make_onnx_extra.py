#!/usr/bin/env python3
"""More "bring your own model" cases beyond the public ONNX fixtures: other architectures, input sizes,
class counts, seeds and both exporters, with PyTorch + Zennit references made by the reference script
`make_onnx_cases.py` of the benchmark folder (same semantics, same methods).

usage: PYTHONPATH=<folder of make_onnx_cases.py> python scripts/make_onnx_extra.py DEST_DIR
"""
import sys

import make_onnx_cases as base
from torch import nn


class Flat(nn.Module):
    """x.view(x.size(0), -1): the legacy exporter writes Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""

    def forward(self, x):
        return x.view(x.size(0), -1)


def strided(ref):
    # 2x30x30, stride-2 conv, average pooling, dropout, sigmoid and tanh activations, a view-flatten, 5 classes
    return nn.Sequential(
        nn.Conv2d(2, 8, 5, stride=2, padding=2), nn.Tanh(), nn.AvgPool2d(3),
        nn.Conv2d(8, 16, 3, padding=1), nn.Sigmoid(), nn.Dropout(0.3),
        Flat(), nn.Linear(16 * 5 * 5, 20), nn.ReLU(), nn.Linear(20, 5))


def wide_resnet(ref):
    # 3x20x20, residual blocks with BatchNorm on bias-free convs, 12 classes, softmax in the graph
    def block(c):
        return base.Residual(nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)), ref)
    return nn.Sequential(
        nn.Conv2d(3, 10, 3, padding=1, bias=False), nn.BatchNorm2d(10), nn.ReLU(),
        block(10), nn.ReLU(), nn.MaxPool2d(2), block(10), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(10, 12), base.Head(not ref))


def dilated(ref):
    # 1x26x22 (not square), dilated and depthwise convs with a channel multiplier, ReLU6, 4 classes
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=2, dilation=2), nn.ReLU6(),
        nn.Conv2d(6, 12, 3, padding=1, groups=6), nn.ReLU(), nn.MaxPool2d(2),
        base.TwoBranch(12, 4, 6), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(10 * 6 * 5, 4))


base.SETS["extra"] = {
    "strided_legacy": (strided, (2, 30, 30), 5, 311, "legacy"),
    "strided_dynamo": (strided, (2, 30, 30), 5, 312, "dynamo"),
    "wide_resnet_legacy": (wide_resnet, (3, 20, 20), 12, 313, "legacy"),
    "wide_resnet_dynamo": (wide_resnet, (3, 20, 20), 12, 314, "dynamo"),
    "mobile_net_legacy": (base.mobile_net, (3, 32, 32), 10, 315, "legacy"),
    "dilated_dynamo": (dilated, (1, 26, 22), 4, 316, "dynamo"),
    "bn_cnn_dynamo": (base.bn_mlp_cnn, (3, 24, 24), 10, 317, "dynamo"),
}

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "extra", sys.argv[1]]
    base.main()
