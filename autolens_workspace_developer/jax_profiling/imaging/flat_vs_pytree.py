"""
JAX Profiling: Flat Parameter Vector Versus Pytree Instance
===========================================================

A non-linear search hands the likelihood a point in parameter space. There are two ways to get that point
into a JAX program:

- **flat vector**: the program takes a 1D array of the free parameters and calls
  `model.instance_from_vector(vector, xp=jnp)` inside the trace to build the `Galaxy` objects and profiles.
  This is what `Fitness.call` does today.
- **pytree**: the program takes the model instance itself. Instances are JAX pytrees whose leaves are the
  model's free parameters (one per prior, in the vector's order), so JAX flattens the instance on the way in
  and rebuilds it from tracers inside the trace; copies of one shared prior (the MGE Gaussians' centre and
  ell_comps) are one leaf, put back into every holder, as in the vector.

Both compute the same likelihood (`AnalysisImaging.log_likelihood_function`, or the interferometer's) on the same
dataset and model.
This script times them side by side in one process:

- `lower_s`: tracing Python into a JAX program,
- `compile_s`: XLA compiling it,
- `steady_per_call_s`: one call of the compiled program, inputs already on the device,
- `vmap_per_call_s`: a `jax.vmap` batch of `--batch-size` different points, per point,

over `--rounds` rounds. Each round clears JAX's caches and compiles both closures afresh, and the order
alternates from round to round (flat first, then pytree first), so neither side profits from a warm cache or
from running second. Steady-state and vmap calls are timed one at a time, the two compiled programs called
alternately (`--repeats` calls each), and each side's median call is taken: a machine whose speed drifts from
second to second slows both sides alike. The JSON reports the median of each number over the rounds and the
ratio pytree / flat (below 1: the pytree is faster).

__Usage__

    python flat_vs_pytree.py --model mge --instrument hst --rounds 3
    python flat_vs_pytree.py --model pixelization --rounds 2 --repeats 3
    python flat_vs_pytree.py --model delaunay --rounds 2 --repeats 3
    python flat_vs_pytree.py --model interferometer_mge --rounds 3

`--scalar-control` adds a third side, `flat_scalars`: the flat-vector closure given the same vector as separate
scalar arguments (stacked into the vector inside the program). It takes its inputs as the pytree does (one
argument per parameter) and computes what the flat vector does, so it separates what XLA charges for the
form of the arguments from what the pytree adds. On this project's CPU machine a program taking 15 scalar
arguments ran 12-17% slower than the same program taking one vector; `flat_scalars` shows it.

`--model` picks the model of `mge.py`, `pixelization.py` or `delaunay.py`, built by the same `imaging_util`
functions, of `../interferometer/mge.py` or `pixelization.py` (`interferometer_mge`,
`interferometer_pixelization`, built by `interferometer_util`), or of `../point_source/source_plane.py` or
`image_plane.py` (`point_source_plane`, `point_image_plane`, built by `point_source_util`); `--instrument` is
for imaging only. `--no-vmap` skips the vmap batch (its fields are then `null`, with a note). Upstream's Delaunay
script skipped it by default, its compile having taken over 20 minutes; over instances it compiles in seconds.
"""

"""
__64-bit JAX__

Before any other import, for the reason given in `mge.py`.
"""
import os

os.environ["JAX_ENABLE_X64"] = "True"

import jax

jax.config.update("jax_enable_x64", True)

import json
import re
import statistics

import jax.numpy as jnp
import numpy as np

import argparse

import autolens as al

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shared profiling_util and gradients_util
sys.path.append(str(Path(__file__).resolve().parents[1] / "interferometer"))  # interferometer_util, for its models
sys.path.append(str(Path(__file__).resolve().parents[1] / "point_source"))  # point_source_util, for its models

import imaging_util
import profiling_util as util

"""
__Models__

Each model: its function of the instrument gives the model, the likelihood, the reference point, the size of its
dataset (printed) and the dataset's name in the results file (the instrument, for imaging).
"""


def mge(dataset):
    return imaging_util.mge_model(), imaging_util.likelihood_function(dataset)


