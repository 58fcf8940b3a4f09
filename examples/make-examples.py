#!/usr/bin/env python3
"""Writes the example PNGs of examples/ (see examples/README.md), every one
deterministic, from the real MNIST test set (build/data/mnist, `make data`):

  digit-<i>-<label>.png  MNIST test images, as scripts/mnist-png.py writes them
  drawn-<label>.png      a digit drawn with a round pen, dark on a white 280x280
                         pad (the demo page's size), anti-aliased
  photo-<label>.png      a real MNIST digit as if photographed on paper: pen-blue
                         ink, rotated a few degrees, on greyish textured paper
                         under uneven light, RGB
  blank-page.png         the same paper and light with nothing on it
  texture.png            a woven-fabric texture, RGB: no digit

usage: examples/make-examples.py [--data build/data/mnist] [--out examples]
Standard library only; the pseudo-random parts use a fixed seed.
"""
import argparse
import math
import os
import random
import struct
import subprocess
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (MNIST test index) of the plain digits; their labels come from the set.
MNIST_INDICES = (0, 1, 2, 3)
# MNIST test index of the photographed-looking digit.
PHOTO_INDEX = 7
# The drawn digit: a 3 as pen strokes in a 280x280 pad, two arcs.
DRAWN_LABEL = 3


def png(pixels, width, height, channels):
    """8-bit gray (channels 1) or RGB (3) PNG from row-major samples."""
    def chunk(kind, body):
        c = struct.pack(">I", len(body)) + kind + body
        return c + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    stride = width * channels
    raw = b"".join(b"\x00" + bytes(pixels[r * stride:(r + 1) * stride]) for r in range(height))
    color_type = 0 if channels == 1 else 2
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def mnist(data, index):
    """(784 pixel values, label) of MNIST test image index."""
    with open(os.path.join(data, "t10k-images-idx3-ubyte"), "rb") as f:
        images = f.read()
    with open(os.path.join(data, "t10k-labels-idx1-ubyte"), "rb") as f:
        labels = f.read()
    if struct.unpack(">I", images[:4])[0] != 0x803 or struct.unpack(">I", labels[:4])[0] != 0x801:
        sys.exit(f"make-examples.py: error: {data}: not MNIST IDX files")
    return images[16 + 784 * index:16 + 784 * (index + 1)], labels[8 + index]


def clamp8(v):
    return 0 if v < 0 else 255 if v > 255 else int(round(v))


# ---- a drawn digit ----------------------------------------------------------------

def arc(cx, cy, r, a0, a1, n=24):
    """Points on a circle arc, angles in degrees (0 = right, 90 = down)."""
    return [(cx + r * math.cos(math.radians(a0 + (a1 - a0) * k / n)),
             cy + r * math.sin(math.radians(a0 + (a1 - a0) * k / n))) for k in range(n + 1)]


def seg_distance(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy or 1)
    t = 0 if t < 0 else 1 if t > 1 else t
    return math.hypot(px - ax - t * dx, py - ay - t * dy)


def drawn_three(side=280, pen=9.0):
    """A 3 drawn as two arcs with a round pen of radius `pen` px: ink
    coverage per pixel from the distance to the strokes (1 px soft edge)."""
    strokes = [arc(140, 92, 52, -160, 90), arc(140, 190, 56, -90, 160)]
    segments = [(p[i], p[i + 1]) for p in strokes for i in range(len(p) - 1)]
    reach = pen + 1
    out = bytearray(side * side)
    for y in range(side):
        for x in range(side):
            px, py = x + 0.5, y + 0.5
            d = min((seg_distance(px, py, a[0], a[1], b[0], b[1]) for a, b in segments
                     if min(a[0], b[0]) - reach < px < max(a[0], b[0]) + reach
                     and min(a[1], b[1]) - reach < py < max(a[1], b[1]) + reach), default=99.0)
            cover = 0.0 if d >= pen + 0.5 else 1.0 if d <= pen - 0.5 else pen + 0.5 - d
            out[y * side + x] = clamp8(255 - cover * (255 - 24))  # near-black ink on white
    return bytes(out)


# ---- paper, light and a photographed digit -------------------------------------

def value_noise(width, height, cell, rng):
    """Smooth noise in [-1, 1]: random values on a grid of `cell` px,
    interpolated with a smoothstep (paper fibres, blotches)."""
    gw, gh = width // cell + 2, height // cell + 2
    grid = [[rng.uniform(-1, 1) for _ in range(gw)] for _ in range(gh)]
    out = []
    for y in range(height):
        gy, fy = divmod(y / cell, 1)
        gy = int(gy)
        sy = fy * fy * (3 - 2 * fy)
        row = []
        for x in range(width):
            gx, fx = divmod(x / cell, 1)
            gx = int(gx)
            sx = fx * fx * (3 - 2 * fx)
            top = grid[gy][gx] * (1 - sx) + grid[gy][gx + 1] * sx
            bottom = grid[gy + 1][gx] * (1 - sx) + grid[gy + 1][gx + 1] * sx
            row.append(top * (1 - sy) + bottom * sy)
        out.append(row)
    return out


