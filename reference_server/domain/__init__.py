"""Domain logic of the reference center, one sub-package per area; cross-area calls go through ports."""
