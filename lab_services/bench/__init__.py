"""Benchmarks that print numbers (`discovery-lab bench ...`); tests check behaviour, these measure speed and size."""
