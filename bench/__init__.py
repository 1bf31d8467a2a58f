"""Benchmarks: data and load generators, the baselines measured beside symptrack, and `make bench`."""
