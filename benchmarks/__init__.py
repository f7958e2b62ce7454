"""Benchmarks that print figures (not timed tests). Results and commands: benchmarks/RESULTS.md."""
