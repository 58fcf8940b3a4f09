#!/bin/bash
# Regenerates the robustness report: runs bnn-robust on a calibrated weights
# file (MNIST test set clean, 15 MNIST-C-style corruptions, rotations,
# Fashion-MNIST, pictures without a digit; each through the daemon's path,
# with the model alone beside it), plots the figures with the gnuplot
# scripts in docs/, and writes docs/report.md (the method, and the numbers
# and findings bnn-robust generates) and docs/robust.json.
#   scripts/report.sh [BUILD_DIR]
# Environment: MODEL (model/weights/mnist-bnn.safetensors; its metadata must
# carry the policy that bnn-train or bnn-calibrate --write-meta writes), DATA
# (build/data/mnist), FASHION (Debian's Fashion-MNIST test images), SAMPLES
# (T of the daemon's path; default: the T the policy was calibrated at, the
# daemon's default), MODEL_ONLY_SAMPLES (T of the model alone; default
# SAMPLES), LIMIT (images per set, all), ROT_LIMIT (images per angle, 2000),
# THREADS (2), SEED (1); REUSE=1 skips bnn-robust and re-plots / re-writes
# the report from the data of the last run in BUILD_DIR/report.
# The full run is ~400,000 predictions at T = 100: 10-15 min on 2 free cores.
set -euo pipefail
build=${1:-build}
model=${MODEL:-model/weights/mnist-bnn.safetensors}
data=${DATA:-build/data/mnist}
fashion=${FASHION:-/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz}
rot_limit=${ROT_LIMIT:-2000}
threads=${THREADS:-2}
seed=${SEED:-1}
plots="$build/report"
prog=report.sh

die() { echo "$prog: error: $*" >&2; exit 1; }
command -v gnuplot >/dev/null || die "gnuplot not found (apt-get install gnuplot-nox)"
[ -x "$build/bnn-robust" ] || die "$build/bnn-robust not built (make all)"
[ -f "$model" ] || die "model $model not found (make train, or MODEL=...)"
[ -f "$data/t10k-images-idx3-ubyte" ] || die "MNIST not found in $data (make data)"
[ -f "$fashion" ] || die "Fashion-MNIST not found at $fashion (apt-get install dataset-fashion-mnist)"
mkdir -p "$plots" docs

args=(--model "$model" --data "$data" --fashion "$fashion" --threads "$threads" --seed "$seed"
      --rotation-limit "$rot_limit" --json docs/robust.json --plots "$plots" --markdown "$plots/numbers.md")
[ -n "${SAMPLES:-}" ] && args+=(--samples "$SAMPLES")
[ -n "${MODEL_ONLY_SAMPLES:-}" ] && args+=(--model-only-samples "$MODEL_ONLY_SAMPLES")
[ -n "${LIMIT:-}" ] && args+=(--limit "$LIMIT")
start=$(date +%s)
if [ "${REUSE:-0}" = 1 ] && [ -f "$plots/numbers.md" ]; then
    echo "$prog: REUSE=1: plotting the data of the last run in $plots" >&2
else
    "$build/bnn-robust" "${args[@]}"
fi

figures=(gallery example reliability corruptions rotation ood selective)
for fig in "${figures[@]}"; do
    gnuplot -e "dir='$plots'; out='docs/$fig.png'" "docs/$fig.gp" || die "gnuplot docs/$fig.gp failed"
done

