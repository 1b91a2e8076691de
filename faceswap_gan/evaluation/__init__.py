"""Measuring a swap (``faceswap eval``): against a ground truth, or against the source for real
footage; see docs/DESIGN.md ("Eval") and the module docstrings (run.py is the entry)."""
