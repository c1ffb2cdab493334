#!/usr/bin/env bash
# Set up (first run) and build the one-folder bundle into dist/csm-studio/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"
scripts/setup.sh test
start=$(date +%s)
.venv/bin/pyinstaller --noconfirm --log-level WARN build.spec
echo "built dist/csm-studio in $(($(date +%s) - start)) s: $(du -sh dist/csm-studio | cut -f1)," \
  "$(find dist/csm-studio | wc -l) files"
