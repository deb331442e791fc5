"""Win probability, risk and explanations (issue: scoring)."""

import os

# LightGBM's OpenMP threads spin while they wait for each other (libgomp: 300,000 times before
# sleeping), burning the time slices other processes need. With both cores of a 2-core machine
# busy elsewhere, the demo's training took 14.7 s (11-29) against 6.7 s with a short spin; idle
# or with one core busy, the same (benchmarks/threads_bench.py). Set before LightGBM loads its
# OpenMP; the environment's own setting wins.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
