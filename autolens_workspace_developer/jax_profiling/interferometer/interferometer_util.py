"""
Interferometer Util: What The Interferometer Profiling Scripts Share
====================================================================

`mge.py` and `pixelization.py` fit the same simulated visibilities (`simulators/interferometer.py`) with the
direct Fourier transform, and measure the same things in the same way: the likelihood step by step and as one
program, a `jax.vmap` batch, the gradient by name against central differences, and a scan over one named leaf.
This module holds the dataset, the two models and those measurements; the timers, leaf names and bar chart are
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
from simulators import interferometer as simulator

GAUSSIANS_PER_GALAXY = 20
RECTANGULAR_MESH_SHAPE = (20, 20)


"""
__Dataset__
"""


def load_dataset() -> al.Interferometer:
    """The simulated visibilities (simulated first if not on disk), fitted through `al.TransformerDFT`."""
    folder = simulator.ensure()
    return al.Interferometer(
        data=al.Visibilities(np.load(folder / "visibilities.npy")),
        noise_map=al.VisibilitiesNoiseMap(np.load(folder / "noise_map.npy")),
        uv_wavelengths=np.load(folder / "uv_wavelengths.npy"),
        real_space_mask=simulator.real_space_mask(),
        transformer_class=al.TransformerDFT,
    )


def configuration_of(dataset: al.Interferometer) -> Dict:
    """The numbers that set the likelihood's run time, as the summary JSON reports them."""
    return {
        "transformer": type(dataset.transformer).__name__,
        "pixel_scale_arcsec": simulator.PIXEL_SCALE,
        "mask_radius_arcsec": simulator.MASK_RADIUS,
        "real_space_pixels": int(dataset.real_space_mask.pixels_in_mask),
        "visibilities": int(dataset.data.shape[0]),
    }


"""
__Models__
"""


def mge_model() -> af.Collection:
    """
    The MGE lens model (15 free parameters), as `imaging/mge.py`'s: an `Isothermal` mass, `ExternalShear` and
    20 linear Gaussians per galaxy sharing one centre and one ell_comps, their intensities solved for by the
    non-negative inversion.
    """
    lens = af.Model(
        al.Galaxy,
        redshift=0.5,
        bulge=al.model_util.mge_model_from(
            mask_radius=simulator.MASK_RADIUS,
            total_gaussians=GAUSSIANS_PER_GALAXY,
            centre_prior_is_uniform=True,
        ),
        mass=af.Model(al.mp.Isothermal),
        shear=af.Model(al.mp.ExternalShear),
    )
    source = af.Model(
        al.Galaxy,
        redshift=1.0,
        bulge=al.model_util.mge_model_from(
            mask_radius=simulator.MASK_RADIUS,
            total_gaussians=GAUSSIANS_PER_GALAXY,
            centre_prior_is_uniform=False,
        ),
    )
    return af.Collection(galaxies=af.Collection(lens=lens, source=source))


def rectangular_model() -> af.Collection:
    """
    The pixelized-source model (14 free parameters): a `Sersic` lens bulge, `Isothermal` mass and `ExternalShear`;
    the source a fixed `Pixelization` (a `RectangularUniform` mesh, `Constant` regularization), whose mesh shape
    and coefficient are static parts of the pytree.
    """
    lens = af.Model(
        al.Galaxy,
        redshift=0.5,
        bulge=af.Model(al.lp.Sersic),
        mass=af.Model(al.mp.Isothermal),
        shear=af.Model(al.mp.ExternalShear),
    )
    pixelization = al.Pixelization(
        mesh=al.mesh.RectangularUniform(shape=RECTANGULAR_MESH_SHAPE),
        regularization=al.reg.Constant(coefficient=1.0),
    )
    source = af.Model(al.Galaxy, redshift=1.0, pixelization=pixelization)
    return af.Collection(galaxies=af.Collection(lens=lens, source=source))


def reference_vector(model: af.Collection) -> np.ndarray:
    """
    The prior medians, with the lens mass and shear (and a `Sersic` lens bulge) at the simulated values,
    addressed by their priors, never by their place in the vector.
    """
    truth = simulator.true_tracer().galaxies[0]
    lens = model.galaxies.lens
    overrides = {
        lens.mass.einstein_radius: truth.mass.einstein_radius,
        lens.mass.ell_comps.ell_comps_0: truth.mass.ell_comps[0],
        lens.mass.ell_comps.ell_comps_1: truth.mass.ell_comps[1],
        lens.shear.gamma_1: truth.shear.gamma_1,
        lens.shear.gamma_2: truth.shear.gamma_2,
    }
    if getattr(lens.bulge, "cls", None) is al.lp.Sersic:
        for name in ("intensity", "effective_radius", "sersic_index"):
            overrides[getattr(lens.bulge, name)] = getattr(truth.bulge, name)
        overrides[lens.bulge.ell_comps.ell_comps_0] = truth.bulge.ell_comps[0]
        overrides[lens.bulge.ell_comps.ell_comps_1] = truth.bulge.ell_comps[1]
    medians = model.physical_values_from_prior_medians
    return np.array([overrides.get(prior, median) for prior, median in zip(model.priors_ordered_by_id, medians)])


