"""Derivation tooling: generate code, JSON Schemas and buf images from proto/ (the single source of truth)."""