def pixelization(dataset):
    return imaging_util.rectangular_model(), imaging_util.likelihood_function(dataset)


def delaunay(dataset):
    """The Delaunay analysis holds the image-plane mesh, keyed by an instance's source galaxy and by its path."""
    mesh_grid = imaging_util.delaunay_mesh_grid(dataset)
    model = imaging_util.delaunay_model(mesh_grid)
    instance = model.instance_from_vector(vector=imaging_util.reference_vector(model))
    adapt_images = imaging_util.delaunay_adapt_images(instance, mesh_grid)
    analysis = al.AnalysisImaging(dataset=dataset, adapt_images=adapt_images, use_jax=True)
    return model, analysis.log_likelihood_function


def imaging(instrument, model_and_likelihood):
    dataset = imaging_util.load_dataset(instrument)
    model, likelihood = model_and_likelihood(dataset)
    vector = imaging_util.reference_vector(model)
    return model, likelihood, vector, f"{dataset.data.shape[0]} image pixels", instrument


def interferometer(model_name):
    import interferometer_util

    dataset = interferometer_util.load_dataset()
    model = getattr(interferometer_util, model_name)()
    _, likelihood = interferometer_util.likelihood_function(dataset)
    vector = interferometer_util.reference_vector(model)
    return model, likelihood, vector, f"{dataset.data.shape[0]} visibilities", "interferometer"


def point_source(fit_positions_cls):
    import point_source_util

    dataset = point_source_util.load_dataset()
    model = point_source_util.point_model()
    _, likelihood, _ = point_source_util.analyses(dataset, fit_positions_cls)
    vector = point_source_util.reference_vector(model)
    return model, likelihood, vector, f"{len(dataset.positions)} image positions", "point_source"


MODELS = {
    "mge": lambda instrument: imaging(instrument, mge),
    "pixelization": lambda instrument: imaging(instrument, pixelization),
    "delaunay": lambda instrument: imaging(instrument, delaunay),
    "interferometer_mge": lambda instrument: interferometer("mge_model"),
    "interferometer_pixelization": lambda instrument: interferometer("rectangular_model"),
    "point_source_plane": lambda instrument: point_source(al.FitPositionsSource),
    "point_image_plane": lambda instrument: point_source(al.FitPositionsImagePairAll),
}

"""
__Command Line__
"""

parser = util.OneLineArgumentParser(description=__doc__.split("\n")[1])
parser.add_argument(
    "--model",
    default="mge",
    help=f"the lens model profiled: {', '.join(MODELS)} (default mge; --instrument applies to imaging)",
)
imaging_util.add_instrument_argument(parser)
parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
parser.add_argument("--repeats", type=int, default=10, help="steady-state calls timed per program, alternating (default 10)")
parser.add_argument("--batch-size", type=int, default=3, help="points in the vmap batch (default 3)")
parser.add_argument(
    "--scalar-control",
    action="store_true",
    help="also time the flat closure given its vector as separate scalar arguments",
)
parser.add_argument(
    "--label",
    default=None,
    help="added to the results file name, to keep a run under other settings (e.g. XLA_FLAGS) apart",
)
parser.add_argument(
    "--vmap",
    action=argparse.BooleanOptionalAction,
    default=True,
    help="time the vmap batch (default: yes)",
)
args = parser.parse_args()

if args.label is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", args.label):
    parser.error(f"--label: '{args.label}' must be letters, digits, '_' or '-' (it names a file)")

if args.model not in MODELS:
    parser.error(f"--model: unknown model '{args.model}' (choose from {', '.join(MODELS)})")

run_vmap = args.vmap
vmap_note = None if run_vmap else "vmap skipped (--no-vmap)"
if args.rounds < 1 or args.repeats < 1 or args.batch_size < 1:
    parser.error("--rounds, --repeats and --batch-size must be at least 1")

"""
__Dataset, Model And Inputs__

Both sides get the same point (see `imaging_util.reference_vector`) and the same batch of nearby points,
once as vectors and once as instances. Inputs are put on the device before timing, as a search would.
"""
model, likelihood, vector, dataset_size, dataset_name = MODELS[args.model](args.instrument)
batch_vectors = util.jittered_vectors(vector, args.batch_size)

