"""
What an instance costs at the JAX boundary, against a dict of its leaves and a flat vector.

For three instances a model built (the point-source lens: Isothermal + ExternalShear +
PointFlux, 10 parameters; the MGE lens of `jax_profiling/imaging/mge.py`, 15 parameters
and 40 linear Gaussians; 200 spherical Sersics, 1,000 parameters) it measures, side by
side in one process and interleaved over rounds:

- `tree_flatten` and `tree_unflatten` of the instance, and `hash` / `==` of its aux data
  (what JAX does with the treedef at every call: the jit cache key);
- a jitted trivial function given the instance, given a dict of the same leaves, and
  given the flat vector (what JAX itself costs to take the arguments in);
- the same jitted call for an instance whose model holds a 1000 x 1000 constant array,
  against the same model without it (a constant held by a model is static: seen if
  changed, never copied per call);

and, in child processes run alternately, `model.instance_from_vector` of the MGE model
with this series against the unpatched wheels (unpacked first on the path): what the
production path pays for the series' bookkeeping.

Run: python PyAutoFit/benchmarks/boundary_cost.py [--rounds N] [--calls N]
Writes PyAutoFit/benchmarks/results/boundary_cost.json.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_X64", "True")

import autofit as af
import autolens as al
import jax
import jax.numpy as jnp
import numpy as np

REPO = Path(__file__).resolve().parents[2]
WHEELS = REPO / "build" / "wheels"


def point_source_model():
    lens = af.Model(
        al.Galaxy, redshift=0.5, mass=af.Model(al.mp.Isothermal), shear=af.Model(al.mp.ExternalShear)
    )
    source = af.Model(al.Galaxy, redshift=1.0, point_0=af.Model(al.ps.PointFlux))
    return af.Collection(galaxies=af.Collection(lens=lens, source=source))


def mge_model(mask_radius=3.0):
    """The lens model of mge.py: Isothermal + shear + MGE lens light, MGE source."""
    lens_bulge = al.model_util.mge_model_from(
        mask_radius=mask_radius, total_gaussians=20, centre_prior_is_uniform=True
    )
    source_bulge = al.model_util.mge_model_from(
        mask_radius=mask_radius, total_gaussians=20, centre_prior_is_uniform=False
    )
    lens = af.Model(
        al.Galaxy,
        redshift=0.5,
        bulge=lens_bulge,
        mass=af.Model(al.mp.Isothermal),
        shear=af.Model(al.mp.ExternalShear),
    )
    source = af.Model(al.Galaxy, redshift=1.0, bulge=source_bulge)
    return af.Collection(galaxies=af.Collection(lens=lens, source=source))


def thousand_parameter_model():
    """200 spherical Sersics (centre, intensity, effective_radius, sersic_index)."""
    return af.Collection(**{f"sersic_{i}": af.Model(al.lp.SersicSph) for i in range(200)})


def lens_model(table=None):
    """One lens galaxy; with `table`, the model holds that array as a constant."""
    extra = {} if table is None else {"table": table}
    return af.Collection(
        lens=af.Model(al.Galaxy, redshift=0.5, mass=af.Model(al.mp.Isothermal), **extra)
    )


def per_call_us(function, argument, calls):
    start = time.perf_counter()
    for _ in range(calls):
        function(argument)
    return (time.perf_counter() - start) / calls * 1e6


def first_leaf(tree):
    return jax.tree_util.tree_leaves(tree)[0] * 2.0


def boundary_timings(name, model, calls):
    """The timings of one instance, as {measurement: function of no argument}."""
    instance = model.instance_from_prior_medians()
    other = model.instance_from_prior_medians()
    leaves, treedef = jax.tree_util.tree_flatten(instance)
    assert len(leaves) == model.prior_count, name
    aux = treedef.node_data()[1]
    other_aux = jax.tree_util.tree_structure(other).node_data()[1]
    assert aux == other_aux and hash(aux) == hash(other_aux)
    by_name = af.values_by_path(model, instance)
    vector = jnp.asarray(np.asarray(leaves, dtype=float))
    jitted = jax.jit(first_leaf)
    jitted_vector = jax.jit(lambda v: v[0] * 2.0)
    for f, argument in ((jitted, instance), (jitted, by_name), (jitted_vector, vector)):
        f(argument).block_until_ready()
    assert float(jitted(instance)) == float(jitted(by_name)) == float(jitted_vector(vector))
    return {
        "flatten_us": lambda: per_call_us(jax.tree_util.tree_flatten, instance, calls),
        "unflatten_us": lambda: per_call_us(
            lambda l: jax.tree_util.tree_unflatten(treedef, l), leaves, max(calls // 10, 10)
        ),
        "aux_hash_us": lambda: per_call_us(hash, aux, calls),
        "aux_eq_us": lambda: per_call_us(other_aux.__eq__, aux, calls),
        "jit_instance_us": lambda: per_call_us(jitted, instance, calls),
        "jit_dict_of_leaves_us": lambda: per_call_us(jitted, by_name, calls),
        "jit_flat_vector_us": lambda: per_call_us(jitted_vector, vector, calls),
    }


def constant_timings(calls):
    """A jitted call given an instance whose model holds a 1000 x 1000 constant, and without."""
    timings = {}
    for key, table in (("jit_without_constant_us", None), ("jit_with_1000x1000_constant_us", np.ones((1000, 1000)))):
        instance = lens_model(table).instance_from_prior_medians()
        jitted = jax.jit(first_leaf)
        jitted(instance).block_until_ready()
        timings[key] = (lambda f, i: lambda: per_call_us(f, i, calls))(jitted, instance)
    return timings


CHILD = """
import os, statistics, sys, time
os.environ["JAX_ENABLE_X64"] = "True"
sys.path.insert(1, {here!r})
import autofit as af
from boundary_cost import mge_model
model = mge_model()
vector = model.physical_values_from_prior_medians
model.instance_from_vector(vector)
samples = []
for _ in range(5):
    start = time.perf_counter()
    for _ in range(20):
        model.instance_from_vector(vector)
    samples.append((time.perf_counter() - start) / 20 * 1e3)
