"""
Profiling Util: How Every Profiling Script Times, Checks And Reports
====================================================================

The imaging, interferometer, point-source and fitting scripts each build their own dataset, model and
likelihood; how they measure it lives here, so a measurement has one name in every results file. A script
puts this folder on its import path and imports it as `util`:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import profiling_util as util

- `argument_parser`: the shared command line (`--repeats`, `--batch-size`, `--scan-points`, `--gradient`,
  optionally `--devices`), whose errors are one line; a script adds its own options to it.
- `use_devices`: the devices a batch is sharded over; on a CPU it must come before JAX's first computation.
- `time_jit`: a function compiled ahead of time and timed: `lower_s`, `compile_s`, `first_call_s`, `steady_s`.
- `time_interleaved`: two or more compiled programs called in turn, so a machine whose speed drifts slows
  them alike; the steady time per call of each.
- `check`: assert two values agree to a relative tolerance, and print one line saying so.
- `profile_fit_steps`: the likelihood step by step, each step the fit's likelihood up to and including it.
- `full_pipeline`: the whole likelihood as one program, asserted equal to the eager value.
- `flat_vector_ratio`: the same likelihood taking the flat parameter vector (as a search's `Fitness` calls
  it) against taking the instance (a pytree), timed in turn.
- `vmap_batch`: a `jax.vmap` over a batch of nearby instances, each lane asserted equal to its single call,
  with XLA's memory estimate, and sharded over several devices where there are several.
- `gradient_check`: `jax.jit(jax.grad(likelihood))`, read by parameter name, asserted equal to central
  differences and timed against one likelihood call; optionally 1-sigma errors from its Hessian.
- `einstein_radius_scan`: the likelihood and its derivative along the Einstein radius, plotted.
- `write_summary`: the summary JSON and a bar chart of its times.

Every time waits for its result (`jax.block_until_ready`), so it covers the computation, not its dispatch. A
timing is `{lower_s, compile_s, first_call_s, steady_s}` (seconds; `steady_s` per call), and a summary JSON holds
`configuration`, `steps`, `full_pipeline`, `flat_vector`, `vmap`, `gradient`, `einstein_radius_scan`,
`log_likelihood` (eager and jit), `autolens_version` and `repeats`, named alike in every script.
"""
import os

# A PyAuto import before JAX's would otherwise leave JAX in 32-bit mode.
os.environ["JAX_ENABLE_X64"] = "True"

import argparse
import json
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

jax.config.update("jax_enable_x64", True)
matplotlib.use("Agg")  # charts are written to files, never shown

import matplotlib.pyplot as plt

import autofit as af

_PROGRAMS = ("result", "jitted", "compiled")  # what `time_jit` returns beside its times, kept out of JSON


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"invalid count '{text}' (a whole number, 1 or more)")
    return int(text)


def argument_parser(
    description: str, repeats: int = 10, batch_size: int = 3, scan_points: int = 21, devices: bool = False
) -> argparse.ArgumentParser:
    """The options every script takes, with this script's defaults; `--devices` only where `devices`."""
    parser = _OneLineParser(description=description)
    parser.add_argument("--repeats", type=int, default=repeats, help=f"steady calls timed per program ({repeats})")
    parser.add_argument("--batch-size", type=_positive, default=batch_size, help=f"vmap batch size ({batch_size})")
    parser.add_argument("--scan-points", type=_positive, default=scan_points, help=f"scan points ({scan_points})")
    parser.add_argument(
        "--gradient", action=argparse.BooleanOptionalAction, default=True,
        help="time jax.grad and check it against central differences (default: yes)",
    )
    if devices:
        parser.add_argument(
            "--devices", type=_positive, default=None,
            help="devices the vmap batch is sharded over (default: all; on a CPU, this many host devices)",
        )
    return parser


