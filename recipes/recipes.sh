#!/usr/bin/env bash
# The accuracy recipes of docs/RECIPES.md, exactly as measured there: one `python -m pynet train`
# command each, timed. Writes NAME.npz (the model) and NAME.csv (the per-epoch log) in the current
# folder. Extra options are passed on (e.g. --seed 2, --root DIR).
#
#   recipes/recipes.sh mnist-5min | mnist-long | cifar10-15min [options...]
#
# The datasets are found through --root, $PYNET_DATA or ~/.cache/pynet (see docs/TRAINING.md).
set -euo pipefail
PYTHON=${PYTHON:-python3}
name=${1:-}
[ $# -gt 0 ] && shift
case "$name" in
mnist-5min)
    args=(--data mnist --layers 784,1024,1024,10 --activation relu --epochs 20 --optimizer adam --rate 0.001
          --schedule cosine --warmup 1 --input-dropout 0.2 --dropout 0.5 --seed 1 --test) ;;
mnist-long)
    args=(--data mnist --layers 784,1024,1024,10 --activation relu --epochs 100 --optimizer sgd --rate 0.05
          --momentum 0.9 --schedule cosine --warmup 1 --input-dropout 0.2 --dropout 0.5 --seed 1 --test) ;;
cifar10-15min)
    args=(--data cifar10 --layers 3072,1024,1024,10 --activation relu --epochs 30 --optimizer adam --rate 0.0005
          --schedule cosine --warmup 1 --input-dropout 0.1 --dropout 0.3 --standardize feature --seed 1 --test) ;;
*)
    echo "usage: $0 mnist-5min | mnist-long | cifar10-15min [extra train options]" >&2
    exit 2 ;;
esac
time "$PYTHON" -m pynet train "${args[@]}" --out "$name.npz" --log "$name.csv" "$@"
