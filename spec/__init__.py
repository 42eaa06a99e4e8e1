"""Ansim Interop specification data (JSON Schemas, examples), installed as the ansim_spec package."""
