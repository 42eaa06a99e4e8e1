"""The video-access area: grants, signed stream tokens and the hash-chained access record (spec §12)."""
