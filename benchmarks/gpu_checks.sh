#!/usr/bin/env bash
# Every GPU figure the open issues ask for, as one command for a lent GPU machine (no Qt, no
# network there): the full-size random checkpoint is built once, then
#   decode.py           fast engine (CUDA graph) vs transformers per frame, greedy codes compared
#                       over 50 frames, voice prompt reused;
#   streaming_batch.py  time to first audio with a 10 s voice prompt, a 5-sentence text batched
#                       (padded to a bucket, one CUDA graph per bucket) against its longest
#                       sentence alone and the sentences one after another;
#   self-test           what `doctor --self-test` prints (run without the CLI: the device
#                       machine has no platformdirs or Qt), as JSON.
# Each step has its own time limit, so what finished comes back even if a later step does not.
#
#   on the device:  PYTHONPATH=. bash benchmarks/gpu_checks.sh "$OUT"
#   here, to try the script on the CPU with the small checkpoint:
#                   PY=.venv/bin/python PYTHONPATH=. bash benchmarks/gpu_checks.sh /tmp/g --small
set -uo pipefail
out=${1:?usage: gpu_checks.sh OUT_DIR [--small]}
py=${PY:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
  $py -c 'import torch, transformers; print("torch", torch.__version__, "cuda",
torch.version.cuda, "available", torch.cuda.is_available(), "transformers", transformers.__version__)'
} | tee "$out/environment.txt"

shape=FULL frames=250 greedy=50
if [ "${2:-}" = --small ]; then shape=SMALL frames=40 greedy=20; fi
ckpt=$(mktemp -d)/ckpt
timeout 240 $py -c "
import sys, time
from pathlib import Path
from desktop_app.inference.random_checkpoint import $shape, build_random_checkpoint
started = time.perf_counter()
build_random_checkpoint(Path(sys.argv[1]), $shape)
print(f'built the $shape random checkpoint in {time.perf_counter() - started:.1f} s')
" "$ckpt" 2>&1 | tee "$out/build.log" || exit 1

timeout 300 $py benchmarks/decode.py --model "$ckpt" --frames $frames --prompt-seconds 10 \
  --check-greedy $greedy --json "$out/decode.json" 2>&1 | grep -v "Loading weights" | tee "$out/decode.log"
timeout 300 $py benchmarks/streaming_batch.py --model "$ckpt" --prompt-seconds 10 \
  --json "$out/streaming-batch.json" 2>&1 | grep -v "Loading weights" | tee "$out/streaming-batch.log"
timeout 180 $py -c "
import json, sys
from pathlib import Path
from desktop_app.inference.fast_engine import FastEngine
from desktop_app.inference.self_test import run_self_test
report = run_self_test(FastEngine(Path(sys.argv[1]), 'auto'), 'random ' + '$shape'.lower())
print(report.table())
Path(sys.argv[2]).write_text(json.dumps(report.as_json(), indent=2))
" "$ckpt" "$out/self-test.json" 2>&1 | grep -v "Loading weights" | tee "$out/self-test.log"
