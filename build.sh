#!/usr/bin/env bash
# Set up (first run) and build the one-folder bundle into dist/csm-studio/.
#   ./build.sh          the CPU build (torch's CPU wheel, from .venv)
#   ./build.sh --gpu    the GPU build into dist-gpu/csm-studio/ (CUDA torch, from .venv-gpu)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"
if [ "${1:-}" = --gpu ]; then
  scripts/setup.sh gpu-build
  venv=.venv-gpu dist=dist-gpu work=build/gpu
else
  scripts/setup.sh test
  venv=.venv dist=dist work=build/cpu
fi
start=$(date +%s)
$venv/bin/pyinstaller --noconfirm --log-level WARN --distpath $dist --workpath $work build.spec
echo "built $dist/csm-studio in $(($(date +%s) - start)) s: $(du -sh $dist/csm-studio | cut -f1)," \
  "$(find $dist/csm-studio | wc -l) files"
