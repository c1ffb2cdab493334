#!/usr/bin/env bash
# Sets up everything CSM Studio needs, idempotently: Debian libraries (installed when run as root,
# otherwise the exact apt command is printed), a .venv with the Python packages (torch pinned to the
# CPU wheel by constraints.txt). `scripts/setup.sh app` for running the app, `scripts/setup.sh test`
# adds what the test pass (and the bundle build) needs. `scripts/setup.sh gpu-build` makes a second
# environment, .venv-gpu, with the CUDA build of torch from PyPI, for `./build.sh --gpu`.
# Re-running is quick: pip runs only when the inputs changed.
set -euo pipefail
mode=${1:-app}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

venv=.venv
constraints=constraints.txt
# The CUDA torch for the GPU bundle (PyPI's Linux wheels of 2.14.1 are built for CUDA 13.0). Not
# 2.13.0: that number also matches the local CPU wheel (2.13.0+cpu), which pip would take.
gpu_torch=2.14.1
[ "$mode" = gpu-build ] && venv=.venv-gpu

apt_app=(libportaudio2 libegl1 libgl1 libfontconfig1 libdbus-1-3 libglib2.0-0 libxkbcommon0
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0
  libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-randr0)
apt_build=(binutils) # PyInstaller reads binaries with objdump; the spec strips them
apt_test=(pulseaudio pulseaudio-utils libasound2-plugins xvfb xauth espeak-ng curl "${apt_build[@]}")
wanted=("${apt_app[@]}")
[ "$mode" = test ] && wanted+=("${apt_test[@]}")
[ "$mode" = gpu-build ] && wanted+=("${apt_build[@]}")

# --- a Python 3.11+ interpreter -------------------------------------------------------------------
py=""
for cand in python3.13 python3.12 python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 &&
    "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    py=$(command -v "$cand"); break
  fi
done
if [ -z "$py" ]; then
  echo "error: CSM Studio needs Python 3.11 or newer; on Debian: apt-get install python3" >&2
  exit 1
fi
if [ ! -x $venv/bin/python ] && ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
  wanted+=("python3-venv")
fi

# --- Debian libraries ------------------------------------------------------------------------------
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: these Debian packages are missing; install them with:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

# --- the virtual environment -----------------------------------------------------------------------
if ! $venv/bin/python -c 'import sys' 2>/dev/null; then
  rm -rf $venv
  "$py" -m venv $venv
fi
if [ "$mode" = gpu-build ]; then # the same pins, but torch's CUDA build
  constraints=$venv/constraints.txt
  { grep -v '^torch==' constraints.txt; echo "torch==$gpu_torch"; } >"$constraints"
fi
stamp_inputs=$(cat pyproject.toml "$constraints" scripts/setup.sh | sha256sum | cut -c1-16)
stamp="$stamp_inputs-$mode"
if [ "$(cat $venv/.setup-stamp 2>/dev/null)" != "$stamp" ] &&
  ! { [ "$mode" = app ] && [ "$(cat $venv/.setup-stamp 2>/dev/null)" = "$stamp_inputs-test" ]; }; then
  echo "setup: installing Python packages into $venv (first run takes a few minutes)"
  $venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  extras=""
  [ "$mode" = test ] && extras="[dev,cluster]" # the tests run batch --ray on a local Ray
  [ "$mode" = gpu-build ] && extras="[dev]"
  $venv/bin/python -m pip install -q --disable-pip-version-check -c "$constraints" -e ".$extras"
  echo "$stamp" >$venv/.setup-stamp
fi
