"""Mixed precision for training: bf16 autocast where the hardware runs it natively.

bf16 keeps fp32's exponent range, so no loss scaling is needed (unlike fp16); GPUs without
bf16 (before Ampere) train in fp32.
"""

from __future__ import annotations

import contextlib

import torch

from faceswap_gan.device import cpu_supports_bf16


def training_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The autocast dtype for this device, or None for plain fp32."""
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
