"""
JAX Profiling: A Second Run With JAX's Persistent Compilation Cache
===================================================================

JAX can keep compiled programs on disk (`jax_compilation_cache_dir`), so a second run of a script (a notebook
restarted, a search resumed) loads the likelihood and its gradient instead of compiling them again. This
script runs the MGE likelihood's `jax.jit(jax.grad(likelihood))` twice, each time in a fresh process sharing
one cache folder, and reports lower / compile time of each run.

__Usage__

    python compilation_cache.py --instrument hst
"""
import json
import os
import subprocess
import sys
import tempfile
import time

from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shared profiling_util and gradients_util

if "--child" in sys.argv:
    os.environ["JAX_ENABLE_X64"] = "True"
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_compilation_cache_dir", sys.argv[sys.argv.index("--child") + 1])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)

    import imaging_util
    import profiling_util as util

    instrument = sys.argv[sys.argv.index("--instrument") + 1]
    dataset = imaging_util.load_dataset(instrument)
    model = imaging_util.mge_model()
    instance = util.on_device(model.instance_from_vector(vector=imaging_util.reference_vector(model)))
    timing = util.time_jit(jax.grad(imaging_util.likelihood_function(dataset)), instance, repeats=0)
    print(json.dumps(util.timings_only(timing)))
    sys.exit(0)

import imaging_util
import profiling_util as util

parser = util.OneLineArgumentParser(description=__doc__.split("\n")[1])
imaging_util.add_instrument_argument(parser)
args = parser.parse_args()

runs = []
with tempfile.TemporaryDirectory() as cache:
    for run in ("first", "second"):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, "--child", cache, "--instrument", args.instrument],
            capture_output=True, text=True, check=True,
        )
        timing = json.loads(out.stdout.strip().splitlines()[-1])
        timing["process_s"] = time.perf_counter() - start
        runs.append(timing)
        print(f"  {run} run: jit(grad) lower {timing['lower_s']:.2f} s, compile {timing['compile_s']:.2f} s "
              f"(process {timing['process_s']:.1f} s)")

summary = {"instrument": args.instrument, "first_run": runs[0], "second_run": runs[1],
           "compile_first_over_second": runs[0]["compile_s"] / runs[1]["compile_s"]}
out = imaging_util.RESULTS_DIR / f"compilation_cache_mge_{args.instrument}.json"
out.write_text(json.dumps(summary, indent=2) + "\n")
print(f"\n  results: {out}")