{
cat <<'END_OF_TEXT'
# Is the uncertainty worth having? — robustness report

Regenerate with `make report` (scripts/report.sh; figures by the gnuplot
scripts docs/*.gp from the data files bnn-robust writes). Every number below
is also in docs/robust.json, and every sentence that states a result is
generated from the numbers by bnn-robust (model/lab/study_markdown.c).

**What is measured is what callers get.** Each picture goes the daemon's
whole way, through the one function the daemon runs (model/answer.c): the
canonicalisation (model/preprocess.c: polarity, background and contrast,
specks, the ink's box scaled to 20 px and centred by centre of mass - or the
verdict that there is no digit), T Monte-Carlo passes, then the abstain rule
and the conformal prediction set of the policy stored in the weights'
metadata (model/decide.c). "Model alone" is the network on pixel/255
without the canonicalisation, beside it for comparison only.

Corrupted sets are our C reimplementation of MNIST-C (Mu & Gilmer 2019),
"MNIST-C-style": the official files cannot be downloaded here and an exact
byte match is impossible anyway (RNG, skimage and ImageMagick versions).
Metrics as Ovadia et al. 2019: ECE with 15 equal-width bins of the max mean
probability; NLL of the mean prediction; interval width = upper - lower of
the predicted class's 2.5-97.5 % percentile interval over the T passes;
entropy = H[mean p], aleatoric = E[H[p]], epistemic = their difference
(mutual information), all in nats.

## Figures

| figure | file | what it shows |
|---|---|---|
| 0 | [gallery.png](gallery.png) | the first 8 test digits clean and under each of the 15 corruptions (same seed as the numbers), as sent to the daemon |
| 1 | [example.png](example.png) | the blog's figure: per-class mean probability with 2.5-97.5 % whiskers for a clean test digit answered right, beside its corrupted copy answered wrong, chosen as the most uncertain such copy, with the abstain rule's verdicts |
| 2 | [reliability.png](reliability.png) | reliability diagram of the clean test set (15 bins, as the ECE) |
| 3 | [corruptions.png](corruptions.png) | per corruption, clean first: accuracy beside the model alone's, the shares of wrong answers and of all answers flagged, mean interval width, mean epistemic |
| 4 | [rotation.png](rotation.png) | rotated test digits, 0-180 degrees: accuracy (and the model alone's), ECE, share flagged, mean epistemic |
| 5 | [ood.png](ood.png) | histograms of predictive entropy and of epistemic, MNIST vs Fashion-MNIST |
| 6 | [selective.png](selective.png) | accuracy when abstaining on the x % most uncertain answers, by epistemic and by entropy, and the share of clean digits the policy flags |

## Numbers and findings

END_OF_TEXT
cat "$plots/numbers.md"
cat <<'END_OF_TEXT'

## The abstain rule and the prediction sets

An answer is flagged `uncertain` when the picture holds no digit, or when
its predictive entropy or its epistemic part is above its threshold
(model/decide.h). `bnn-calibrate --write-meta` (and `bnn-train`, after
training) fits the two thresholds on the 5,000 validation digits - the last
of MNIST's training split, which training never fits, and never the test
set - so that a stated share of them is flagged (5 % by default), choosing
the split between entropy and epistemic that flags the most wrong answers;
it stores them in the weights' metadata, where the daemon reads them. "The
flag rate" above shows what other shares would have cost and caught.

The prediction sets are split conformal on the same validation digits: the
set at level 1 - alpha holds every digit whose mean probability is at least
1 - q, q the ceil((n + 1)(1 - alpha))-th smallest of 1 - p(true label). It
holds the true label with probability >= 1 - alpha only for pictures
exchangeable with the calibration digits, that is clean MNIST-like digits.
Under shift there is no guarantee; the per-set coverage column measures how
much of it is left.

## Notes on the method

* T passes per image as stated above; by default the T the policy was
  calibrated at, which is the daemon's default T, so the flag rates are
  those callers see. The mutual information estimated from T passes is
  biased low for small T, so thresholds belong to the T they were
  calibrated at.
* The rotation sweep uses the first ROT_LIMIT test digits per angle, so its
  0-degree row may differ slightly from the clean row.
* Each image's Monte-Carlo noise is addressed by (seed, image index), so a
  corrupted image and its clean original see the same noise: the per-set
  differences come from the images, not from the draws.
* Pictures without a digit: half blank pages at grey levels spread over
  0-255, half uniform noise (Philox); each should be flagged.
* Selective prediction abstains on the most uncertain answers first (ties by
  index); "pooled" is the clean set plus the 15 corrupted sets, where the
  uncertainty also has to rank shifted inputs.
* AUROC is exact (Mann-Whitney U with average ranks for ties), Fashion-MNIST
  as positives; "1 - max mean probability" is the usual non-Bayesian
  baseline score.

## Deviations from MNIST-C (corruptions.py)

Each corruption uses the default severity of its function in corruptions.py.
Randomness is Philox (model/rng.h) addressed by (seed, corruption, image
index), so a corrupted image does not depend on order, threads or --limit.
What differs (also documented in model/lab/corrupt.h):

* All: computed in double on x / 255 and written back as round(clip(x)·255);
  numpy's astype(uint8) truncates.
* shot_noise: Poisson by inversion of one uniform (exact distribution,
  different draws).
* impulse_noise: each pixel independently replaced with probability 0.17,
  salt or pepper 50/50 (skimage >= 0.19); older skimage drew exact counts of
  coordinates with replacement.
* motion_blur: ImageMagick's one-sided kernel (width 21, sigma 3) applied in C
  to the 8-bit image, edge pixels replicated; no PNG round trip (lossless).
* Everything else follows corruptions.py (read at google-research/mnist-c
  commit aa07569) line by line.

How close: with the same random draws fed to the verbatim Python code
(skimage 0.19.3, numpy 1.24, Debian 12), glass_blur, spatter, dotted_line,
zigzag and ImageNet-C's plasma fractal (fog) give byte-identical images on
the first 20 test digits; canny_edges, shear and rotate are byte-identical on
200 digits; scale and brightness differ by at most 1 grey level (rounding);
motion_blur is within 1 grey level of ImageMagick 6.9's `-motion-blur 10x3+A`.
shot_noise and impulse_noise have the same distributions with different
draws. The Python cross-check is a one-off (skimage is not a dependency); the
repository's tests re-check rotation, stripe, brightness and translate in
plain Python (tests/integration/test_robust_tools.py).

The paper's per-corruption CNN table was not available to us, so no published
numbers are quoted; compare each corruption with clean above.
END_OF_TEXT
echo
if [ "${REUSE:-0}" = 1 ]; then
    echo "Re-plotted by scripts/report.sh (REUSE=1) from the data of the last full run."
else
    echo "Generated by scripts/report.sh in $(( $(date +%s) - start )) s on $(nproc) cores."
fi
} > docs/report.md
echo "$prog: wrote docs/report.md, docs/robust.json and docs/{$(IFS=,; echo "${figures[*]}")}.png"