def use_devices(requested: int = None) -> List:
    """
    The first `requested` devices JAX sees, or all of them. On a CPU JAX makes `requested` host devices, which
    it can only do before its backend starts: call this before any JAX computation.
    """
    if requested is not None:
        try:
            jax.config.update("jax_num_cpu_devices", requested)
        except RuntimeError:
            raise SystemExit(f"error: --devices {requested}: JAX started before use_devices was called")
    available = jax.devices()
    if requested is not None and requested > len(available):
        raise SystemExit(f"error: --devices {requested}: only {len(available)} {available[0].platform} device(s)")
    devices = available[: requested or len(available)]
    print(f"\n--- Devices ---\n  {len(devices)} of {len(available)} {available[0].platform} device(s)")
    return devices


"""
__Timing__
"""


def time_jit(function: Callable, *args, repeats: int) -> Dict:
    """
    `jax.jit(function)` lowered (traced into a JAX program), compiled by XLA, called once and then `repeats`
    times more, each stage timed. The calls go through the jitted function, which reuses the executable
    compiled here, as a search's calls do. Returns the times and the `result`, `jitted` and `compiled`.
    """
    jitted = jax.jit(function)
    start = time.perf_counter()
    lowered = jitted.lower(*args)
    lower_s = time.perf_counter() - start
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start - lower_s
    start = time.perf_counter()
    result = jax.block_until_ready(jitted(*args))
    first_call_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(repeats):
        result = jax.block_until_ready(jitted(*args))
    steady_s = (time.perf_counter() - start) / repeats if repeats else None
    return {
        "lower_s": lower_s, "compile_s": compile_s, "first_call_s": first_call_s, "steady_s": steady_s,
        "result": result, "jitted": jitted, "compiled": compiled,
    }


def time_interleaved(programs: Dict[str, Tuple[Callable, object]], repeats: int) -> Dict[str, float]:
    """
    The steady time per call of each of `programs` (name: (compiled function, its argument)), called in turn
    `repeats` times, the order reversed every other round. Call each once first, so none compiles here.
    """
    times = {name: 0.0 for name in programs}
    for round_number in range(repeats):
        for name in list(programs)[:: 1 if round_number % 2 == 0 else -1]:
            function, argument = programs[name]
            start = time.perf_counter()
            jax.block_until_ready(function(argument))
            times[name] += time.perf_counter() - start
    return {name: total / repeats if repeats else None for name, total in times.items()}


def check(value, reference, rtol: float, what: str):
    """Assert `value` equals `reference` to `rtol` (arrays elementwise) and print one line saying so."""
    value, reference = np.asarray(value, dtype=float), np.asarray(reference, dtype=float)
    np.testing.assert_allclose(value, reference, rtol=rtol, err_msg=what)
    difference = np.max(np.abs(value - reference) / np.maximum(np.abs(reference), np.finfo(float).tiny))
    print(f"  {what}: equal (rtol {rtol:.0e}, largest relative difference {difference:.1e})")


def _line(label: str, timing: Dict) -> str:
    steady = "-" if timing["steady_s"] is None else f"{timing['steady_s'] * 1e3:.3f} ms"
    return (
        f"  {label:<36} lower {timing['lower_s']:.3f} s | compile {timing['compile_s']:.3f} s | "
        f"first {timing['first_call_s']:.4f} s | steady {steady}"
    )


def _timings(timing: Dict) -> Dict:
    return {key: value for key, value in timing.items() if key not in _PROGRAMS}


def _on_device(tree):
    """Every leaf a JAX array, as a search hands an instance to a compiled program."""
    return jax.tree_util.tree_map(jnp.asarray, tree)


def _vector_of(model, instance) -> np.ndarray:
    """The instance's free parameters in the order of `model.instance_from_vector`."""
    return np.array([float(value) for value in af.values_by_path(model, instance).values()])


"""
__The Likelihood, Step By Step And Whole__
"""


def profile_fit_steps(analysis, instance, steps: Dict[str, Callable], repeats: int) -> Dict[str, Dict]:
    """
    Each of `steps` (label: function of a fit) compiled and timed as the likelihood up to and including it: the
    fit is `analysis.fit_from(instance)` built inside the trace, and computes lazily, so a step compiles only
    what its quantity needs. The times are cumulative.
    """
    print("\n--- The likelihood step by step (each step: the likelihood up to and including it) ---")
    instance, timings = _on_device(instance), {}
    for label, quantity in steps.items():

        def step(instance, quantity=quantity):
            value = quantity(analysis.fit_from(instance))
            return getattr(value, "array", value)  # the plain array of a PyAuto structure

        timings[label] = time_jit(step, instance, repeats=repeats)
        print(_line(label, timings[label]))
    return timings


