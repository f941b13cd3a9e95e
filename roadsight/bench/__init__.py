"""Benchmark suites: `roadsight bench suites=[sim,...]` measures side by side in one run."""
