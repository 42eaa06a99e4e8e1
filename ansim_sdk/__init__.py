"""Ansim Interop Python SDK: validation helpers and the `ansim` command line."""
