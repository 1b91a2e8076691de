"""Measuring a swap against ground truth (``faceswap eval``); see docs/parts/eval.md."""