def full_pipeline(likelihood: Callable, instance, eager_value: float, eager_name: str, repeats: int) -> Dict:
    """The whole likelihood as one compiled program, timed and asserted equal to `eager_value` (rtol 1e-8)."""
    print("\n--- Full pipeline, one program ---")
    full = time_jit(likelihood, _on_device(instance), repeats=repeats)
    print(_line("log likelihood", full))
    check(float(full["result"]), eager_value, 1e-8, f"jit equals {eager_name}")
    return full


def flat_vector_ratio(likelihood: Callable, model, instance, repeats: int) -> Dict:
    """
    The likelihood of the flat parameter vector, the instance built from it inside the trace as a search's
    `Fitness` does (`model.instance_from_vector(vector, xp=jnp)`), against the likelihood of the instance
    itself: asserted equal (rtol 1e-10) and timed in turn.
    """
    print("\n--- Pytree versus flat vector ---")
    instance, vector = _on_device(instance), jnp.asarray(_vector_of(model, instance))
    pytree = time_jit(likelihood, instance, repeats=0)
    flat = time_jit(lambda vector: likelihood(model.instance_from_vector(vector, xp=jnp)), vector, repeats=0)
    check(float(flat["result"]), float(pytree["result"]), 1e-10, "the flat vector's value equals the pytree's")
    in_turn = time_interleaved({"pytree": (pytree["jitted"], instance), "flat": (flat["jitted"], vector)}, repeats)
    ratio = in_turn["pytree"] / in_turn["flat"] if repeats else None
    print(_line("likelihood of the flat vector", flat))
    if repeats:
        print(f"  called in turn: pytree {in_turn['pytree'] * 1e3:.3f} ms, flat vector {in_turn['flat'] * 1e3:.3f} ms"
              f" (pytree / flat vector {ratio:.3f})")
    return {
        "pytree_s": in_turn["pytree"], "flat_vector_s": in_turn["flat"], "pytree_over_flat_vector": ratio,
        "flat_vector_lower_s": flat["lower_s"], "flat_vector_compile_s": flat["compile_s"],
    }


"""
__Batches Of Instances__
"""


def _nearby_instances(model, instance, total: int, scale: float = 0.005, seed: int = 1) -> List:
    """`instance` and `total - 1` others, each value moved by `scale` times max(1, |value|) at random."""
    vector, rng = _vector_of(model, instance), np.random.default_rng(seed)
    vectors = [vector] + [vector + scale * np.maximum(1.0, np.abs(vector)) * rng.standard_normal(vector.size)
                          for _ in range(total - 1)]
    return [model.instance_from_vector(vector=list(values)) for values in vectors]


def _memory_mb(compiled) -> Dict:
    """XLA's static account of a compiled program's buffers, in MB (None where the backend gives none)."""
    memory = compiled.memory_analysis()
    if memory is None:
        return None
    sizes = {kind: getattr(memory, f"{kind}_size_in_bytes") / 1024**2 for kind in ("argument", "output", "temp")}
    return {**sizes, "total": sum(sizes.values())}


