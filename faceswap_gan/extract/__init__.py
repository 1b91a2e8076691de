"""The extract stage: video or image folder -> aligned per-speaker crops + alignments."""
