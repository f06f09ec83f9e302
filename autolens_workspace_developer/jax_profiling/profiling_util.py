"""
Profiling Util: The Ground Floor Every Profiling Script Stands On
=================================================================

The imaging, interferometer and point-source scripts measure different likelihoods; what they share is how
they measure, and that lives here:

- a command line whose errors are one line long, and the devices a batch is sharded over (`--devices`),
- a timer for JAX programs (lower / compile / first call / steady state) and one for two or more programs
  timed in turn (`time_interleaved`), so a machine whose speed drifts slows them alike,
- the names of a pytree's leaves (`leaf_names`: one spelling, the model path), and batches of instances,
- a bar chart of per-step times.

What a script measures (its dataset, model, steps, checks and summary) stays in the script or beside it in its
own folder (`imaging/imaging_util.py`). A script puts this folder on its import path first:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import profiling_util as util
"""

import os

# The scripts set this themselves before importing anything; repeating it here keeps the module safe to
# import on its own (a PyAuto import that comes first would otherwise leave JAX in 32-bit mode).
os.environ["JAX_ENABLE_X64"] = "True"

import argparse
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import autofit as af



"""
__Command Line__
"""


class OneLineArgumentParser(argparse.ArgumentParser):
    """
    An `ArgumentParser` whose errors are a single line (no usage block), e.g.

        mge.py: error: argument --instrument: invalid choice: 'foo' (choose from euclid, hst, jwst, ao)
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")



def add_devices_argument(parser: argparse.ArgumentParser):
    parser.add_argument(
        "--devices",
        default=None,
        type=_device_count,
        help=(
            "devices the vmap batch is sharded over (default: every device JAX sees; on a CPU, this many "
            "host devices are made)"
        ),
    )


def _device_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"invalid device count '{text}' (a whole number, 1 or more)")
    return count


"""
__Devices__

A batch of instances is sharded over `--devices` devices. A GPU machine has the devices it has; a CPU has one
device unless JAX is told to split it into several host devices (`jax_num_cpu_devices`), and that can only be
set before JAX starts its backend, i.e. before the first JAX computation or device query. The scripts import
nothing that starts it (importing JAX, PyAuto and this module does not), so they call `use_devices` right after
parsing their command line. The count is set through `jax.config`, not `XLA_FLAGS`, which a library imported
before could have rewritten.
"""


def use_devices(requested: int = None) -> List:
    """
    The devices to shard over: the first `requested` of the devices JAX sees, or all of them (`requested` None).

    With a count, JAX's CPU backend is set to make that many host devices first, so on a CPU the count is always
    available. On another platform (GPU, TPU) a count above the devices there exits with a one-line error.
    """
    if requested is not None:
        try:
            jax.config.update("jax_num_cpu_devices", requested)
        except RuntimeError:
            raise SystemExit(
                f"error: --devices {requested}: JAX's backend started before the device count could be set "
                "(use_devices must come before any JAX computation)"
            )

    available = jax.devices()
    platform = available[0].platform

    if requested is not None and requested > len(available):
        raise SystemExit(
            f"error: --devices {requested}: only {len(available)} {platform} "
            f"device{'s' if len(available) != 1 else ''} available"
        )
    devices = available if requested is None else available[:requested]

    print("\n--- Devices ---")
    print(f"  {len(devices)} of {len(available)} {platform} device(s): {', '.join(str(device) for device in devices)}")
    return devices


class StepProfiler:
    """
    Compiles and times one step of a likelihood at a time (`time_jit`), printing a line per step and keeping
    every record, in order, in `steps`.
    """

    def __init__(self, repeats: int, label_width: int = 34):
        self.repeats = repeats
        self.label_width = label_width
        self.steps = {}

    def __call__(self, label: str, function: Callable, *inputs):
        timing = time_jit(function, *inputs, repeats=self.repeats)
        self.steps[label] = timing
        print(
            f"  {label:<{self.label_width}} lower {timing['lower_s']:.3f} s | compile {timing['compile_s']:.3f} s | "
            f"first {timing['first_call_s']:.4f} s | steady {timing['steady_per_call_s'] * 1e3:.3f} ms"
        )
        return timing["result"]


def memory_mb(compiled) -> Dict:
    """XLA's static account of a compiled program's buffers, in MB (None where the backend gives none)."""
    memory = compiled.memory_analysis()
    if memory is None:
        return None
    sizes = {
        "argument": memory.argument_size_in_bytes / 1024**2,
        "output": memory.output_size_in_bytes / 1024**2,
        "temp": memory.temp_size_in_bytes / 1024**2,
        "generated_code": memory.generated_code_size_in_bytes / 1024**2,
    }
    sizes["total"] = sizes["argument"] + sizes["output"] + sizes["temp"]
    return sizes


def bar_chart(
    path: Path,
    step_per_call: Dict,
    lines: Sequence,
    title: str,
    subtitle: str,
    height: float = 6,
    legend_offset: float = -0.12,
):
    """
    A horizontal bar per step (steady-state time per call), with `lines` as (seconds, label, colour)
    vertical lines for the full pipeline and the vmap per-call time; `height` (inches) and `legend_offset`
    (the legend's place below the axes) fit the number of steps.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(step_per_call)
    times = list(step_per_call.values())

    figure, axis = plt.subplots(figsize=(10, height))
    bars = axis.barh(range(len(labels)), times, color="#4C72B0", height=0.6)
    for bar, seconds in zip(bars, times):
        axis.text(
            bar.get_width() + max(times) * 0.01,
            bar.get_y() + bar.get_height() / 2,
            f"{seconds * 1e3:.3f} ms",
            va="center",
            fontsize=9,
        )
    for seconds, label, colour in lines:
        axis.axvline(seconds, color=colour, linestyle="--", label=label)
    axis.set_yticks(range(len(labels)))
    axis.set_yticklabels(labels)
    axis.invert_yaxis()
    axis.set_xlabel("steady-state time per call (s)")
    figure.suptitle(title, fontweight="bold")
    axis.set_title(subtitle, fontsize=9)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, legend_offset), ncol=1, fontsize=9)
    axis.margins(x=0.2)
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)



