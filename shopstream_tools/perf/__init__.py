"""The performance regression gate (`shopstream perf-check`) and its profiler."""