instance = model.instance_from_vector(vector=vector)
util.require_pytree(instance)

inputs = {
    "flat_vector": (
        jnp.asarray(vector),
        jnp.stack([jnp.asarray(batch_vector) for batch_vector in batch_vectors]),
    ),
    "pytree": (
        util.on_device(instance),
        util.stack_instances(
            [
                util.on_device(model.instance_from_vector(vector=batch_vector))
                for batch_vector in batch_vectors
            ]
        ),
    ),
    "flat_scalars": (
        tuple(jnp.asarray(value) for value in vector),
        tuple(jnp.asarray(column) for column in np.asarray(batch_vectors).T),
    ),
}

print(
    f"{args.model} / {dataset_name}: {model.total_free_parameters} free parameters, "
    f"{len(jax.tree_util.tree_leaves(instance))} pytree leaves, "
    f"{dataset_size}; {args.rounds} rounds"
)

"""
__One Measurement__

Fresh closures and cleared caches every time: nothing compiled in an earlier round (including the jitted
helpers inside the library) is reused.
"""


def closure_for(side):
    if side == "flat_vector":
        return imaging_util.flat_vector_closure(model, likelihood)
    if side == "flat_scalars":
        from_vector = imaging_util.flat_vector_closure(model, likelihood)
        return lambda scalars: from_vector(jnp.stack(scalars))
    return imaging_util.pytree_closure(likelihood)


def compile_side(side):
    """Lower and compile one side's closure (and its vmap) after clearing JAX's caches."""
    jax.clear_caches()
    single, batch = inputs[side]
    one = util.time_jit(closure_for(side), single, repeats=0)
    result = {
        "lower_s": one["lower_s"],
        "compile_s": one["compile_s"],
        "log_likelihood": float(one["result"]),
        "vmap_log_likelihoods": None,
        "programs": {"steady_per_call_s": (one["compiled"], single, 1)},
    }
    if run_vmap:
        many = util.time_jit(jax.vmap(closure_for(side)), batch, repeats=0)
        result["vmap_log_likelihoods"] = np.asarray(many["result"])
        result["programs"]["vmap_per_call_s"] = (many["compiled"], batch, args.batch_size)
    return result


def time_alternately(results, order):
    """
    Each side's compiled programs called in turn (`util.interleaved_calls`), `--repeats` times; each side's median
    call per point. The compiled objects are called (not the jitted functions) because the caches were
    cleared between the two compiles.
    """
    for key in ("steady_per_call_s", "vmap_per_call_s"):
        if key not in results[order[0]]["programs"]:
            for side in order:
                results[side][key] = None
            continue
        programs = {side: results[side]["programs"].pop(key) for side in order}
        calls = util.interleaved_calls(
            {side: (program, argument) for side, (program, argument, _) in programs.items()}, args.repeats
        )
        for side in order:
            points = programs[side][2]
            results[side][key] = statistics.median(calls[side]) / points


def milliseconds(seconds):
    return "    --   " if seconds is None else f"{seconds * 1e3:8.3f}"


"""
__Warm-Up__

The first trace in a process pays one-time costs (imports inside the library, caches of Python objects) that
`jax.clear_caches` does not undo, and would charge them to whichever side runs first. One untimed lowering of
each side takes them out of the measurement.
"""
sides = ("flat_vector", "pytree") + (("flat_scalars",) if args.scalar_control else ())
for side in sides:
    jax.jit(closure_for(side)).lower(inputs[side][0])

"""
__Interleaved Rounds__
"""
per_round = {side: [] for side in sides}

for round_number in range(args.rounds):
    order = sides if round_number % 2 == 0 else sides[::-1]
    results = {side: compile_side(side) for side in order}
    time_alternately(results, order)
    for side in order:
        result = results[side]
        per_round[side].append(result)
        print(
            f"  round {round_number + 1} {side:<12} lower {result['lower_s']:6.3f} s | "
            f"compile {result['compile_s']:6.3f} s | steady {result['steady_per_call_s'] * 1e3:8.3f} ms | "
            f"vmap/call {milliseconds(result['vmap_per_call_s'])} ms"
        )