print(hasattr(af, "values_by_path"), statistics.median(samples))
"""


def instance_from_vector_ms(rounds):
    """{patched: [ms], unpatched: [ms]}, child processes run alternately."""
    times = {"patched": [], "unpatched": []}
    with tempfile.TemporaryDirectory() as unpacked:
        for wheel in sorted(WHEELS.glob("*.whl")):
            zipfile.ZipFile(wheel).extractall(unpacked)
        code = CHILD.format(here=str(Path(__file__).resolve().parent))
        for _ in range(rounds):
            for kind in ("patched", "unpatched"):
                env = dict(os.environ)
                if kind == "unpatched":
                    env["PYTHONPATH"] = unpacked + os.pathsep + env.get("PYTHONPATH", "")
                out = subprocess.run(
                    [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
                ).stdout.splitlines()[-1].split()  # the last line: the library logs to stdout
                assert out[0] == str(kind == "patched"), f"the {kind} child imported the wrong autofit"
                times[kind].append(float(out[1]))
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--production-rounds", type=int, default=5)
    args = parser.parse_args()

    models = {
        "point_source": point_source_model(),
        "mge": mge_model(),
        "thousand_parameters": thousand_parameter_model(),
    }
    timings = {name: boundary_timings(name, model, args.calls) for name, model in models.items()}
    timings["constant"] = constant_timings(args.calls)
    rounds = {name: {key: [] for key in measures} for name, measures in timings.items()}
    for _ in range(args.rounds):
        for name, measures in timings.items():
            for key, measure in measures.items():
                rounds[name][key].append(measure())
    medians = {
        name: {key: statistics.median(values) for key, values in measures.items()}
        for name, measures in rounds.items()
    }
    for name in models:
        m = medians[name]
        m["ratio_instance_over_dict"] = m["jit_instance_us"] / m["jit_dict_of_leaves_us"]
        m["ratio_instance_over_vector"] = m["jit_instance_us"] / m["jit_flat_vector_us"]
    c = medians["constant"]
    c["constant_adds_us"] = c["jit_with_1000x1000_constant_us"] - c["jit_without_constant_us"]

    production = instance_from_vector_ms(args.production_rounds)
    ratios = [p / u for p, u in zip(production["patched"], production["unpatched"])]
    medians["instance_from_vector_mge"] = {
        "patched_ms": statistics.median(production["patched"]),
        "unpatched_ms": statistics.median(production["unpatched"]),
        "ratio_patched_over_unpatched": statistics.median(ratios),
    }

    for name, values in medians.items():
        print(name)
        for key, value in values.items():
            print(f"  {key:>34}: {value:10.2f}")
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, jax {jax.__version__}",
        "free_parameters": {name: model.prior_count for name, model in models.items()},
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "median": medians,
        "per_round": rounds,
        "instance_from_vector_ms_per_round": production,
    }
    out = Path(__file__).parent / "results" / "boundary_cost.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
