"""
Cost of the production path, `model.instance_from_vector`, for the MGE lens model.

The series adds one bookkeeping call per object that a model builds (a weak reference
to it, with its model). Run this script with the patched `.venv` and with the unpatched
wheels' package folders first on the path, alternately, to compare:

    for i in 1 2 3; do
        .venv/bin/python THIS
        PYTHONPATH=/path/to/unpacked/wheels .venv/bin/python THIS
    done

Prints the median time of one eager `instance_from_vector` call, in milliseconds.
"""
import os
import statistics
import sys
import time

os.environ.setdefault("JAX_ENABLE_X64", "True")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import autofit as af  # noqa: E402

from pytree_overhead import mge_model  # noqa: E402

model = mge_model()
vector = model.physical_values_from_prior_medians
model.instance_from_vector(vector)

samples = []
for _ in range(7):
    start = time.perf_counter()
    for _ in range(20):
        model.instance_from_vector(vector)
    samples.append((time.perf_counter() - start) / 20 * 1e3)

patched = hasattr(af, "values_by_path")
print(f"{'patched' if patched else 'unpatched'}: {statistics.median(samples):.2f} ms per instance_from_vector")
