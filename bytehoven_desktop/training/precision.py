"""The arithmetic a training step runs in: fp32, or bf16 autocast (CPU matrix units where there are any)."""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

PRECISIONS = ("fp32", "bf16")


def autocast(precision: str) -> ContextManager:
    """bf16: convolutions and matmuls in bfloat16, reductions and the loss in fp32 (torch's CPU
    autocast lists); weights and optimiser state stay fp32, so checkpoints do not change."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
