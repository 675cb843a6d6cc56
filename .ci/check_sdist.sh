#!/usr/bin/env bash
# Builds the source distribution, installs it into a fresh venv (torch first, then the sdist with
# --no-build-isolation, as the README installs), imports it and runs one op of each family, from
# a folder outside the checkout so the installed copy is the one imported.
set -euo pipefail
python=${1:-python}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip install -q build
"$python" -m build --sdist --no-isolation --outdir "$work/dist" . > "$work/build.log" 2>&1 || { tail -30 "$work/build.log"; exit 1; }
sdist=$(ls "$work"/dist/*.tar.gz)
echo "sdist: $(basename "$sdist") ($(tar tzf "$sdist" | wc -l) files, $(tar tzf "$sdist" | grep -c '^[^/]*/csrc/') under csrc/)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q -U pip setuptools
"$work/venv/bin/pip" install -q torch==2.13.0 ninja numpy
"$work/venv/bin/pip" install -q --no-build-isolation "$sdist" > "$work/install.log" 2>&1 || { tail -30 "$work/install.log"; exit 1; }
cd "$work"
"$work/venv/bin/python" - <<'PY'
import torch, pyprune_ext as pp
assert "site-packages" in pp.__file__, pp.__file__
x, y = torch.randn(4, 10, 6), torch.randint(0, 3, (4, 10))
assert pp.information_scores(x, y, 3).transfer_entropy.shape == (6,)
assert pp.channel_scores(torch.randn(2, 3, 4), torch.randn(2, 3, 4))["fisher"].shape == (3,)
layer = pp.SparseLinear(8, 5, density=0.5)
assert layer(torch.randn(2, 8)).shape == (2, 5)
assert pp.global_topk_masks([torch.randn(10)], [torch.randn(10)], sparsity=0.5)[0].sum() == 5
assert pp.label_regions(torch.ones(1, 3, 3, dtype=torch.bool))[1].tolist() == [1]
print("sdist install: one op of each family ran, from", pp.__file__)
PY
