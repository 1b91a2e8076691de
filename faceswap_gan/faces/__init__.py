"""Face stages shared by extract, render, translate and eval: detect, track, smooth, align, mask."""