def rtol_text(rtol: float) -> str:
    """A tolerance as the scripts print it: 1e-6, not Python's 1e-06."""
    mantissa, exponent = f"{rtol:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"



def jittered_vectors(vector: np.ndarray, total: int, scale: float = 0.005, seed: int = 1):
    """
    `total` nearby parameter vectors: the first is `vector` itself, the others are small, seeded random
    offsets from it, so a batch holds genuinely different instances.
    """
    rng = np.random.default_rng(seed)
    return [vector] + [
        vector + scale * rng.standard_normal(vector.shape) for _ in range(total - 1)
    ]



def different_instances(model, vector, total: int) -> List:
    """`total` instances a little way from `vector` (`jittered_vectors`), on the device."""
    return [
        on_device(model.instance_from_vector(vector=jittered))
        for jittered in jittered_vectors(vector, total)
    ]


"""
__Pytrees__
"""


def require_pytree(instance):
    """
    Exit with a one-line message if this autofit does not make model instances JAX pytrees.

    A class JAX does not know is a single opaque leaf: `tree_leaves(instance)` is then `[instance]`.
    """
    leaves = jax.tree_util.tree_leaves(instance)
    if len(leaves) == 1 and leaves[0] is instance:
        raise SystemExit(
            f"error: {type(instance).__name__} is not a JAX pytree with this autofit "
            f"({af.__version__} at {Path(af.__file__).parent}); the pytree profiles need the patched stack"
        )


def on_device(instance):
    """The same instance with every leaf a JAX array, as a search would hand it to a compiled program."""
    return jax.tree_util.tree_map(jnp.asarray, instance)


