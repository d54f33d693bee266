"""Benchmarks: commands, never timed tests. Each writes a JSON result under benchmarks/results/ and
BENCHMARKS.md is rebuilt from all of them."""
