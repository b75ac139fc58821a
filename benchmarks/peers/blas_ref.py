#!/usr/bin/env python3
"""A strong BLAS on the same cores, for the step benchmark and `gnnbatch profile --blas`
(issue 27): float32 C = A @ B through numpy (Debian's numpy calls the system
libblas, OpenBLAS where libopenblas0 is installed), on the shapes given as
MxNxK arguments (C is M x N, the product has K terms). Thread count: the caller
sets OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS). Prints one JSON line:
  {"available": true, "library": "...", "numpy": "...", "threads": "2",
   "shapes": [{"m":..,"n":..,"k":..,"gflops":best,"samples":[...]}]}
or {"available": false, "reason": "..."} when numpy cannot be imported.
Each shape: `--rounds` samples, each the best of `--reps` timed products after
a warm-up; the best sample is the figure.
"""
import json
import os
import sys
import time


def blas_library():
    """The BLAS shared object numpy's process mapped (from /proc/self/maps)."""
    try:
        with open('/proc/self/maps') as f:
            libs = sorted({line.split()[-1] for line in f if 'blas' in line.lower() or 'blis' in line.lower() or 'mkl' in line.lower()})
        real = sorted({os.path.realpath(p) for p in libs if p.startswith('/')})
        return ', '.join(real) if real else 'unknown'
    except OSError:
        return 'unknown'


def main(argv):
    rounds, reps, shapes = 3, 5, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == '--rounds':
            rounds = int(argv[i + 1]); i += 2; continue
        if a == '--reps':
            reps = int(argv[i + 1]); i += 2; continue
        m, n, k = (int(x) for x in a.lower().split('x'))
        shapes.append((m, n, k))
        i += 1
    try:
        import numpy as np
    except ImportError as e:  # absent: the caller says so in its report
        print(json.dumps({'available': False, 'reason': 'numpy cannot be imported (%s); install python3-numpy and libopenblas0' % e}))
        return 0
    out = []
    rng = np.random.default_rng(0)
    for (m, n, k) in shapes:
        a = rng.random((m, k), dtype=np.float32)
        b = rng.random((k, n), dtype=np.float32)
        c = np.empty((m, n), dtype=np.float32)
        np.matmul(a, b, out=c)
        samples = []
        for _ in range(rounds):
            best = float('inf')
            for _ in range(reps):
                t0 = time.perf_counter()
                np.matmul(a, b, out=c)
                best = min(best, time.perf_counter() - t0)
            samples.append(2.0 * m * n * k / best / 1e9)
        out.append({'m': m, 'n': n, 'k': k, 'gflops': max(samples), 'samples': samples})
    print(json.dumps({'available': True, 'library': blas_library(), 'numpy': np.__version__,
                      'threads': os.environ.get('OPENBLAS_NUM_THREADS', ''), 'shapes': out}))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
