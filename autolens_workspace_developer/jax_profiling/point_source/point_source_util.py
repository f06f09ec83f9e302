"""
Point Source Util: What The Point-Source Profiling Scripts Share
================================================================

`source_plane.py` and `image_plane.py` fit the same simulated quad (`simulators/point_source.py`: 4 image
positions and their fluxes) with the same lens model, and measure the same things in the same way: the
likelihood step by step and as one program (asserted equal to the eager NumPy likelihood), a `jax.vmap` batch,
the gradient by name against central differences (a sweep of steps), and a scan over one named leaf. This module
holds the dataset, the model and those measurements; the timers, leaf names and bar chart are
`profiling_util`'s, the gradient helpers `gradients_util`'s (both one folder up).

Every check asserts, so a run either prints its numbers or stops at the first that is wrong.
"""

import os

# The scripts set this themselves before importing anything; repeating it here keeps the module safe to
# import on its own (a PyAuto import that comes first would otherwise leave JAX in 32-bit mode).
os.environ["JAX_ENABLE_X64"] = "True"

import json
import sys
from pathlib import Path
from typing import Callable, Dict

import jax
import numpy as np

import autofit as af
import autolens as al

SCRIPT_DIR = Path(__file__).resolve().parent
RESULTS_DIR = SCRIPT_DIR / "results"

sys.path.insert(0, str(SCRIPT_DIR.parent))  # profiling_util and gradients_util

import gradients_util as grad_util
import profiling_util as util
from simulators import point_source as simulator

# Fourth-order central differences at each of these steps must equal jax.grad to RTOL in every parameter.
FINITE_DIFFERENCE_STEPS = (1e-4, 1e-5, 1e-6)
RTOL = 1e-4


"""
__Dataset And Model__
"""


def load_dataset() -> al.PointDataset:
    """The simulated positions and fluxes (simulated first if not on disk), named `point_0`."""
    folder = simulator.ensure()
    return al.PointDataset(
        name="point_0",
        positions=al.Grid2DIrregular(np.load(folder / "positions.npy")),
        positions_noise_map=simulator.POSITION_NOISE,
        fluxes=al.ArrayIrregular(np.load(folder / "fluxes.npy")),
        fluxes_noise_map=al.ArrayIrregular(np.load(folder / "fluxes_noise_map.npy")),
    )


def configuration_of(dataset: al.PointDataset) -> Dict:
    """The numbers that set the likelihood's run time, as the summary JSON reports them."""
    solver = simulator.solver()
    return {
        "images": len(dataset.positions),
        "fluxes": dataset.fluxes is not None,
        "position_noise_arcsec": simulator.POSITION_NOISE,
        "solver_pixel_scale_arcsec": simulator.SOLVER_PIXEL_SCALE,
        "solver_shape": list(simulator.SOLVER_SHAPE),
        "solver_precision_arcsec": simulator.SOLVER_PRECISION,
        "solver_refinement_steps": solver.n_steps,
    }


def point_model() -> af.Collection:
    """An `Isothermal` mass and `ExternalShear`, the point source's centre and flux: 10 free parameters."""
    lens = af.Model(al.Galaxy, redshift=0.5, mass=af.Model(al.mp.Isothermal), shear=af.Model(al.mp.ExternalShear))
    source = af.Model(al.Galaxy, redshift=1.0, point_0=af.Model(al.ps.PointFlux))
    return af.Collection(galaxies=af.Collection(lens=lens, source=source))


def reference_vector(model: af.Collection) -> np.ndarray:
    """
    The simulated values, each moved by a fixed small amount (a point near the best fit, not on it, where the
    gradient is not zero and the model has the 4 images), addressed by their priors.
    """
    truth = simulator.true_tracer()
    lens, point = truth.galaxies[0], truth.galaxies[1].point_0
    priors = model.galaxies.lens.mass, model.galaxies.lens.shear, model.galaxies.source.point_0
    values = {
        priors[0].centre.centre_0: 0.002,
        priors[0].centre.centre_1: -0.001,
        priors[0].ell_comps.ell_comps_0: lens.mass.ell_comps[0] + 0.002,
        priors[0].ell_comps.ell_comps_1: lens.mass.ell_comps[1] - 0.001,
        priors[0].einstein_radius: lens.mass.einstein_radius + 0.002,
        priors[1].gamma_1: lens.shear.gamma_1 - 0.001,
        priors[1].gamma_2: lens.shear.gamma_2 + 0.001,
        priors[2].centre.centre_0: point.centre[0] + 0.001,
        priors[2].centre.centre_1: point.centre[1] - 0.001,
        priors[2].flux: point.flux * 1.01,
    }
    return np.array([values[prior] for prior in model.priors_ordered_by_id])


