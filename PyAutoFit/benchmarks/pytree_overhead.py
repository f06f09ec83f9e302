"""
Pytree overhead of a model instance, against a flat parameter vector.

Measures, side by side in one process and interleaved over rounds, on the MGE lens model
of `jax_profiling/imaging/mge.py` (15 free parameters, 40 linear Gaussians sharing their
centre and ell_comps priors):

1. a jitted trivial function of the instance, called with the same instance every time
   and with a fresh instance every call (as a fitting loop passes them: each new to
   JAX, made by `instance_from_vector` or by `tree_unflatten(treedef, vector)`), against
   the same function of the flat vector;
2. the floor: the same function of a tuple of 15 NumPy floats (the leaves an instance
   gives), what JAX itself costs to take 15 scalar leaves in, whatever the flatten does;
3. a vector unflattened inside the trace (`tree_unflatten(treedef, v)`, a search handing
   its vector to a function that works on named objects) against
   `instance_from_vector(v, xp=jnp)` inside the trace (what `Fitness.call` does);
4. `tree_flatten` and `tree_unflatten` of the instance;
5. one iteration of a fitting loop that gets a new NumPy vector and calls the jitted
   function: with the vector itself, with `tree_unflatten(treedef, vector)` made eagerly,
   and with `model.instance_from_vector(vector)` made eagerly (what building the instance
   costs, against what passing it costs).

The trivial function does almost no work, so what is timed is what JAX does per call to
get the arguments in: flatten the pytree, check the cache key, move the leaves.

Run: python PyAutoFit/benchmarks/pytree_overhead.py [--rounds N] [--calls N] [--fresh-calls N]
     [--loop-calls N]
Writes PyAutoFit/benchmarks/results/pytree_overhead.json.
"""
import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_X64", "True")

import autofit as af
import autolens as al
import jax
import jax.numpy as jnp
import numpy as np


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


