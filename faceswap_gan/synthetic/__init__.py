"""Synthetic sample footage: speakers animated from portraits, with a face-swap truth."""