def vmap_batch(
    likelihood: Callable, model, instance, batch_size: int, full: Dict, repeats: int,
    eager_likelihood: Callable = None, devices: Sequence = None,
) -> Dict:
    """
    `jax.vmap(likelihood)` over `batch_size` nearby instances stacked leaf by leaf (instances of one model share
    one tree structure): timed, each lane asserted equal to its single call (`full["jitted"]`, rtol 1e-10) and,
    given `eager_likelihood`, to it (rtol 1e-8). With more than one of `devices`, the batch (rounded up to a
    multiple of them) is also split over them and each device runs the vmap on its own lanes (a `shard_map`):
    asserted equal to the one-device batch and timed in turn against it.
    """
    print("\n--- vmap batch ---")
    shards = len(devices) if devices else 1
    batch_size = -(-batch_size // shards) * shards
    instances = _nearby_instances(model, instance, batch_size)
    batch = _on_device(jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *instances))
    vmapped = time_jit(jax.vmap(likelihood), batch, repeats=repeats)
    results = np.asarray(vmapped["result"])
    check(results, [float(full["jitted"](_on_device(each))) for each in instances], 1e-10, "lanes equal single calls")
    if eager_likelihood is not None:
        check(results, [float(eager_likelihood(each)) for each in instances], 1e-8, "lanes equal the eager likelihood")
    print(_line(f"batch of {batch_size}", vmapped))
    summary = {
        "batch_size": batch_size, **_timings(vmapped), "per_instance_s": vmapped["steady_s"] / batch_size,
        "results": results.tolist(), "memory_mb": _memory_mb(vmapped["compiled"]),
    }
    memory = "-" if summary["memory_mb"] is None else f"{summary['memory_mb']['total']:.2f} MB"
    print(f"  per instance {summary['per_instance_s'] * 1e3:.3f} ms | XLA's static memory estimate {memory}")
    if shards > 1:
        mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
        spec = jax.sharding.PartitionSpec("batch")
        split = jax.tree_util.tree_map(lambda leaf: jax.device_put(leaf, jax.sharding.NamedSharding(mesh, spec)), batch)
        # Each device maps its own lanes, with no communication between them (the solvers' loops differ by lane).
        program = jax.shard_map(jax.vmap(likelihood), mesh=mesh, in_specs=(spec,), out_specs=spec, check_vma=False)
        sharded = time_jit(program, split, repeats=0)
        check(sharded["result"], results, 1e-10, f"the batch split over {shards} devices equals the one-device batch")
        in_turn = time_interleaved({"one": (vmapped["jitted"], batch), "all": (sharded["jitted"], split)}, repeats)
        summary["sharded"] = {
            "devices": shards, "lower_s": sharded["lower_s"], "compile_s": sharded["compile_s"],
            "per_instance_s_one_device": in_turn["one"] / batch_size, "per_instance_s": in_turn["all"] / batch_size,
            "speedup": in_turn["one"] / in_turn["all"],
        }
        print(f"  over {shards} devices: {summary['sharded']['speedup']:.2f}x the one-device batch, called in turn")
    return summary


"""
__Gradients__
"""


def _central_differences(value: Callable, vector: np.ndarray, step: float) -> np.ndarray:
    """
    d value / d vector[i] by the fourth-order stencil (8 [f(h) - f(-h)] - [f(2h) - f(-2h)]) / 12h, with
    h = `step` max(1, |vector[i]|); `value` may return a scalar or an array (then one row per parameter).
    """
    rows = []
    for i in range(vector.size):
        shift = np.zeros_like(vector)
        shift[i] = h = step * max(1.0, abs(vector[i]))
        rows.append((8 * (value(vector + shift) - value(vector - shift))
                     - (value(vector + 2 * shift) - value(vector - 2 * shift))) / (12 * h))
    return np.array(rows)


def _errors(gradient: Callable, model, vector: np.ndarray, names: List[str], step: float = 1e-5) -> Dict:
    """
    1-sigma errors by name, sqrt(diag(F^-1)) of the Fisher matrix F = -H, H the Hessian by central differences
    of the compiled gradient (4 n calls, no further compile). None unless F is positive definite (near a maximum).
    """

    def gradient_at(v):
        tree = gradient(_on_device(model.instance_from_vector(vector=list(v))))
        return np.array([float(value) for value in af.values_by_path(model, tree).values()])

    hessian = _central_differences(gradient_at, vector, step)
    fisher = -0.5 * (hessian + hessian.T)
    positive = bool(np.linalg.eigvalsh(fisher)[0] > 0)
    return {
        "errors": dict(zip(names, np.sqrt(np.diag(np.linalg.inv(fisher))).tolist())) if positive else None,
        "fisher_positive_definite": positive,
        "hessian_relative_asymmetry": float(np.max(np.abs(hessian - hessian.T)) / np.max(np.abs(hessian))),
    }