"""
__The Likelihood__
"""


def likelihood_function(dataset: al.Interferometer):
    """
    The analysis, and its log likelihood as a function of the instance: the closure every compiled program here
    takes (`jax.jit(likelihood)(instance)`), with no `Fitness` and no parameter vector.
    """
    analysis = al.AnalysisInterferometer(dataset=dataset, use_jax=True)

    def likelihood(instance):
        return analysis.log_likelihood_function(instance=instance)

    return analysis, likelihood


def eager_figure_of_merit(analysis, instance) -> float:
    """`FitInterferometer` in NumPy, with the analysis's settings: the reference every compiled value must equal."""
    return float(
        al.FitInterferometer(
            dataset=analysis.dataset,
            tracer=al.Tracer(galaxies=list(instance.galaxies)),
            settings=analysis.settings,
        ).figure_of_merit
    )


def check(value: float, reference: float, rtol: float, what: str):
    np.testing.assert_allclose(value, reference, rtol=rtol, err_msg=what)
    print(f"  {what}: equal (rtol {util.rtol_text(rtol)}, relative difference {abs(value / reference - 1):.1e})")


def array_of(value):
    """The plain array of a PyAuto structure (`Visibilities`, `Grid2D`) a compiled step returns."""
    return getattr(value, "array", value)


def profile_fit_steps(analysis, instance, steps: Dict[str, Callable], repeats: int) -> Dict[str, Dict]:
    """
    Each step compiled and timed as the likelihood *up to and including it*: `steps` maps a label to a function
    of the `FitInterferometer` the analysis builds from the instance inside the trace. A fit computes lazily, so
    returning one of its quantities compiles just the part of the likelihood that quantity needs. The times are
    cumulative; the difference between two consecutive steps is a guide to the later step's cost (XLA fuses and
    reorders, so it is not exact, and can even come out negative).
    """
    print("\n" + "=" * 70)
    print("PER-STEP JIT PROFILING (each step: the likelihood up to and including it)")
    print("=" * 70)
    profile = util.StepProfiler(repeats)
    for label, quantity in steps.items():
        profile(label, lambda instance, quantity=quantity: array_of(quantity(analysis.fit_from(instance))), instance)
    return profile.steps


def full_pipeline(likelihood: Callable, instance, figure_of_merit: float, repeats: int) -> Dict:
    """The whole likelihood as one compiled program, timed, and asserted equal to the eager fit (rtol 1e-8)."""
    print("\n" + "=" * 70)
    print("FULL-PIPELINE JIT")
    print("=" * 70)
    full = util.time_jit(likelihood, instance, repeats=repeats)
    print(
        f"  lower {full['lower_s']:.3f} s | compile {full['compile_s']:.3f} s | "
        f"first {full['first_call_s']:.4f} s | steady {full['steady_per_call_s'] * 1e3:.2f} ms"
    )
    print(f"  figure of merit = {float(full['result'])}")
    check(float(full["result"]), figure_of_merit, 1e-8, "jit equals the eager FitInterferometer")
    return full


def vmap_batch(likelihood: Callable, model, vector, batch_size: int, full: Dict, repeats: int) -> Dict:
    """
    `jax.vmap` over `batch_size` instances a little way from `vector`, stacked leaf by leaf into one instance:
    timed, and each lane asserted equal to the single-instance program's value (rtol 1e-10).
    """
    print("\n--- vmap batch ---")
    instances = util.different_instances(model, vector, batch_size)
    batch = util.stack_instances(instances)
    vmapped = util.time_jit(jax.vmap(likelihood), batch, repeats=repeats)
    singles = [float(full["jitted"](instance)) for instance in instances]
    results = [float(value) for value in vmapped["result"]]
    np.testing.assert_allclose(results, singles, rtol=1e-10, err_msg="vmap differs from single calls")
    per_call = vmapped["steady_per_call_s"] / batch_size
    print(
        f"  batch of {batch_size}: lower {vmapped['lower_s']:.3f} s | compile {vmapped['compile_s']:.3f} s | "
        f"{vmapped['steady_per_call_s'] * 1e3:.2f} ms per batch, {per_call * 1e3:.2f} ms per instance "
        f"({full['steady_per_call_s'] / per_call:.2f}x the single program's rate)"
    )
    print(f"  every lane equals its single call (rtol 1e-10): {len(set(results))} different values")
    return {
        "batch_size": batch_size,
        **util.timings_only(vmapped),
        "per_call": per_call,
        "results": results,
        "memory_mb": util.memory_mb(vmapped["compiled"]),
    }


