"""Incident statistics (spec §18): daily aggregates, small-count suppression, before/after a zone."""
