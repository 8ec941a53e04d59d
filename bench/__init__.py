"""Benchmarks and soak scripts; each prints its figures and has a --quick mode."""
