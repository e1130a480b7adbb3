"""Benchmarks: a camera-like scene renderer with exact ground truth, and detection metrics."""
