#!/usr/bin/env bash
# Make .gpu/ (git-excluded) for `bench/gpu_job.sh` on a GPU machine without network: the shared kit's files (hydra,
# omegaconf and torchdata wheels, nanoGPT, setup.sh; GPU_KIT, default ../shared/gpu), plus the wheels lmlab's
# GPU features need that the GPU image lacks, for its Python 3.12 and torch 2.11: torchao (model.fp8) and
# liger-kernel. setup.sh installs every wheel in .gpu/wheels there; nothing is downloaded at run time.
set -euo pipefail
top=$(git rev-parse --show-toplevel)
kit=${GPU_KIT:-$top/../shared/gpu}
mkdir -p "$top/.gpu"
cp -r "$kit/wheels" "$kit/nanogpt" "$kit/setup.sh" "$top/.gpu/"
exclude=$(git rev-parse --path-format=absolute --git-path info/exclude)  # also right in a git worktree
mkdir -p "$(dirname "$exclude")"
grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >> "$exclude"
# torchao 0.16 is the release built against torch 2.11 (0.18 pairs with torch 2.13)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$top/.gpu/wheels" torchao==0.16.0 liger-kernel==0.8.5
echo "staged $(du -sh "$top/.gpu" | cut -f1) in .gpu/: $(ls "$top/.gpu/wheels" | tr '\n' ' ')"
