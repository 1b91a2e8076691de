"""Video I/O through PyAV: threaded decode with timestamps and rotation, H.264 encode, audio copy."""
