"""
Fit Profile: The Measurements The Interferometer And Point-Source Scripts Make Alike
====================================================================================

`interferometer/mge.py`, `interferometer/pixelization.py`, `point_source/source_plane.py` and
`point_source/image_plane.py` measure their likelihoods the same way, each step asserted:

- the likelihood step by step, each step a quantity of the fit `analysis.fit_from(instance)` builds inside the
  trace, compiled and timed as the likelihood up to and including it (`profile_fit_steps`),
- the full pipeline as one program, equal to the eager value (`full_pipeline`),
- a `jax.vmap` batch of instances stacked leaf by leaf, equal to single calls (`vmap_batch`),
- `jax.jit(jax.grad(...))` read by name, equal to central differences, and its time against one likelihood
  call (`gradient_check`),
- a scan over the one leaf named `einstein_radius` with its gradient (`einstein_radius_scan`),
- the summary JSON and bar chart (`write_summary`).

Each script's dataset, model and analysis are its folder's (`interferometer_util.py`, `point_source_util.py`);
timing and leaf names are `profiling_util`'s, gradients `gradients_util`'s.
"""
import json
from pathlib import Path
from typing import Callable, Dict, Sequence

import jax
import numpy as np

import gradients_util as grad_util
import profiling_util as util


def check(value: float, reference: float, rtol: float, what: str):
    np.testing.assert_allclose(value, reference, rtol=rtol, err_msg=what)
    print(f"  {what}: equal (rtol {util.rtol_text(rtol)}, relative difference {abs(value / reference - 1):.1e})")


def profile_fit_steps(analysis, instance, steps: Dict[str, Callable], repeats: int) -> Dict[str, Dict]:
    """
    Each step compiled and timed as the likelihood *up to and including it*: `steps` maps a label to a function
    of the fit the analysis builds from the instance inside the trace. A fit computes lazily, so a step compiles
    just what its quantity needs; the times are cumulative, and the difference between two steps is a guide to
    the later one's cost (XLA fuses and reorders, so it is not exact).
    """
    print("\n" + "=" * 70)
    print("PER-STEP JIT PROFILING (each step: the likelihood up to and including it)")
    print("=" * 70)
    profile = util.StepProfiler(repeats)
    for label, quantity in steps.items():

        def step(instance, quantity=quantity):
            value = quantity(analysis.fit_from(instance))
            return getattr(value, "array", value)  # the plain array of a PyAuto structure

        profile(label, step, instance)
    return profile.steps


def steps_summary(steps: Dict[str, Dict]) -> Dict:
    """The JSON blocks of the cumulative step timings: steady time per step and each step's full record."""
    return {
        "steps": {label: timing["steady_per_call_s"] for label, timing in steps.items()},
        "step_timings": {label: util.timings_only(timing) for label, timing in steps.items()},
    }


def full_pipeline(likelihood: Callable, instance, eager_value: float, eager_name: str, repeats: int) -> Dict:
    """The whole likelihood as one compiled program, timed, and asserted equal to `eager_value` (rtol 1e-8)."""
    print("\n" + "=" * 70)
    print("FULL-PIPELINE JIT")
    print("=" * 70)
    full = util.time_jit(likelihood, instance, repeats=repeats)
    print(
        f"  lower {full['lower_s']:.3f} s | compile {full['compile_s']:.3f} s | "
        f"first {full['first_call_s']:.4f} s | steady {full['steady_per_call_s'] * 1e3:.3f} ms"
    )
    print(f"  value = {float(full['result'])}")
    check(float(full["result"]), eager_value, 1e-8, f"jit equals {eager_name}")
    return full


def vmap_batch(
    likelihood: Callable, model, vector, batch_size: int, full: Dict, repeats: int, eager_likelihood: Callable = None
) -> Dict:
    """
    `jax.vmap` over `batch_size` instances a little way from `vector`, stacked leaf by leaf: timed, each lane
    asserted equal to the single-instance program (rtol 1e-10) and, given `eager_likelihood` (a function of an
    instance), to it (rtol 1e-8).
    """
    print("\n--- vmap batch ---")
    instances = util.different_instances(model, vector, batch_size)
    vmapped = util.time_jit(jax.vmap(likelihood), util.stack_instances(instances), repeats=repeats)
    results = [float(value) for value in vmapped["result"]]
    singles = [float(full["jitted"](instance)) for instance in instances]
    np.testing.assert_allclose(results, singles, rtol=1e-10, err_msg="vmap differs from single calls")
    if eager_likelihood is not None:
        eagers = [
            float(eager_likelihood(model.instance_from_vector(vector=list(jittered))))
            for jittered in util.jittered_vectors(vector, batch_size)
        ]
        np.testing.assert_allclose(results, eagers, rtol=1e-8, err_msg="vmap differs from the eager likelihood")
    per_call = vmapped["steady_per_call_s"] / batch_size
    print(
        f"  batch of {batch_size}: lower {vmapped['lower_s']:.3f} s | compile {vmapped['compile_s']:.3f} s | "
        f"{vmapped['steady_per_call_s'] * 1e3:.3f} ms per batch, {per_call * 1e3:.3f} ms per instance"
    )
    print(
        "  every lane equals its single call (rtol 1e-10)"
        + (" and the eager likelihood (rtol 1e-8)" if eager_likelihood is not None else "")
    )
    return {
        "batch_size": batch_size,
        **util.timings_only(vmapped),
        "per_call": per_call,
        "results": results,
        "memory_mb": util.memory_mb(vmapped["compiled"]),
    }