def gradient_check(
    likelihood: Callable, model, instance, steps: Sequence[float], rtol: float, repeats: int, errors: bool = False
) -> Dict:
    """
    `jax.jit(jax.grad(likelihood))` at `instance`, timed, read by name (`af.values_by_path`) and asserted equal
    to fourth-order central differences of the compiled likelihood at each of `steps` to `rtol` in every
    parameter; then timed in turn against one likelihood call. With `errors`, 1-sigma errors by name too.
    """
    print("\n--- Gradient by name against central differences ---")
    vector, device_instance = _vector_of(model, instance), _on_device(instance)
    single = time_jit(likelihood, device_instance, repeats=0)
    gradient = time_jit(jax.grad(likelihood), device_instance, repeats=repeats)
    print(_line("jax.jit(jax.grad(likelihood))", gradient))
    by_name = {name: float(value) for name, value in af.values_by_path(model, gradient["result"]).items()}
    names = list(by_name)
    assert np.isfinite(list(by_name.values())).all(), "the gradient has NaN / inf entries"

    def value(v):
        return float(single["jitted"](_on_device(model.instance_from_vector(vector=list(v)))))

    relative_error = {}
    for step in steps:
        differences = dict(zip(names, _central_differences(value, vector, step)))
        relative_error[f"{step:g}"] = {
            name: abs(by_name[name] - differences[name]) / max(abs(differences[name]), np.finfo(float).tiny)
            for name in names
        }
    width = max(map(len, names))
    print(f"  {'parameter':<{width}} {'d log L / d p':>14}   relative error at steps {', '.join(relative_error)}")
    for name in names:
        errors_at = "  ".join(f"{relative_error[step][name]:.1e}" for step in relative_error)
        print(f"  {name:<{width}} {by_name[name]:>14.6g}   {errors_at}")
    largest = max(max(errors_at.values()) for errors_at in relative_error.values())
    in_turn = time_interleaved(
        {"likelihood": (single["jitted"], device_instance), "gradient": (gradient["jitted"], device_instance)},
        repeats,
    )
    ratio = in_turn["gradient"] / in_turn["likelihood"] if repeats else None
    summary = {
        **_timings(gradient), "called_in_turn_s": in_turn, "gradient_over_likelihood": ratio,
        "by_name": by_name, "relative_error": relative_error, "max_relative_error": largest, "rtol": rtol,
    }
    if repeats:
        print(f"  called in turn: likelihood {in_turn['likelihood'] * 1e3:.3f} ms, gradient "
              f"{in_turn['gradient'] * 1e3:.3f} ms ({ratio:.2f}x)")
    print(f"  largest relative error against central differences: {largest:.2e} (rtol {rtol:.0e})")
    assert largest < rtol, f"the gradient differs from central differences by {largest:.2e} (rtol {rtol})"
    if errors:
        summary.update(_errors(gradient["jitted"], model, vector, names))
        print(f"  1-sigma errors from the Hessian (Fisher matrix positive definite: {summary['errors'] is not None})")
        for name, sigma in (summary["errors"] or {}).items():
            print(f"  {name:<{width}} {sigma:>14.4g}")
    return summary


