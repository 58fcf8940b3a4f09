#!/usr/bin/env python3
"""Writes MNIST test image(s) as 8-bit grayscale PNG files (stdlib only).

usage: mnist-png.py [--data DIR] [--split t10k|train] --index N [--index M ...] --out PATH
With one index PATH is the file; with several it is a directory
(digit-<index>-<label>.png).
"""
import argparse
import os
import struct
import sys
import zlib


def read_idx(path, magic):
    with open(path, "rb") as f:
        data = f.read()
    got = struct.unpack(">I", data[:4])[0]
    if got != magic:
        sys.exit(f"mnist-png.py: error: {path}: expected magic {magic:#x}, got {got:#x}")
    return data


def png_gray(pixels, width, height):
    def chunk(kind, body):
        c = struct.pack(">I", len(body)) + kind + body
        return c + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(pixels[r * width:(r + 1) * width]) for r in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="build/data/mnist")
    ap.add_argument("--split", default="t10k", choices=["t10k", "train"])
    ap.add_argument("--index", type=int, action="append", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    images = read_idx(os.path.join(a.data, f"{a.split}-images-idx3-ubyte"), 0x803)
    labels = read_idx(os.path.join(a.data, f"{a.split}-labels-idx1-ubyte"), 0x801)
    n = struct.unpack(">I", images[4:8])[0]
    for i in a.index:
        if not 0 <= i < n:
            sys.exit(f"mnist-png.py: error: --index: expected 0..{n - 1}, got {i}")
    if len(a.index) > 1:
        os.makedirs(a.out, exist_ok=True)
    for i in a.index:
        px = images[16 + 784 * i:16 + 784 * (i + 1)]
        path = a.out if len(a.index) == 1 else os.path.join(a.out, f"digit-{i}-{labels[8 + i]}.png")
        with open(path, "wb") as f:
            f.write(png_gray(px, 28, 28))


if __name__ == "__main__":
    main()
