#!/usr/bin/env python3
"""Writes the small seed corpora under tests/fuzz/corpus/ (committed; rerun
only to change them). PNG seeds: the fixtures of tests/data/png plus tiny
hand-built files in every colour type and depth, and broken kinds. Config
seeds: the shipped file and edge cases. safetensors seeds: a valid 3-layer
model in the bnn-serve/1 layout and broken kinds (bad shape, dtype, offsets,
sigma <= 0, NaN, truncation, header length overflow)."""
import json, os, shutil, struct, zlib

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))

def out(kind, name, data):
    d = os.path.join(here, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# ---- PNG ----
def chunk(t, data):
    return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data) & 0xffffffff)

def png(w, h, depth, ctype, rows, extra=b"", interlace=0, plte=None, trns=None):
    s = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace))
    if plte is not None:
        s += chunk(b"PLTE", plte)
    if trns is not None:
        s += chunk(b"tRNS", trns)
    s += extra
    s += chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + r for r in rows)))
    return s + chunk(b"IEND", b"")

src = os.path.join(root, "tests", "data", "png")
for f in sorted(os.listdir(src)):
    if f.endswith(".png"):
        shutil.copy(os.path.join(src, f), os.path.join(here, "corpus", "fuzz_png", f))

W = H = 8
gray = [[(x * 32 + y * 8) & 255 for x in range(W)] for y in range(H)]
def pack(vals, depth):
    bits = "".join(format(v, "0%db" % depth) for v in vals)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