def einstein_radius_scan(
    likelihood: Callable, model, instance, values, truth: float, plot_path: Path, title: str
) -> Dict:
    """
    The likelihood and its derivative along the one parameter whose name ends in `einstein_radius`, every other
    held: one `jax.vmap` of `jax.value_and_grad` over that leaf alone. Asserted finite, plotted in two panels.
    """
    print("\n--- Einstein radius scan ---")
    names = list(af.values_by_path(model, instance))
    scanned = [name for name in names if name.endswith("einstein_radius")]
    assert len(scanned) == 1, f"expected one parameter named einstein_radius, found {scanned}"
    leaves, treedef = jax.tree_util.tree_flatten(_on_device(instance))
    hits = [name == scanned[0] for name in names]
    scan_instance = treedef.unflatten([jnp.asarray(values) if hit else leaf for hit, leaf in zip(hits, leaves)])
    in_axes = treedef.unflatten([0 if hit else None for hit in hits])

    def value_and_derivative(instance):
        value, gradient = jax.value_and_grad(likelihood)(instance)
        return value, jax.tree_util.tree_leaves(gradient)[hits.index(True)]

    timing = time_jit(jax.vmap(value_and_derivative, in_axes=(in_axes,)), scan_instance, repeats=0)
    log_likelihoods, derivatives = (np.asarray(array) for array in timing["result"])
    assert np.isfinite(log_likelihoods).all() and np.isfinite(derivatives).all(), "the scan is not finite"
    best = float(values[int(np.argmax(log_likelihoods))])
    print(_line(f"{len(values)} points", timing) + f"\n  best {best:.4f} (simulated {truth}); all finite")

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True)
    top.plot(values, log_likelihoods, "o-", color="#4C72B0", markersize=4)
    top.set(ylabel="log likelihood", title=title)
    bottom.axhline(0.0, color="grey", linewidth=0.8)
    bottom.plot(values, np.gradient(log_likelihoods, values), "-", color="#8C8C8C", label="differences of the scan")
    bottom.plot(values, derivatives, "o", color="#DD8452", markersize=4, label="jax.grad")
    bottom.set(ylabel="d log likelihood / d parameter", xlabel=f"{scanned[0]} (arcsec)")
    for axis in (top, bottom):
        axis.axvline(truth, color="#C44E52", linestyle="--", label=f"simulated: {truth}")
        axis.legend(fontsize=8)
    top.title.set_fontsize(10)
    figure.tight_layout()
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(plot_path, dpi=150)
    plt.close(figure)
    print(f"  plot: {plot_path}")
    return {
        "parameter": scanned[0], "values": list(map(float, values)), "log_likelihood": log_likelihoods.tolist(),
        "d_log_likelihood": derivatives.tolist(), "best": best, "simulated": truth, **_timings(timing),
    }


"""
__Summary__
"""


def _plain(value):
    """`value` as JSON can hold it: no programs, arrays as lists."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items() if key not in _PROGRAMS}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (np.ndarray, jax.Array, np.generic)):
        return np.asarray(value).tolist()
    return value


def write_summary(summary: Dict, results_dir: Path, stem: str, title: str, subtitle: str) -> Path:
    """
    `summary` to `<results_dir>/<stem>.json`, and to `<stem>.png` a bar per step (its steady time) with the full
    pipeline, the vmap time per instance, the flat vector and the gradient drawn as lines where measured.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{stem}.json"
    path.write_text(json.dumps(_plain(summary), indent=2))
    print(f"\n  summary: {path}")

    labels = list(summary["steps"])
    times = [summary["steps"][label]["steady_s"] for label in labels]
    figure, axis = plt.subplots(figsize=(10, 3.7 + 0.35 * len(labels)))
    for bar, seconds in zip(axis.barh(range(len(labels)), times, color="#4C72B0", height=0.6), times):
        axis.text(bar.get_width() * 1.01, bar.get_y() + 0.3, f"{seconds * 1e3:.3f} ms", va="center", fontsize=9)
    marks = (("full_pipeline", "steady_s", "full pipeline", "#C44E52"),
             ("vmap", "per_instance_s", "vmap batch, per instance", "#55A868"),
             ("flat_vector", "flat_vector_s", "flat vector (in turn with the pytree)", "#8172B2"),
             ("gradient", "steady_s", "jax.grad", "#DD8452"))
    for key, field, label, colour in marks:
        seconds = (summary.get(key) or {}).get(field)
        if seconds is not None:
            axis.axvline(seconds, color=colour, linestyle="--", label=f"{label}: {seconds * 1e3:.3f} ms")
    axis.set_yticks(range(len(labels)), [f"{label} (up to here)" for label in labels])
    axis.invert_yaxis()
    axis.set_xlabel("steady time per call (s)")
    axis.set_title(subtitle, fontsize=9)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=9)
    axis.margins(x=0.2)
    figure.suptitle(title, fontweight="bold")
    figure.tight_layout()
    figure.savefig(results_dir / f"{stem}.png", dpi=150)
    plt.close(figure)
    print(f"  chart: {results_dir / f'{stem}.png'}")
    return path


# harness ready
