#!/usr/bin/env bash
# The CUDA paths, checked in one run on a machine with one NVIDIA GPU (never run so far: no GPU was lent).
#
#   bash tools/gpu_check.sh [OUT_DIR]        # ~5-8 minutes on one modern GPU; writes OUT_DIR/gpu_check.log
#
# Each step prints PASS/FAIL and its figures; the script goes on after a failure and
# exits non-zero if any step failed. Steps: environment, fp16 and bf16 AMP training
# (fp16 with the grad scaler) with channels_last, a 1-GPU DDP run over nccl, resume of
# a stopped run, re-ranking and evaluation on CUDA against the CPU result, fp16
# extraction throughput against fp32, faiss-gpu if it installs.
set -u
OUT=${1:-gpu_check_out}
mkdir -p "$OUT"
# the repo's venv when it imports torch, else the machine's python3 (a GPU box may carry its own CUDA torch)
if [ -z "${PY:-}" ]; then
  if .venv/bin/python -c "import torch" 2>/dev/null; then PY=.venv/bin/python; else PY=python3; fi
fi
case $PY in */*) case $PY in /*) ;; *) PY="$PWD/$PY" ;; esac ;; esac  # absolute: steps may change folder
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # reid importable without an editable install
if [ -z "${REID:-}" ]; then  # an executable (torchrun --no-python needs one), whichever python runs it
  REID="$OUT/reid"
  printf '#!/bin/sh\nexec "%s" -c "from reid.cli import main; main()" "$@"\n' "$PY" > "$REID"
  chmod +x "$REID"
fi
LOG="$OUT/gpu_check.log"
: > "$LOG"
FAILED=0
step() {  # step NAME TIMEOUT_S COMMAND...
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  echo "=== $name" | tee -a "$LOG"
  if timeout "$limit" "$@" >> "$LOG" 2>&1; then
    echo "PASS $name ($((SECONDS - start)) s)" | tee -a "$LOG"
  else
    echo "FAIL $name (exit $?, $((SECONDS - start)) s; see $LOG)" | tee -a "$LOG"
    FAILED=1
  fi
}

step "environment" 60 "$PY" -c "
import torch
assert torch.cuda.is_available(), 'no CUDA device visible'
p = torch.cuda.get_device_properties(0)
print(torch.__version__, torch.version.cuda, p.name, round(p.total_memory / 2**30, 1), 'GiB',
      'bf16' if torch.cuda.is_bf16_supported() else 'no bf16', 'nccl', torch.distributed.is_nccl_available())
"

DATA="$OUT/data"
step "synthetic data" 300 "$REID" data synth --out "$DATA/synthetic-market" --identities 60 --seed 0

COMMON=(data.root="$DATA" train.epochs=2 train.eval_every=0 train.eval_before=false train.device=cuda
        train.snapshot_epochs=[] train.tensorboard=false data.workers=2)
step "train fp16 AMP + grad scaler + channels_last" 600 \
  "$REID" train -c configs/demo.yaml --output "$OUT/fp16" --quiet "${COMMON[@]}" train.amp=fp16 train.channels_last=true
step "train bf16 AMP + channels_last" 600 \
  "$REID" train -c configs/demo.yaml --output "$OUT/bf16" --quiet "${COMMON[@]}" train.amp=bf16 train.channels_last=true
step "finite losses in both AMP runs" 30 "$PY" -c "
import json, math, sys
for run in ('$OUT/fp16', '$OUT/bf16'):
    rows = [json.loads(l) for l in open(run + '/metrics.jsonl')]
    losses = [r['loss'] for r in rows if 'loss' in r]
    print(run, 'losses', losses[:3], '...', losses[-1:])
    assert losses and all(math.isfinite(v) for v in losses), run
"
step "1-GPU DDP (nccl) via torchrun" 600 \
  "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 --no-python "$REID" train -c configs/demo.yaml \
  --output "$OUT/ddp" --quiet "${COMMON[@]}" train.dist_backend=nccl train.amp=bf16
step "resume: 1 epoch, then --resume to 2" 900 bash -c "
  '$REID' train -c configs/demo.yaml --output '$OUT/resume' --quiet ${COMMON[*]} train.epochs=1 &&
  '$REID' train --resume '$OUT/resume' --quiet train.epochs=2 &&
  test -f '$OUT/resume/checkpoints/last.pt'"

step "re-ranking + evaluation on CUDA equal the CPU" 600 "$PY" - <<'PY'
import time
import numpy as np
import torch
from reid.evaluation import evaluate_features
from reid.inference import k_reciprocal
rng = np.random.default_rng(0)
ids = rng.integers(0, 751, 19281)
centres = rng.standard_normal((751, 2048)).astype(np.float32)
x = centres[ids] + 1.5 * rng.standard_normal((19281, 2048)).astype(np.float32)
q, g = x[:3368], x[3368:]
for dev in ("cuda", "cpu"):
    torch.cuda.synchronize()
    t = time.perf_counter()
    out = k_reciprocal(q, g, device=dev)
    torch.cuda.synchronize()
    print(dev, "re-ranking Market size", round(time.perf_counter() - t, 2), "s",
          "peak GPU MB" if dev == "cuda" else "", round(torch.cuda.max_memory_allocated() / 2**20) if dev == "cuda" else "")
    if dev == "cuda":
        gpu = out
diff = np.abs(gpu - out).max()
print("max |cuda - cpu|", diff)
assert diff < 1e-4
cams = rng.integers(0, 6, 19281)
t = time.perf_counter()
r = evaluate_features(torch.from_numpy(q).cuda(), torch.from_numpy(g).cuda(), ids[:3368], ids[3368:], cams[:3368], cams[3368:])
print("evaluate_features from CUDA tensors", round(time.perf_counter() - t, 2), "s mAP", r.mAP)
PY

step "fp16 extraction throughput vs fp32 (ResNet-50 256x128, batch 64)" 600 "$PY" - <<'PY'
import time
import numpy as np
import torch
from reid.config import ModelConfig
from reid.data.transforms import Preprocess
from reid.inference.extractor import FeatureExtractor
from reid.models import build_model
# the FeatureExtractor path users call: uint8 crops of mixed sizes -> OpenCV batch -> CUDA, fp16 vs fp32
rng = np.random.default_rng(0)
crops = [rng.integers(0, 256, (int(rng.integers(100, 320)), int(rng.integers(40, 140)), 3), dtype=np.uint8) for _ in range(512)]
net = build_model(ModelConfig(backbone="resnet50", pretrained=False), num_classes=10).eval()
feats = {}
for half in (False, True):
    ex = FeatureExtractor.from_model(net, Preprocess(256, 128), "cuda", batch_size=64, half=half)
    assert ex.backend == "torch", ex.backend
    ex(crops[:64])
    torch.cuda.synchronize()
    t = time.perf_counter()
    feats[half] = ex(crops)
    print("FeatureExtractor", "fp16" if half else "fp32", round(len(crops) / (time.perf_counter() - t)), "images/s")
cos = (feats[True] * feats[False]).sum(1).min()
print("FeatureExtractor min cosine fp16 vs fp32", cos)
assert cos > 0.999
model = build_model(ModelConfig(backbone="resnet50", pretrained=False), num_classes=10).cuda().eval().to(memory_format=torch.channels_last)
x = torch.randn(64, 3, 256, 128, device="cuda").to(memory_format=torch.channels_last)
res = {}
for name, ctx in (("fp32", torch.autocast("cuda", enabled=False)), ("fp16", torch.autocast("cuda", dtype=torch.float16))):
    with torch.inference_mode(), ctx:
        for _ in range(5):
            f = model(x)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(20):
            f = model(x)
        torch.cuda.synchronize()
        res[name] = (20 * 64 / (time.perf_counter() - t), f.float())
for name, (ips, _) in res.items():
    print(name, round(ips), "images/s")
cos = torch.nn.functional.cosine_similarity(res["fp16"][1], res["fp32"][1]).min().item()
print("min cosine fp16 vs fp32", cos)
assert cos > 0.999
PY

# faiss-gpu in its own folder: installed beside faiss-cpu, both would own the `faiss` module
FAISS_GPU="$OUT/faiss_gpu"
if timeout 300 "$PY" -m pip install --quiet --target "$FAISS_GPU" faiss-gpu-cu12 >> "$LOG" 2>&1; then
  step "faiss-gpu flat search equals faiss-cpu" 300 env PYTHONPATH="$FAISS_GPU:$PYTHONPATH" "$PY" - <<'PY'
import time
import faiss
import numpy as np
print("faiss", faiss.__version__, "GPUs", faiss.get_num_gpus())
assert faiss.get_num_gpus() > 0
x = np.random.default_rng(0).standard_normal((200_000, 512)).astype(np.float32)
q = x[:1000]
cpu = faiss.IndexFlatL2(512); cpu.add(x)
gpu = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, cpu)
t = time.perf_counter(); _, i_gpu = gpu.search(q, 100); print("gpu search", round(time.perf_counter() - t, 3), "s")
_, i_cpu = cpu.search(q, 100)
agreement = (i_gpu == i_cpu).mean()
print("top-100 agreement", agreement)
assert agreement > 0.99  # ties in float32 distances may swap neighbours
PY
else
  echo "SKIP faiss-gpu (faiss-gpu-cu12 does not install here: offline or no wheel)" | tee -a "$LOG"
fi

echo "done: $( [ $FAILED = 0 ] && echo all passed || echo some steps FAILED ) - log $LOG"
exit $FAILED