def per_call_us(function, argument, calls):
    start = time.perf_counter()
    for _ in range(calls):
        function(argument)
    return (time.perf_counter() - start) / calls * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument(
        "--loop-calls", type=int, default=50,
        help="iterations per round of each fitting loop (vector -> instance -> jitted call)",
    )
    parser.add_argument(
        "--fresh-calls", type=int, default=400,
        help="fresh instances per round (each built by instance_from_vector, ~12 ms)",
    )
    args = parser.parse_args()

    model = mge_model()
    vector = model.physical_values_from_prior_medians
    instance = model.instance_from_vector(vector)
    jnp_vector = jnp.asarray(vector)
    rng = np.random.default_rng(1)

    def fresh_instances(count):
        return [
            model.instance_from_vector(
                model.vector_from_unit_vector(rng.uniform(0.3, 0.7, model.prior_count))
            )
            for _ in range(count)
        ]

    # Each round's fresh instances are new to JAX, as a fitting loop's are.
    fresh = [fresh_instances(args.fresh_calls) for _ in range(args.rounds)]
    floats = tuple(np.float64(v) for v in vector)

    leaves, treedef = jax.tree_util.tree_flatten(instance)
    assert len(leaves) == model.prior_count

    traces = []  # one trace (one compile) for every instance of the model
    f_instance = jax.jit(lambda i: traces.append(1) or i.galaxies.lens.mass.einstein_radius * 2.0)
    f_vector = jax.jit(lambda v: v[8] * 2.0)
    f_floats = jax.jit(lambda t: t[8] * 2.0)
    f_unflatten = jax.jit(
        lambda v: jax.tree_util.tree_unflatten(treedef, list(v)).galaxies.lens.mass.einstein_radius * 2.0
    )
    f_from_vector = jax.jit(
        lambda v: model.instance_from_vector(v, xp=jnp).galaxies.lens.mass.einstein_radius * 2.0
    )
    for f, argument in (
        (f_instance, instance), (f_vector, jnp_vector), (f_floats, floats),
        (f_unflatten, jnp_vector), (f_from_vector, jnp_vector),
    ):
        f(argument).block_until_ready()
    for each in fresh_instances(3):
        f_instance(each)
    assert len(traces) == 1, "every instance of the model shares one compile"
    assert float(f_unflatten(jnp_vector)) == float(f_from_vector(jnp_vector))

    rounds = {
        "jit_same_instance_us": [],
        "jit_fresh_instance_us": [],
        "jit_fresh_unflattened_instance_us": [],
        "jit_vector_us": [],
        "jit_floor_15_numpy_floats_us": [],
        "jit_unflatten_in_trace_us": [],
        "jit_instance_from_vector_in_trace_us": [],
        "flatten_us": [],
        "unflatten_us": [],
        "loop_vector_us": [],
        "loop_tree_unflatten_us": [],
        "loop_instance_from_vector_us": [],
    }

    def loop_us(step, calls):
        """One iteration of a fitting loop: a new NumPy vector in, the jitted call out."""
        units = rng.uniform(0.3, 0.7, (calls, model.prior_count))
        vectors = [np.asarray(model.vector_from_unit_vector(u)) for u in units]
        start = time.perf_counter()
        for v in vectors:
            step(v)
        return (time.perf_counter() - start) / calls * 1e6
    for round_fresh in fresh:
        arguments = iter(round_fresh)
        rounds["jit_same_instance_us"].append(per_call_us(f_instance, instance, args.calls))
        rounds["jit_fresh_instance_us"].append(
            per_call_us(lambda _: f_instance(next(arguments)), None, args.fresh_calls)
        )
        made = [
            jax.tree_util.tree_unflatten(treedef, list(np.asarray(model.vector_from_unit_vector(u))))
            for u in rng.uniform(0.3, 0.7, (args.fresh_calls, model.prior_count))
        ]
        unflattened = iter(made)
        rounds["jit_fresh_unflattened_instance_us"].append(
            per_call_us(lambda _: f_instance(next(unflattened)), None, args.fresh_calls)
        )
        rounds["jit_vector_us"].append(per_call_us(f_vector, jnp_vector, args.calls))
        rounds["jit_floor_15_numpy_floats_us"].append(per_call_us(f_floats, floats, args.calls))
        rounds["jit_unflatten_in_trace_us"].append(per_call_us(f_unflatten, jnp_vector, args.calls))
        rounds["jit_instance_from_vector_in_trace_us"].append(
            per_call_us(f_from_vector, jnp_vector, args.calls)
        )
        rounds["flatten_us"].append(per_call_us(jax.tree_util.tree_flatten, instance, args.calls))
        rounds["unflatten_us"].append(
            per_call_us(lambda l: jax.tree_util.tree_unflatten(treedef, l), leaves, args.calls // 4)
        )
        rounds["loop_vector_us"].append(loop_us(f_vector, args.loop_calls))
        rounds["loop_tree_unflatten_us"].append(
            loop_us(lambda v: f_instance(jax.tree_util.tree_unflatten(treedef, list(v))), args.loop_calls)
        )
        rounds["loop_instance_from_vector_us"].append(
            loop_us(lambda v: f_instance(model.instance_from_vector(v)), args.loop_calls)
        )

    medians = {key: statistics.median(values) for key, values in rounds.items()}
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, jax {jax.__version__}",
        "model": "mge.py lens model",
        "free_parameters": model.prior_count,
        "leaves": len(leaves),
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "fresh_instances_per_round": args.fresh_calls,
        "median_us": medians,
        "ratio_same_instance_over_vector": medians["jit_same_instance_us"] / medians["jit_vector_us"],
        "ratio_fresh_instance_over_vector": medians["jit_fresh_instance_us"] / medians["jit_vector_us"],
        "ratio_unflatten_over_instance_from_vector_in_trace": (
            medians["jit_unflatten_in_trace_us"] / medians["jit_instance_from_vector_in_trace_us"]
        ),
        "per_round_us": rounds,
    }
    for key, value in medians.items():
        print(f"{key:>38}: {value:8.1f} us")
    print(f"{'leaves':>38}: {len(leaves)} ({model.prior_count} free parameters)")
    for key in [k for k in result if k.startswith("ratio")]:
        print(f"{key}: {result[key]:.2f}")

    out = Path(__file__).parent / "results" / "pytree_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