"""
__Same Numbers__

Timing two programs is only meaningful if they compute the same thing.
"""
flat_first = per_round["flat_vector"][0]

for side in sides[1:]:
    np.testing.assert_allclose(
        per_round[side][0]["log_likelihood"], flat_first["log_likelihood"], rtol=1e-10,
        err_msg=f"{side} and flat-vector log likelihoods differ",
    )
    if run_vmap:
        np.testing.assert_allclose(
            per_round[side][0]["vmap_log_likelihoods"], flat_first["vmap_log_likelihoods"], rtol=1e-10,
            err_msg=f"{side} and flat-vector vmap log likelihoods differ",
        )
print(
    f"\n  every side gives log likelihood {flat_first['log_likelihood']}"
    + (" (and equal vmap batches)" if run_vmap else f"; {vmap_note}")
)

"""
__Medians And Ratios__
"""
timing_keys = ("lower_s", "compile_s", "steady_per_call_s", "vmap_per_call_s")


def median_or_none(values):
    values = list(values)
    return None if None in values else statistics.median(values)


def medians(side):
    summary = {
        key: median_or_none(result[key] for result in per_round[side])
        for key in timing_keys
    }
    summary["log_likelihood"] = per_round[side][0]["log_likelihood"]
    return summary


summaries = {side: medians(side) for side in sides}
flat_summary = summaries["flat_vector"]
tree_summary = summaries["pytree"]


def ratios_of(numerator, denominator):
    return {
        key[: -len("_s")]: None if numerator[key] is None else numerator[key] / denominator[key]
        for key in timing_keys
    }


ratios = ratios_of(tree_summary, flat_summary)

results = {
    "instrument": dataset_name,
    "model": args.model,
    "rounds": args.rounds,
    "flat_vector": flat_summary,
    "pytree": tree_summary,
    "ratio_pytree_over_flat": ratios,
    "flat_scalars": summaries.get("flat_scalars"),
    "ratio_flat_scalars_over_flat": (
        ratios_of(summaries["flat_scalars"], flat_summary) if args.scalar_control else None
    ),
    "ratio_pytree_over_flat_scalars": (
        ratios_of(tree_summary, summaries["flat_scalars"]) if args.scalar_control else None
    ),
    "autolens_version": al.__version__,
    "xla_flags": os.environ.get("XLA_FLAGS"),
    "repeats": args.repeats,
    "batch_size": args.batch_size,
    "vmap_note": vmap_note,
    "free_parameters": model.total_free_parameters,
    "pytree_leaves": len(jax.tree_util.tree_leaves(instance)),
    "per_round": {
        side: [
            {key: result[key] for key in timing_keys} for result in per_round[side]
        ]
        for side in sides
    },
}

print("\n" + "=" * 70)
print(f"FLAT VECTOR VS PYTREE - {args.model} - {dataset_name.upper()} - median of {args.rounds}")
print("=" * 70)
columns = [("flat vector", flat_summary), ("pytree", tree_summary), ("pytree / flat", ratios)]
if args.scalar_control:
    columns += [
        ("flat scalars", summaries["flat_scalars"]),
        ("pytree / scalars", results["ratio_pytree_over_flat_scalars"]),
    ]
print("  " + " " * 20 + "".join(f"{title:>18}" for title, _ in columns))
for key in timing_keys:
    cells = []
    for title, values in columns:
        value = values.get(key, values.get(key[: -len("_s")]))
        cells.append("--" if value is None else f"{value:.5f}" if "/" not in title else f"{value:.3f}")
    print(f"  {key:<20}" + "".join(f"{cell:>18}" for cell in cells))
print("=" * 70)

imaging_util.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
label = f"_{args.label}" if args.label else ""
output_path = imaging_util.RESULTS_DIR / f"flat_vs_pytree_{args.model}_{dataset_name}{label}.json"
output_path.write_text(json.dumps(results, indent=2))
print(f"\n  results: {output_path}")