"""
__The Likelihood__
"""


def analyses(dataset: al.PointDataset, fit_positions_cls):
    """
    The JAX analysis, its log likelihood as a function of the instance (the closure every compiled program here
    takes), and the eager NumPy analysis every compiled value must equal. Both are given the one NumPy solver;
    the JAX analysis runs a copy of it made for JAX.
    """
    solver = simulator.solver()
    analysis = al.AnalysisPoint(dataset=dataset, solver=solver, fit_positions_cls=fit_positions_cls, use_jax=True)
    eager = al.AnalysisPoint(dataset=dataset, solver=solver, fit_positions_cls=fit_positions_cls, use_jax=False)

    def likelihood(instance):
        return analysis.log_likelihood_function(instance=instance)

    return analysis, likelihood, eager


def check(value: float, reference: float, rtol: float, what: str):
    np.testing.assert_allclose(value, reference, rtol=rtol, err_msg=what)
    print(f"  {what}: equal (rtol {util.rtol_text(rtol)}, relative difference {abs(value / reference - 1):.1e})")


def profile_fit_steps(analysis, instance, steps: Dict[str, Callable], repeats: int) -> Dict[str, Dict]:
    """
    Each step compiled and timed as the likelihood *up to and including it*: `steps` maps a label to a function
    of the `FitPointDataset` the analysis builds from the instance inside the trace (the times are cumulative;
    XLA drops what a step's result does not need).
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


def full_pipeline(likelihood: Callable, instance, eager_log_likelihood: float, repeats: int) -> Dict:
    """The whole likelihood as one compiled program, timed, and asserted equal to the eager fit (rtol 1e-8)."""
    print("\n" + "=" * 70)
    print("FULL-PIPELINE JIT")
    print("=" * 70)
    full = util.time_jit(likelihood, instance, repeats=repeats)
    print(
        f"  lower {full['lower_s']:.3f} s | compile {full['compile_s']:.3f} s | "
        f"first {full['first_call_s']:.4f} s | steady {full['steady_per_call_s'] * 1e3:.3f} ms"
    )
    print(f"  log likelihood = {float(full['result'])}")
    check(float(full["result"]), eager_log_likelihood, 1e-8, "jit equals the eager (NumPy) likelihood")
    return full


def vmap_batch(likelihood: Callable, eager, model, vector, batch_size: int, full: Dict, repeats: int) -> Dict:
    """
    `jax.vmap` over `batch_size` instances a little way from `vector`, stacked leaf by leaf: timed, each lane
    asserted equal to the single-instance program (rtol 1e-10) and to the eager likelihood (rtol 1e-8).
    """
    print("\n--- vmap batch ---")
    instances = util.different_instances(model, vector, batch_size)
    vmapped = util.time_jit(jax.vmap(likelihood), util.stack_instances(instances), repeats=repeats)
    results = [float(value) for value in vmapped["result"]]
    singles = [float(full["jitted"](instance)) for instance in instances]
    eagers = [float(eager.log_likelihood_function(model.instance_from_vector(vector=list(v))))
              for v in util.jittered_vectors(vector, batch_size)]
    np.testing.assert_allclose(results, singles, rtol=1e-10, err_msg="vmap differs from single calls")
    np.testing.assert_allclose(results, eagers, rtol=1e-8, err_msg="vmap differs from the eager likelihood")
    per_call = vmapped["steady_per_call_s"] / batch_size
    print(
        f"  batch of {batch_size}: lower {vmapped['lower_s']:.3f} s | compile {vmapped['compile_s']:.3f} s | "
        f"{vmapped['steady_per_call_s'] * 1e3:.3f} ms per batch, {per_call * 1e3:.3f} ms per instance"
    )
    print(f"  every lane equals its single call (rtol 1e-10) and the eager likelihood (rtol 1e-8)")
    return {
        "batch_size": batch_size,
        **util.timings_only(vmapped),
        "per_call": per_call,
        "results": results,
        "memory_mb": util.memory_mb(vmapped["compiled"]),
    }


def gradient_check(likelihood: Callable, model, vector, repeats: int) -> Dict:
    """
    `jax.jit(jax.grad(likelihood))` at `vector`, timed against one likelihood call (called in turn), read by name
    and asserted equal to fourth-order central differences of the compiled likelihood itself at every step of
    `FINITE_DIFFERENCE_STEPS` (times max(1, |value|)) to `RTOL` in every parameter.
    """
    print("\n--- Gradient by name against central differences ---")
    instance = util.on_device(model.instance_from_vector(vector=list(vector)))

    likelihood_at = util.time_jit(likelihood, instance, repeats=repeats)
    gradient_at = grad_util.time_gradient(likelihood, instance, repeats=repeats)
    gradient = util.values_by_name(gradient_at["result"])

    by_step = {}
    for step in FINITE_DIFFERENCE_STEPS:
        differences = grad_util.finite_difference_gradient(likelihood_at["jitted"], model, vector, step=step)
        by_step[step] = grad_util.relative_errors(gradient, differences)

    summary = grad_util.gradient_summary(likelihood_at, gradient_at, gradient, differences)
    summary["relative_error_by_step"] = {f"{step:g}": errors for step, errors in by_step.items()}
    summary["max_relative_error"] = max(max(errors.values()) for errors in by_step.values())
    summary["finite_difference_steps"] = list(FINITE_DIFFERENCE_STEPS)
    summary["rtol"] = RTOL
    grad_util.print_gradient_summary(summary)
    for step, errors in by_step.items():
        print(f"  step {step:g}: largest relative error {max(errors.values()):.2e}")

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
    assert summary["max_relative_error"] < RTOL, (
        f"gradient differs from central differences by {summary['max_relative_error']:.2e} (rtol {RTOL})"
    )
    return summary


def einstein_radius_scan(likelihood: Callable, eager, instance, points: int, plot_stem: str, title: str) -> Dict:
    """
    The log likelihood and its `jax.grad` along the one leaf named `einstein_radius` (+-3%), every other leaf
    held: one `jax.vmap` of `jax.value_and_grad` over that leaf, plotted in two panels. Images appear and vanish
    along the scan (the caustic moves past the source): the likelihood jumps there, finite.
    """
    print("\n--- Einstein radius scan ---")
    centre = float(instance.galaxies.lens.mass.einstein_radius)
    values = np.linspace(0.97 * centre, 1.03 * centre, points)
    log_likelihoods, derivatives, timing = grad_util.gradient_scan(likelihood, instance, "einstein_radius", values)
    assert np.isfinite(log_likelihoods).all() and np.isfinite(derivatives).all(), "the scan is not finite"
    truth = float(simulator.true_tracer().galaxies[0].mass.einstein_radius)
    best = float(values[int(np.argmax(log_likelihoods))])
    print(
        f"  {points} points: lower {timing['lower_s']:.2f} s | compile {timing['compile_s']:.2f} s | "
        f"scan {timing['steady_per_call_s']:.3f} s; best {best:.4f} (simulated {truth}); all finite"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{plot_stem}.png"
    grad_util.plot_scan_with_gradient(values, log_likelihoods, derivatives, path, truth=truth, title=title)
    print(f"  plot: {path}")
    return {
        "leaf": [name for name in util.leaf_names(instance) if name.endswith("einstein_radius")][0],
        "einstein_radius": [float(value) for value in values],
        "log_likelihood": [float(value) for value in log_likelihoods],
        "d_log_likelihood": [float(value) for value in derivatives],
        "best_einstein_radius": best,
        "simulated_einstein_radius": truth,
        **util.timings_only(timing),
    }


"""
__Summary__
"""


def write_summary(summary: Dict, stem: str, title: str, subtitle: str) -> Path:
    """
    `summary` to `results/<stem>.json`, and a bar chart of the cumulative step times with the full pipeline,
    the vmap per-instance time and the gradient as lines to `results/<stem>.png`.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{stem}.json"
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
    util.bar_chart(
        RESULTS_DIR / f"{stem}.png",
        {f"{label} (up to here)": timing["steady_per_call_s"] for label, timing in summary["step_timings"].items()},
        lines,
        title=title,
        subtitle=subtitle,
        height=2.5 + 0.35 * len(summary["step_timings"]) + 0.3 * len(lines),
        legend_offset=-0.18,
    )
    print(f"  chart: {RESULTS_DIR / f'{stem}.png'}")
    return path
