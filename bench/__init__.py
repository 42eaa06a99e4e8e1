"""Benchmarks of the reference implementation against same-run baselines (issue 6); see README.md."""