def leaf_names(tree) -> List[str]:
    """
    The name of every leaf of `tree`, in leaf order: its key path as `jax.tree_util.keystr` prints it, without
    the leading dot. A leaf of a model instance (or of a gradient or batch shaped like one) has one key, its
    whole model path, so its name is e.g. 'galaxies.lens.mass.einstein_radius', as `af.values_by_path`
    spells it. This is the one place a script turns key paths into names.
    """
    return [
        jax.tree_util.keystr(path).lstrip(".")
        for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def values_by_name(tree) -> Dict[str, float]:
    """{leaf name: value} of a tree of scalars (an instance, a gradient, a tangent)."""
    return {name: float(leaf) for name, leaf in zip(leaf_names(tree), jax.tree_util.tree_leaves(tree))}


def leaf_named(tree, name: str):
    """
    A tree shaped like `tree` that is True at its one leaf whose name ends in `name` (e.g. 'einstein_radius')
    and False elsewhere, for selecting that leaf with `jax.tree_util.tree_map`; exits if not exactly one does.
    """
    names = leaf_names(tree)
    hits = [leaf_name for leaf_name in names if leaf_name.rsplit(".", 1)[-1] == name]
    if len(hits) != 1:
        raise SystemExit(f"error: expected one leaf named '{name}', found {hits or 'none'} among {names}")
    treedef = jax.tree_util.tree_structure(tree)
    return jax.tree_util.tree_unflatten(treedef, [leaf_name == hits[0] for leaf_name in names])


def one_structure_per_model(model, instance, vector) -> Tuple[List[str], bool]:
    """
    Print the instance's leaves and check that a second instance of the model, from other values, has the same
    tree structure (else every instance would compile again). Returns the leaf names and that check.
    """
    names = leaf_names(instance)
    other_instance = model.instance_from_vector(vector=jittered_vectors(vector, 2)[1])
    same_structure = jax.tree_util.tree_structure(instance) == jax.tree_util.tree_structure(
        other_instance
    )

    print(f"\n  pytree leaves: {len(names)} (free parameters: {model.total_free_parameters})")
    print(f"  e.g. {names[0]}  ...  {names[-1]}")
    print(f"  two instances share one tree structure (one compile per model): {same_structure}")

    assert same_structure, "two instances of one model have different pytree structures"
    return names, same_structure


def pytree_summary(leaf_names: List[str], model, same_structure: bool, compiles: int = None) -> Dict:
    """The summary JSON's `pytree` block; `compiles` (programs compiled for different instances) where counted."""
    summary = {
        "leaf_count": len(leaf_names),
        "free_parameters": model.total_free_parameters,
        "same_structure_across_instances": bool(same_structure),
    }
    if compiles is not None:
        summary["compiles_for_different_instances"] = compiles
    summary["leaf_names"] = leaf_names
    return summary


def stack_instances(instances: Sequence):
    """One instance whose every leaf is the stack of that leaf across `instances` (a vmap batch)."""
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *instances)


"""
__Timing__
"""


def block(result):
    """Wait for every array in `result`, so a timing covers the computation and not just its dispatch."""
    return jax.block_until_ready(result)


def time_jit(function: Callable, *args, repeats: int = 10) -> Dict:
    """
    Compile `function` ahead of time for `args` and time each stage:

    - `lower_s`: tracing the Python into a JAX program (this is where `instance_from_vector` runs, or where
      the pytree is rebuilt from tracers),
    - `compile_s`: XLA compiling that program,
    - `first_call_s`: the first call of the compiled program,
    - `steady_per_call_s`: the mean over `repeats` further calls (None for none).

    The calls go through the `jax.jit` function itself, which reuses the executable compiled here (JAX caches
    it; a first call that compiled again would show in `first_call_s`). That is the dispatch path a search
    takes. Calling the AOT `Compiled` object with an instance works too, and returns the same number, but it
    flattens the pytree in Python on every call, which the `jax.jit` function does in C++.

    Returns these, plus the compiled program (`"compiled"`, for its memory analysis) and the result
    (`"result"`).
    """
    jitted = jax.jit(function)

    start = time.perf_counter()
    lowered = jitted.lower(*args)
    lower_s = time.perf_counter() - start

    start = time.perf_counter()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start

    start = time.perf_counter()
    result = block(jitted(*args))
    first_call_s = time.perf_counter() - start

    start = time.perf_counter()
    for _ in range(repeats):
        result = block(jitted(*args))
    steady_per_call_s = (time.perf_counter() - start) / repeats if repeats else None

    return {
        "lower_s": lower_s,
        "compile_s": compile_s,
        "first_call_s": first_call_s,
        "steady_per_call_s": steady_per_call_s,
        "jitted": jitted,
        "compiled": compiled,
        "result": result,
    }


def interleaved_calls(programs: Dict[str, Tuple[Callable, object]], repeats: int) -> Dict[str, List[float]]:
    """
    The time of every call of each of `programs` (name: (function, its argument)), called in turn, one call
    each, `repeats` times, the order reversed every other round: a machine whose speed drifts slows every
    program alike. The programs must have been called once already (compiled, first call done).
    """
    calls = {name: [] for name in programs}
    names = list(programs)
    for round_number in range(repeats):
        for name in names if round_number % 2 == 0 else names[::-1]:
            function, argument = programs[name]
            start = time.perf_counter()
            block(function(argument))
            calls[name].append(time.perf_counter() - start)
    return calls


def time_interleaved(programs: Dict[str, Tuple[Callable, object]], repeats: int) -> Dict[str, float]:
    """The mean steady time per call of each of `programs`, timed by `interleaved_calls`; None with no repeats."""
    calls = interleaved_calls(programs, repeats)
    return {name: sum(times) / len(times) if times else None for name, times in calls.items()}


def timings_only(timing: Dict) -> Dict:
    """A `time_jit` record without the programs and the result, for printing and JSON."""
    return {key: value for key, value in timing.items() if key.endswith("_s")}