for depth in (1, 2, 4, 8, 16):
    L = (1 << depth) - 1
    if depth == 16:
        rows = [b"".join(struct.pack(">H", v * 257) for v in r) for r in gray]
    else:
        rows = [pack([v * L // 255 for v in r], depth) for r in gray]
    out("fuzz_png", "gray%d.png" % depth, png(W, H, depth, 0, rows))
    if depth <= 8:
        plte = b"".join(bytes([i * 255 // L] * 3) for i in range(L + 1))
        out("fuzz_png", "palette%d.png" % depth,
            png(W, H, depth, 3, [pack([v * L // 255 for v in r], depth) for r in gray], plte=plte,
                trns=bytes(range(0, 256, max(1, 256 // (L + 1))))[: L + 1]))
out("fuzz_png", "graya8.png", png(W, H, 8, 4, [bytes(sum(([v, 255 - v] for v in r), [])) for r in gray]))
out("fuzz_png", "rgb8_trns_gama.png", png(W, H, 8, 2, [bytes(sum(([v, v, 255 - v] for v in r), [])) for r in gray],
                                          extra=chunk(b"gAMA", struct.pack(">I", 45455)) +
                                          chunk(b"tEXt", b"Comment\x00seed")),
    )
out("fuzz_png", "rgba16.png", png(W, H, 16, 6, [b"".join(struct.pack(">HHHH", v * 257, v * 257, 0, 65535 - v) for v in r) for r in gray]))
out("fuzz_png", "one_pixel.png", png(1, 1, 8, 0, [b"\x80"]))
out("fuzz_png", "wide_1x300.png", png(300, 1, 1, 0, [pack([1, 0] * 150, 1)]))
ok = png(W, H, 8, 0, [bytes(r) for r in gray])
out("fuzz_png", "two_idat.png", ok[:33] + chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + bytes(r) for r in gray))[:10])
    + chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + bytes(r) for r in gray))[10:]) + chunk(b"IEND", b""))
out("fuzz_png", "filter_types.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 0, 0, 0, 0))
    + chunk(b"IDAT", zlib.compress(b"".join(bytes([y % 5]) + bytes(gray[y]) for y in range(H)))) + chunk(b"IEND", b""))

# ---- config ----
with open(os.path.join(root, "config", "bnn-serve.conf"), "rb") as f:
    out("fuzz_config", "shipped.conf", f.read())
out("fuzz_config", "small.conf", b"port = 9000\nworkers=2 # two\nhost = \"a # b\"\nmax_body_bytes = 2MiB\nlog_format = json\n")
out("fuzz_config", "crlf.conf", b"# c\r\naccess_log = off\r\ndefault_interval = 0.9\r\n\r\n")
out("fuzz_config", "bad_key.conf", b"port = 1\nprot = 2\n")
out("fuzz_config", "bad_value.conf", b"max_samples = 10k\n")
out("fuzz_config", "env.txt", b"BNN_SERVE_PORT=1\nBNN_SERVE_MAX_SAMPLES=7\nBNN_SERVE_DEFAULT_SAMPLES=7\nOTHER=1\n")
out("fuzz_config", "quoted.conf", b"model = \"/a \\\"b\\\" \\\\ c\"\ncors_origins = *\n")

# ---- safetensors ----
def safetensors(tensors, meta, header_patch=None, data_patch=None):
    header, blob = {}, b""
    for name, shape, values in tensors:
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    if meta is not None:
        header["__metadata__"] = meta
    if header_patch:
        header_patch(header)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    if data_patch:
        blob = data_patch(blob)
    return struct.pack("<Q", len(h)) + h + blob

dims = [4, 3, 2]
def model(sigma=0.1, nan=False):
    t = []
    for i in range(len(dims) - 1):
        n_in, n_out = dims[i], dims[i + 1]
        mu = [((k * 7) % 11 - 5) / 10 for k in range(n_in * n_out)]
        if nan and i == 1:
            mu[0] = float("nan")
        t.append(("layers.%d.kernel_loc" % i, [n_in, n_out], mu))
        t.append(("layers.%d.kernel_scale" % i, [n_in, n_out], [sigma] * (n_in * n_out)))
        t.append(("layers.%d.bias_loc" % i, [n_out], [0.01] * n_out))
        t.append(("layers.%d.bias_scale" % i, [n_out], [sigma] * n_out))
    return t
meta = {"format": "bnn-serve/1", "activation": "relu", "input": "mnist-28x28-gray", "prior_scale": "1.0"}
good = safetensors(model(), meta)
out("fuzz_safetensors", "valid_4_3_2.safetensors", good)
out("fuzz_safetensors", "no_metadata.safetensors", safetensors(model(), None))
out("fuzz_safetensors", "wrong_format.safetensors", safetensors(model(), dict(meta, format="other/2")))
out("fuzz_safetensors", "sigma_zero.safetensors", safetensors(model(sigma=0.0), meta))
out("fuzz_safetensors", "sigma_negative.safetensors", safetensors(model(sigma=-0.5), meta))
out("fuzz_safetensors", "sigma_tiny.safetensors", safetensors(model(sigma=1e-30), meta))
out("fuzz_safetensors", "nan_mu.safetensors", safetensors(model(nan=True), meta))
def bad_shape(h): h["layers.1.kernel_loc"]["shape"] = [3, 3]
out("fuzz_safetensors", "bad_shape.safetensors", safetensors(model(), meta, header_patch=bad_shape))
def bad_dtype(h): h["layers.0.bias_loc"]["dtype"] = "F16"
out("fuzz_safetensors", "bad_dtype.safetensors", safetensors(model(), meta, header_patch=bad_dtype))
def bad_offsets(h): h["layers.0.kernel_loc"]["data_offsets"] = [0, 1 << 40]
out("fuzz_safetensors", "bad_offsets.safetensors", safetensors(model(), meta, header_patch=bad_offsets))
def overlap(h): h["layers.0.bias_scale"]["data_offsets"] = h["layers.0.bias_loc"]["data_offsets"]
out("fuzz_safetensors", "overlapping.safetensors", safetensors(model(), meta, header_patch=overlap))
out("fuzz_safetensors", "truncated.safetensors", good[: len(good) - 20])
out("fuzz_safetensors", "header_len_huge.safetensors", struct.pack("<Q", (1 << 64) - 1) + good[8:])
out("fuzz_safetensors", "header_not_json.safetensors", struct.pack("<Q", 8) + b"{not js}")
out("fuzz_safetensors", "empty_header.safetensors", struct.pack("<Q", 2) + b"{}")

# ---- request parsers (first byte selects the parser; see fuzz_request.c) ----
import base64
tiny = png(1, 1, 8, 0, [b"\x80"])
b64 = base64.b64encode(tiny)
req = {
    "query.bin": b"\x00samples=100&interval=0.9&seed=42&mode=lrt",
    "query_bad.bin": b"\x00samples=0&interval=2&mode=magic&seed=-1&bogus=1",
    "query_seed_max.bin": b"\x00seed=9007199254740991&mode=weights",
    "ctype_png.bin": b"\x01image/png",
    "ctype_multipart.bin": b"\x01multipart/form-data; boundary=----x",
    "ctype_json.bin": b"\x01Application/JSON; charset=utf-8",
    "b64.bin": b"\x02" + b64,
    "b64_url_data.bin": b"\x02data:image/png;base64," + base64.urlsafe_b64encode(tiny).rstrip(b"="),
    "b64_bad.bin": b"\x02QUJD*REVG===",
    "json.bin": b"\x03" + json.dumps({"image": b64.decode(), "samples": 10, "interval": 0.8, "seed": 7,
                                      "mode": "lrt"}).encode(),
    "json_bad.bin": b"\x03" + json.dumps({"image": 5, "samples": "x"}).encode(),
    "json_batch.bin": b"\x04" + json.dumps({"images": [b64.decode()] * 3, "samples": 20}).encode(),
    "json_batch_too_many.bin": b"\x04" + json.dumps({"images": [b64.decode()] * 9}).encode(),
}
def mp(fields):
    s = b""
    for k, piece in fields:
        s += bytes([len(k)]) + k + bytes([len(piece)]) + piece
    return s
req["multipart.bin"] = b"\x05" + mp([(b"samples", b"12"), (b"image", tiny[:30]), (b"image", tiny[30:]),
                                      (b"mode", b"weights")])
req["multipart_batch.bin"] = b"\x06" + mp([(b"image", tiny), (b"seed", b"5"), (b"image", tiny)])
req["multipart_bad.bin"] = b"\x05" + mp([(b"file", b"abc"), (b"image", b"")])
for name, data in req.items():
    out("fuzz_request", name, data)

# ---- raw pixels for prep_to_mnist: [width lo, width hi] + rows ----
def raw(w, rows):
    return struct.pack("<H", w - 1) + bytes(v for r in rows for v in r)
digit = open(os.path.join(root, "build", "data", "mnist", "t10k-images-idx3-ubyte"), "rb").read()[16:16 + 784] \
    if os.path.exists(os.path.join(root, "build", "data", "mnist", "t10k-images-idx3-ubyte")) else bytes(784)
d = [list(digit[r * 28:(r + 1) * 28]) for r in range(28)]
out("fuzz_preprocess", "mnist_28x28.bin", raw(28, d))
out("fuzz_preprocess", "mnist_inverted.bin", raw(28, [[255 - v for v in r] for r in d]))
page = [[255] * 60 for _ in range(40)]
for y in range(28):
    for x in range(28):
        page[y + 6][x + 20] = 255 - d[y][x]
out("fuzz_preprocess", "page_60x40.bin", raw(60, page))
out("fuzz_preprocess", "line_300x3.bin", raw(300, [[255] * 300, [255] * 10 + [0] * 280 + [255] * 10, [255] * 300]))
out("fuzz_preprocess", "one_pixel.bin", raw(1, [[0]]))
out("fuzz_preprocess", "dot_3x3.bin", raw(3, [[0, 0, 0], [0, 255, 0], [0, 0, 0]]))

# ---- Open Inference Protocol requests (first byte selects; see fuzz_v2.c) ----
def v2_bin(header, binary):
    """Mode 1: header length as 2 little-endian bytes, then JSON + binary."""
    h = json.dumps(header, separators=(",", ":")).encode()
    return b"\x01" + struct.pack("<H", len(h)) + h + binary
def elements(items):
    return b"".join(struct.pack("<I", len(b)) + b for b in items)
img_bin = elements([tiny, tiny])
v2 = {
    "image_binary.bin": v2_bin({"id": "a", "parameters": {"seed": 1, "samples": 10, "binary_data_output": True},
                                "inputs": [{"name": "image", "datatype": "BYTES", "shape": [2],
                                            "parameters": {"binary_data_size": len(img_bin)}}]}, img_bin),
    "image_binary_short.bin": v2_bin({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                                  "parameters": {"binary_data_size": 99}}]}, elements([tiny])),
    "image_json.bin": b"\x00" + json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                                        "parameters": {"content_type": "base64"},
                                                        "data": [b64.decode()]}],
                                            "outputs": [{"name": "mean", "parameters": {"binary_data": True}},
                                                        {"name": "uncertain_reasons"}]}).encode(),
    "pixels_uint8_nested.bin": b"\x00" + json.dumps({"inputs": [{"name": "pixels", "datatype": "UINT8",
                                                                 "shape": [1, 28, 28],
                                                                 "data": [[[(r + c) % 256 for c in range(28)]
                                                                           for r in range(28)]]}],
                                                     "parameters": {"mode": "weights", "interval": 0.9}}).encode(),
    "pixels_fp32_binary.bin": v2_bin({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 28, 28],
                                                  "parameters": {"binary_data_size": 784 * 4}}],
                                      "outputs": [{"name": "prediction_set", "parameters": {"binary_data": True}},
                                                  {"name": "preprocessing", "parameters": {"binary_data": True}}]},
                                     struct.pack("<784f", *[(i % 7) / 6 for i in range(784)])),
    "header_len_text.bin": b"\x02\x0312a{\"inputs\":[]}",
    "bad_params.bin": b"\x00" + json.dumps({"parameters": {"samples": 0, "seed": -1},
                                            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                                        "data": ["AAAA"]}]}).encode(),
    "path_infer.bin": b"\x03/v2/models/mnist-bnn/versions/0123456789ab/infer",
    "path_load.bin": b"\x03/v2/repository/models/mnist-bnn/load",
    "path_health.bin": b"\x03/v2/health/ready",
}
for name, data in v2.items():
    out("fuzz_v2", name, data)