def paper(width, height, rng):
    """Paper brightness per pixel: greyish (about 200 of 255), lit from the
    top left (brighter there, darker towards the bottom right), with fibre
    texture and sensor grain."""
    blotch = value_noise(width, height, 23, rng)
    fibre = value_noise(width, height, 4, rng)
    out = []
    for y in range(height):
        row = []
        for x in range(width):
            light = 10.0 * (1 - (x / width + y / height))  # +10 .. -10
            row.append(200 + light + 3.0 * blotch[y][x] + 2.0 * fibre[y][x] + rng.gauss(0, 1.2))
        out.append(row)
    return out


def bilinear(img, size, x, y):
    """Sample a size x size image (flat, 0..255) at real coordinates, 0
    outside."""
    x0, y0 = math.floor(x), math.floor(y)
    fx, fy = x - x0, y - y0
    acc = 0.0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xx, yy = x0 + dx, y0 + dy
            if 0 <= xx < size and 0 <= yy < size:
                acc += wx * wy * img[yy * size + xx]
    return acc


def photo(digit, width=200, height=160, scale=4.2, degrees=8.0, seed=20261130):
    """The MNIST digit (784 values, light on dark) as ink on paper: scaled by
    `scale`, rotated by `degrees` clockwise, a little off-centre, pen-blue
    ink blended by the digit's own intensity, RGB with a warm paper tint."""
    rng = random.Random(seed)
    page = paper(width, height, rng)
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    cx, cy = width / 2 + 6, height / 2 - 4
    ink = (52, 58, 92)
    out = bytearray()
    for y in range(height):
        for x in range(width):
            # Inverse map: page pixel -> digit coordinates.
            u, v = (x + 0.5 - cx) / scale, (y + 0.5 - cy) / scale
            sx, sy = cos * u + sin * v + 14 - 0.5, -sin * u + cos * v + 14 - 0.5
            a = bilinear(digit, 28, sx, sy) / 255.0 * 0.92
            p = page[y][x]
            shade = p / 200.0  # the ink is under the same light
            for c, tint in zip(ink, (6, 2, -7)):
                out.append(clamp8((p + tint) * (1 - a) + c * shade * a))
    return bytes(out)


def blank_page(width=200, height=160, seed=20261130):
    """The photo's paper and light with no ink (the same seed: the same
    sheet)."""
    rng = random.Random(seed)
    page = paper(width, height, rng)
    return bytes(clamp8(page[y][x] + tint) for y in range(height) for x in range(width) for tint in (6, 2, -7))


def texture(width=160, height=160, seed=7):
    """A woven fabric: two sets of threads as sine ridges, each thread's
    shade varied, lit unevenly, RGB denim-like colours."""
    rng = random.Random(seed)
    warp = [rng.uniform(-18, 18) for _ in range(width // 6 + 2)]
    weft = [rng.uniform(-18, 18) for _ in range(height // 6 + 2)]
    out = bytearray()
    for y in range(height):
        for x in range(width):
            over = ((x // 6) + (y // 6)) % 2 == 0  # plain weave: which thread is on top
            if over:
                v = 120 + warp[x // 6] + 40 * math.sin(math.pi * (x % 6) / 6)
            else:
                v = 110 + weft[y // 6] + 40 * math.sin(math.pi * (y % 6) / 6)
            v += 25 * math.sin(x / 37.0) * math.cos(y / 29.0) + rng.gauss(0, 6)
            out += bytes((clamp8(v * 0.45), clamp8(v * 0.62), clamp8(v * 0.95)))
    return bytes(out)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    print(f"{os.path.relpath(path)}: {len(data)} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "build", "data", "mnist"))
    ap.add_argument("--out", default=HERE)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    # The plain MNIST digits: exactly what scripts/mnist-png.py writes.
    args = [sys.executable, os.path.join(ROOT, "scripts", "mnist-png.py"), "--data", a.data, "--out", a.out]
    for i in MNIST_INDICES:
        args += ["--index", str(i)]
    subprocess.run(args, check=True)
    for i in MNIST_INDICES:
        print(f"{os.path.relpath(os.path.join(a.out, f'digit-{i}-{mnist(a.data, i)[1]}.png'))}: MNIST t10k[{i}]")
    write(os.path.join(a.out, f"drawn-{DRAWN_LABEL}.png"), png(drawn_three(), 280, 280, 1))
    digit, label = mnist(a.data, PHOTO_INDEX)
    write(os.path.join(a.out, f"photo-{label}.png"), png(photo(digit), 200, 160, 3))
    write(os.path.join(a.out, "blank-page.png"), png(blank_page(), 200, 160, 3))
    write(os.path.join(a.out, "texture.png"), png(texture(), 160, 160, 3))


if __name__ == "__main__":
    main()
