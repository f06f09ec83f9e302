"""
The property of `tests/test_property_jit_equals_eager.py`, run long.

Draws models and sequences of changes with the same strategies (`tests/property_models.py`)
and checks, after every change, that one jitted reader shared by the whole run reads what
the instance reads by attribute access (and that a fresh instance's leaves are its vector).
Unlike the CI test it does not stop at the first mismatch: it counts every outcome.

Prints and saves to PyAutoFit/benchmarks/results/property_long_run.json: examples,
changes applied, checks, refusals (`af.PytreeError`, by message kind), other errors (by
where and type: allowed, an error is not a wrong number, but counted) and mismatches
(wrong numbers: must be 0). Exits 1 if any mismatch was found.

Run: python PyAutoFit/benchmarks/property_long_run.py [--examples N] [--seed S] [--max-changes K]
"""
import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_X64", "True")

from hypothesis import HealthCheck, given, seed as seed_, settings, strategies as st  # noqa: E402
from hypothesis import Phase  # noqa: E402
from hypothesis.errors import HypothesisException  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "property_long_run.json"


def load_property_models():
    name = "property_models"
    spec = importlib.util.spec_from_file_location(name, HERE.parent / "tests" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run(examples: int, seed: int, max_changes: int):
    pm = load_property_models()
    tally = pm.Tally(strict=False)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=(Phase.generate,),  # no shrinking: every mismatch is counted, not minimised
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def property_(data):
        try:
            pm.run_example(data.draw, tally, max_changes=max_changes)
        except HypothesisException:
            raise
        except Exception as e:  # noqa: BLE001 - a fault of the harness or of autofit
            tally.errored("harness", e)

    seed_(seed)(property_)()  # a fixed seed makes the long run reproducible too
    return tally


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-changes", type=int, default=4)
    args = parser.parse_args()

    start = time.perf_counter()
    tally = run(args.examples, args.seed, args.max_changes)
    seconds = time.perf_counter() - start

    import autofit
    import jax

    result = {
        "requested_examples": args.examples,
        "seed": args.seed,
        **tally.as_dict(),
        "passed": tally.mismatches == 0,
        "seconds": round(seconds, 1),
        "autofit": str(Path(autofit.__file__).parent),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for key in ("examples", "changes_applied", "checks", "mismatches", "seconds"):
        print(f"{key}: {result[key]}")
    for group in ("refusals", "other_errors"):
        print(f"{group}:")
        for kind, count in result[group].items():
            print(f"  {count:6d}  {kind}")
    for text in result["mismatch_examples"][:5]:
        print("mismatch:\n  " + text.replace("\n", "\n  "))
    print(f"saved {RESULTS}")
    return 0 if tally.mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
