"""Training speed of the ResNet50 on this CPU: fp32, bf16 autocast, bf16 autocast + torch.compile.

Prints images/s of full training steps (forward, backward, AdamW) for each precision, measured in
one run on the same random batches, channels_last, at each input size asked for. A benchmark, not a
test: the ratios in one run are what to read (these machines are shared and noisy).

    python bench/bench_train_step.py [--sizes 40x256,64x384] [--batch 32] [--threads 2] [--seconds 40]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bytehoven_desktop.training.model import ResNet50  # noqa: E402
from bytehoven_desktop.training.precision import autocast, resolve  # noqa: E402


def cpu_flags() -> str:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return platform.processor()
    wanted = [f for f in flags if f.startswith(("amx", "avx512_bf16", "avx512f"))]
    return " ".join(sorted(wanted)) or "no AVX-512 / AMX"


def rate(precision: str, compiled: bool, h: int, w: int, batch: int, seconds: float) -> tuple[float, float]:
    torch.manual_seed(0)
    net = ResNet50(20).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    model = torch.compile(net) if compiled else net
    x = torch.randn(batch, 1, h, w).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 20, (batch,))

    def step() -> None:
        with autocast(precision):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step()  # warm-up (compilation happens here)
    step()
    warm = time.perf_counter() - t0
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * batch / (time.perf_counter() - t0), warm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="40x256,64x384")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, CPU flags: {cpu_flags()}; "
          f"train --precision auto takes {resolve('auto')} here")
    results = []
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.lower().split("x"))
        configs = [("fp32", False), ("bf16", False)] + ([] if args.no_compile else [("bf16", True)])
        base = None
        for precision, compiled in configs:
            r, warm = rate(precision, compiled, h, w, args.batch, args.seconds)
            base = base or r
            name = precision + (" + compile" if compiled else "")
            print(f"{h}x{w} {name:15s} {r:7.1f} images/s  x{r / base:.2f} vs fp32  (first two steps {warm:.1f} s)",
                  flush=True)
            results.append({"size": size, "precision": name, "images_per_s": round(r, 2),
                            "vs_fp32": round(r / base, 3), "warmup_s": round(warm, 1)})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