def gradient_check(likelihood: Callable, model, vector, step: float, rtol: float, repeats: int) -> Dict:
    """
    `jax.jit(jax.grad(likelihood))` at a point 0.01 away from `vector` (no ell_comps exactly 0, where an axis
    ratio has no derivative), timed against one likelihood call, read by name, and asserted equal to
    fourth-order central differences of the jitted likelihood with steps `step` (max(1, |value|) times it) to
    `rtol` in every parameter.
    """
    print("\n--- Gradient by name against central differences ---")
    gradient_vector = util.jittered_vectors(np.asarray(vector), 2, scale=0.01, seed=1)[1]
    instance = util.on_device(model.instance_from_vector(vector=list(gradient_vector)))

    likelihood_at = util.time_jit(likelihood, instance, repeats=repeats)
    gradient_at = grad_util.time_gradient(likelihood, instance, repeats=repeats)
    gradient = util.values_by_name(gradient_at["result"])
    differences = grad_util.finite_difference_gradient(likelihood_at["jitted"], model, gradient_vector, step=step)

    summary = grad_util.gradient_summary(likelihood_at, gradient_at, gradient, differences)
    summary["finite_difference_step"] = step
    summary["rtol"] = rtol
    grad_util.print_gradient_summary(summary)

    # The two programs again, called in turn, so a shared machine whose speed drifts slows both alike.
    interleaved = util.time_interleaved(
        {"likelihood": (likelihood_at["jitted"], instance), "gradient": (gradient_at["jitted"], instance)}, repeats
    )
    summary["interleaved_steady_per_call_s"] = interleaved
    summary["gradient_over_likelihood_interleaved"] = interleaved["gradient"] / interleaved["likelihood"]
    print(
        f"  called in turn: likelihood {interleaved['likelihood'] * 1e3:.1f} ms, gradient "
        f"{interleaved['gradient'] * 1e3:.1f} ms ({summary['gradient_over_likelihood_interleaved']:.2f}x)"
    )
    assert summary["gradient_finite"], "the gradient has NaN / inf leaves"
    assert summary["max_relative_error"] < rtol, (
        f"gradient differs from central differences by {summary['max_relative_error']:.2e} (rtol {rtol})"
    )
    return summary


def einstein_radius_scan(likelihood: Callable, instance, points: int, plot_stem: str, title: str) -> Dict:
    """
    The log likelihood and its `jax.grad` along the one leaf named `einstein_radius`, every other leaf held
    (one `jax.vmap` of `jax.value_and_grad` over that leaf alone), plotted in two panels.
    """
    print("\n--- Einstein radius scan ---")
    centre = float(instance.galaxies.lens.mass.einstein_radius)
    values = np.linspace(0.9 * centre, 1.1 * centre, points)
    log_likelihoods, derivatives, timing = grad_util.gradient_scan(likelihood, instance, "einstein_radius", values)
    truth = float(simulator.true_tracer().galaxies[0].mass.einstein_radius)
    best = float(values[int(np.argmax(log_likelihoods))])
    print(
        f"  {points} points: lower {timing['lower_s']:.2f} s | compile {timing['compile_s']:.2f} s | "
        f"scan {timing['steady_per_call_s']:.3f} s; best {best:.4f} (simulated {truth})"
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
            f"full pipeline (single JIT): {full['steady_per_call_s'] * 1e3:.1f} ms "
            f"(lower {full['lower_s']:.1f} s, compile {full['compile_s']:.1f} s)",
            "#C44E52",
        ),
        (
            summary["vmap"]["per_call"],
            f"vmap batch of {summary['vmap']['batch_size']}, per instance: {summary['vmap']['per_call'] * 1e3:.1f} ms",
            "#55A868",
        ),
    ]
    gradient = summary.get("gradient")
    if gradient is not None:
        seconds = gradient["interleaved_steady_per_call_s"]["gradient"]
        lines.append(
            (
                seconds,
                f"jit(grad): {seconds * 1e3:.1f} ms ({gradient['gradient_over_likelihood_interleaved']:.2f}x the likelihood "
                f"called in turn with it), "
                f"largest relative error vs central differences {gradient['max_relative_error']:.1e}",
                "#DD8452",
            )
        )
    util.bar_chart(
        RESULTS_DIR / f"{stem}.png",
        {f"{label} (up to here)": seconds for label, seconds in summary["steps"].items()},
        lines,
        title=title,
        subtitle=subtitle,
        height=2.5 + 0.35 * len(summary["steps"]) + 0.3 * len(lines),
        legend_offset=-0.18,
    )
    print(f"  chart: {RESULTS_DIR / f'{stem}.png'}")
    return path


def steps_summary(steps: Dict[str, Dict]) -> Dict:
    """The JSON blocks of the cumulative step timings: steady time per step and each step's full record."""
    return {
        "steps": {label: timing["steady_per_call_s"] for label, timing in steps.items()},
        "step_timings": {label: util.timings_only(timing) for label, timing in steps.items()},
    }