def gradient_check(likelihood: Callable, model, vector, steps: Sequence[float], rtol: float, repeats: int) -> Dict:
    """
    `jax.jit(jax.grad(likelihood))` at `vector`, timed against one likelihood call (apart, and called in turn),
    read by name and asserted equal to fourth-order central differences of the compiled likelihood itself at
    every one of `steps` (times max(1, |value|)) to `rtol` in every parameter.
    """
    print("\n--- Gradient by name against central differences ---")
    instance = util.on_device(model.instance_from_vector(vector=list(vector)))

    likelihood_at = util.time_jit(likelihood, instance, repeats=repeats)
    gradient_at = grad_util.time_gradient(likelihood, instance, repeats=repeats)
    gradient = util.values_by_name(gradient_at["result"])

    by_step = {}
    for step in steps:
        differences = grad_util.finite_difference_gradient(likelihood_at["jitted"], model, vector, step=step)
        by_step[step] = grad_util.relative_errors(gradient, differences)

    summary = grad_util.gradient_summary(likelihood_at, gradient_at, gradient, differences)
    summary["relative_error_by_step"] = {f"{step:g}": errors for step, errors in by_step.items()}
    summary["max_relative_error"] = max(max(errors.values()) for errors in by_step.values())
    summary["finite_difference_steps"] = list(steps)
    summary["rtol"] = rtol
    grad_util.print_gradient_summary(summary)
    for step, errors in by_step.items():
        print(f"  step {step:g}: largest relative error {max(errors.values()):.2e}")

    # The two programs again, called in turn, so a shared machine whose speed drifts slows both alike.
    interleaved = util.time_interleaved(
        {"likelihood": (likelihood_at["jitted"], instance), "gradient": (gradient_at["jitted"], instance)}, repeats
    )
    summary["interleaved_steady_per_call_s"] = interleaved
    summary["gradient_over_likelihood_interleaved"] = interleaved["gradient"] / interleaved["likelihood"]
    print(
        f"  called in turn: likelihood {interleaved['likelihood'] * 1e3:.3f} ms, gradient "
        f"{interleaved['gradient'] * 1e3:.3f} ms ({summary['gradient_over_likelihood_interleaved']:.2f}x)"
    )
    assert summary["gradient_finite"], "the gradient has NaN / inf leaves"
    assert summary["max_relative_error"] < rtol, (
        f"gradient differs from central differences by {summary['max_relative_error']:.2e} (rtol {rtol})"
    )
    return summary


def einstein_radius_scan(likelihood: Callable, instance, values, truth: float, plot_path: Path, title: str) -> Dict:
    """
    The log likelihood and its `jax.grad` at each of `values` of the one leaf named `einstein_radius`, every other
    leaf held: one `jax.vmap` of `jax.value_and_grad` over that leaf, asserted finite and plotted in two panels.
    """
    print("\n--- Einstein radius scan ---")
    log_likelihoods, derivatives, timing = grad_util.gradient_scan(likelihood, instance, "einstein_radius", values)
    assert np.isfinite(log_likelihoods).all() and np.isfinite(derivatives).all(), "the scan is not finite"
    best = float(values[int(np.argmax(log_likelihoods))])
    print(
        f"  {len(values)} points: lower {timing['lower_s']:.2f} s | compile {timing['compile_s']:.2f} s | "
        f"scan {timing['steady_per_call_s']:.3f} s; best {best:.4f} (simulated {truth}); all finite"
    )
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    grad_util.plot_scan_with_gradient(values, log_likelihoods, derivatives, plot_path, truth=truth, title=title)
    print(f"  plot: {plot_path}")
    return {
        "leaf": [name for name in util.leaf_names(instance) if name.endswith("einstein_radius")][0],
        "einstein_radius": [float(value) for value in values],
        "log_likelihood": [float(value) for value in log_likelihoods],
        "d_log_likelihood": [float(value) for value in derivatives],
        "best_einstein_radius": best,
        "simulated_einstein_radius": truth,
        **util.timings_only(timing),
    }


def write_summary(summary: Dict, results_dir: Path, stem: str, title: str, subtitle: str) -> Path:
    """
    `summary` to `<results_dir>/<stem>.json`, and a bar chart of the cumulative step times with the full
    pipeline, the vmap per-instance time and the gradient as lines to `<results_dir>/<stem>.png`.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{stem}.json"
    path.write_text(json.dumps(summary, indent=2))
    print(f"\n  summary: {path}")

    full = summary["full_pipeline"]
    lines = [
        (
            full["steady_per_call_s"],
            f"full pipeline (single JIT): {full['steady_per_call_s'] * 1e3:.2f} ms "
            f"(lower {full['lower_s']:.1f} s, compile {full['compile_s']:.1f} s)",
            "#C44E52",
        ),
        (
            summary["vmap"]["per_call"],
            f"vmap batch of {summary['vmap']['batch_size']}, per instance: {summary['vmap']['per_call'] * 1e3:.2f} ms",
            "#55A868",
        ),
    ]
    gradient = summary.get("gradient")
    if gradient is not None:
        seconds = gradient["interleaved_steady_per_call_s"]["gradient"]
        lines.append(
            (
                seconds,
                f"jit(grad): {seconds * 1e3:.2f} ms ({gradient['gradient_over_likelihood_interleaved']:.2f}x the "
                f"likelihood called in turn with it),\nlargest relative error vs central differences "
                f"{gradient['max_relative_error']:.1e}",
                "#DD8452",
            )
        )
    chart_path = results_dir / f"{stem}.png"
    util.bar_chart(
        chart_path,
        {f"{label} (up to here)": timing["steady_per_call_s"] for label, timing in summary["step_timings"].items()},
        lines,
        title=title,
        subtitle=subtitle,
        height=2.5 + 0.35 * len(summary["step_timings"]) + 0.3 * len(lines),
        legend_offset=-0.18,
    )
    print(f"  chart: {chart_path}")
    return path
