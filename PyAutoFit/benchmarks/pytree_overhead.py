"""
Pytree overhead of a model instance, against a flat parameter vector.

Measures, side by side in one process and interleaved over rounds:

1. flatten and unflatten of an instance of the MGE lens model of
   `jax_profiling/imaging/mge.py` (15 free parameters, 40 linear Gaussians);
2. the per-call overhead of a jitted trivial function of the instance, `f(instance)`,
   against the same function of the flat vector, `f(vector)`;
3. the floor: the same call on a tree of the same nodes and leaves whose nodes are
   flattened by a do-nothing function (what JAX itself costs for this many nodes and
   leaves, whatever the flatten does).

The trivial function does almost no work, so what is timed is what JAX does per call
to get the arguments in: flatten the pytree, check the cache key, move the leaves.

Run: python PyAutoFit/benchmarks/pytree_overhead.py [--rounds N] [--calls N]
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


class Bare:
    """A pytree node flattened by a do-nothing function: the floor of the benchmark."""

    def __init__(self, children):
        self.children = children


jax.tree_util.register_pytree_node(Bare, lambda b: (b.children, None), lambda _, c: Bare(c))


def bare_copy(tree):
    """The same nodes and leaves as `tree`, every custom node a `Bare`."""
    if isinstance(tree, (tuple, list)):
        return type(tree)(bare_copy(child) for child in tree)
    if jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(tree)):
        return tree
    children = jax.tree_util.tree_flatten(tree, is_leaf=lambda node: node is not tree)[0]
    return Bare([bare_copy(child) for child in children])


def per_call_us(function, argument, calls):
    start = time.perf_counter()
    for _ in range(calls):
        function(argument)
    return (time.perf_counter() - start) / calls * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    model = mge_model()
    vector = model.physical_values_from_prior_medians
    instance = model.instance_from_vector(vector)
    jnp_vector = jnp.asarray(vector)

    leaves, treedef = jax.tree_util.tree_flatten(instance)

    bare = bare_copy(instance)
    assert len(jax.tree_util.tree_leaves(bare)) == len(leaves)

    f_instance = jax.jit(lambda i: i.galaxies.lens.mass.einstein_radius * 2.0)
    f_vector = jax.jit(lambda v: v[4] * 2.0)
    f_bare = jax.jit(lambda b: jax.tree_util.tree_leaves(b)[0] * 2.0)
    f_instance(instance).block_until_ready()
    f_vector(jnp_vector).block_until_ready()
    f_bare(bare).block_until_ready()

    rounds = {
        "flatten_us": [],
        "unflatten_us": [],
        "jit_instance_us": [],
        "jit_vector_us": [],
        "jit_floor_same_tree_us": [],
    }
    for _ in range(args.rounds):
        rounds["flatten_us"].append(
            per_call_us(jax.tree_util.tree_flatten, instance, args.calls // 4)
        )
        rounds["unflatten_us"].append(
            per_call_us(lambda l: jax.tree_util.tree_unflatten(treedef, l), leaves, args.calls // 20)
        )
        rounds["jit_instance_us"].append(per_call_us(f_instance, instance, args.calls))
        rounds["jit_vector_us"].append(per_call_us(f_vector, jnp_vector, args.calls))
        rounds["jit_floor_same_tree_us"].append(per_call_us(f_bare, bare, args.calls))

    medians = {key: statistics.median(values) for key, values in rounds.items()}
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, jax {jax.__version__}",
        "model": "mge.py lens model",
        "free_parameters": model.prior_count,
        "leaves": len(leaves),
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "median_us": medians,
        "ratio_jit_instance_over_vector": medians["jit_instance_us"] / medians["jit_vector_us"],
        "per_round_us": rounds,
    }
    for key, value in medians.items():
        print(f"{key:>22}: {value:8.1f} us")
    print(f"{'leaves':>22}: {len(leaves)} ({model.prior_count} free parameters)")
    print(f"instance / vector per call: {result['ratio_jit_instance_over_vector']:.1f}x")

    out = Path(__file__).parent / "results" / "pytree_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
