"""The arithmetic a training step runs in: fp32, or bf16 autocast (CPU matrix units where there are any)."""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX). Without it torch emulates
    bf16: a ResNet50 step at 40 x 256 took 37 s in bf16 against 2.5 s in fp32 on an AVX2-only host."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    try:
        return any(check() for check in checks if check is not None)
    except RuntimeError:
        return False


def resolve(precision: str) -> str:
    """``auto`` → bf16 where the CPU has native bf16 (1.8x fp32 per step on an AVX512-BF16 host), else fp32."""
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    return precision


def autocast(precision: str) -> ContextManager:
    """bf16: convolutions and matmuls in bfloat16, reductions and the loss in fp32 (torch's CPU
    autocast lists); weights and optimiser state stay fp32, so checkpoints do not change."""
    precision = resolve(precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)
