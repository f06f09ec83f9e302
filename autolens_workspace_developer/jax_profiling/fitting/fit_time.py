"""
Fitting: Time To The Maximum Likelihood
=======================================

How long does it take to fit a lens, and which search gets there? `--lens mge` (the default) is the MGE lens of
`../imaging/mge.py` (hst, 15 free parameters); `--lens point` the quad of `../point_source/image_plane.py`
(4 image positions and fluxes, image-plane pairs, 10 free parameters). This script fits it, in one process, with:

- **L-BFGS, finite differences**: what `af.LBFGS` ran as released with an analysis that uses JAX: scipy's
  L-BFGS-B minimising `Fitness._jit` (the chi-squared of the log posterior), every gradient made of one
  likelihood call per parameter;
- **L-BFGS, exact gradient**: the same minimisation given `jax.value_and_grad` of the same figure of merit, as
  `af.LBFGS` now runs it (the objective the search hands scipy, and the search itself end to end);
- **multi-start Adam**: `af.MultiStartAdam`, starts drawn from the priors and optimised together by
  `jax.vmap`, its best refined by the exact L-BFGS-B.

The local methods start at the good start (the point every profile of that lens is evaluated at: for the MGE
lens the prior medians with the lens mass and shear at the truth, for the quad the truth moved slightly): from the
MGE lens's prior medians every local method stalls near log L -158,000, the Einstein radius having to be found
first. The multi-start search starts from the priors.

For each: wall time end to end (compile included), likelihood and gradient evaluations, the final log
likelihood and the lens mass and shear by name against the truth.

__Usage__

    python fit_time.py                      # every search, defaults
    python fit_time.py --starts 16 --steps 150
    python fit_time.py --lens point
    python fit_time.py --skip finite_differences
    python fit_time.py --skip af_lbfgs multi_start --cache /tmp/jax_cache   # twice: the second run is cached

A second run with `--cache` (JAX's persistent compilation cache) shows a fit's time without its compile (the
lowering, Python tracing, is never cached); its results go to `fit_time_<lens>_cached.json` when the cache
folder held programs before the run, `fit_time_<lens>_filling_the_cache.json` when it did not.
"""

"""
__64-bit JAX__

Before any other import, for the reason given in `../imaging/mge.py`.
"""
import os

os.environ["JAX_ENABLE_X64"] = "True"

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import autofit as af
import autolens as al
from autoconf import conf
from autofit.non_linear.fitness import Fitness
from autofit.non_linear.search.mle.bfgs.search import _ExactGradient
from scipy import optimize

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

SEARCHES = ("finite_differences", "exact_gradient", "af_lbfgs", "multi_start")

parser = argparse.ArgumentParser(description="Time to the maximum likelihood of a lens, by search.")
parser.add_argument("--lens", default="mge", choices=("mge", "point"), help="the MGE lens (hst) or the point quad")
parser.add_argument("--starts", type=int, default=16, help="multi-start Adam: starts drawn from the priors (16)")
parser.add_argument("--steps", type=int, default=150, help="multi-start Adam: Adam steps per start (150)")
parser.add_argument("--learning-rate", type=float, default=0.01, help="multi-start Adam: in prior widths (0.01)")
parser.add_argument("--sweeps", type=int, default=2, help="multi-start Adam: sweeps over the parameters first (2)")
parser.add_argument("--sweep-points", type=int, default=16, help="multi-start Adam: values per parameter a sweep compares (16)")
parser.add_argument("--polish", type=int, default=1, help="multi-start Adam: best starts refined by L-BFGS-B (1)")
parser.add_argument("--skip", nargs="*", default=[], choices=SEARCHES, help="searches not run")
parser.add_argument(
    "--cache",
    default=None,
    help="keep compiled programs in this folder (JAX's persistent cache): a second run with it compiles nothing",
)
args = parser.parse_args()

if args.cache is not None:
    jax.config.update("jax_compilation_cache_dir", args.cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)

"""
__Dataset, Model And Analysis__

Each lens's dataset (simulated on first use by its group's simulator), model and JAX analysis, built as its
profiling script builds them, with its good start and its true lens galaxy. The searches write their output under
`fitting/output/`.
"""


def mge_lens():
    """The hst dataset, masked and over-sampled as `../imaging/mge.py` does, and its MGE model (15 parameters)."""
    sys.path.insert(0, str(HERE.parent / "imaging"))
    from simulators import imaging as simulator

    folder, radius = simulator.ensure("hst"), simulator.MASK_RADIUS
    dataset = al.Imaging.from_fits(
        data_path=folder / "data.fits", noise_map_path=folder / "noise_map.fits", psf_path=folder / "psf.fits",
        pixel_scales=simulator.INSTRUMENTS["hst"]["pixel_scale"],
    )
    dataset = dataset.apply_mask(al.Mask2D.circular(dataset.shape_native, radius, dataset.pixel_scales))
    dataset = dataset.apply_over_sampling(
        over_sample_size_lp=al.util.over_sample.over_sample_size_via_radial_bins_from(
            grid=dataset.grid, sub_size_list=[4, 2, 1], radial_list=[0.3, 0.6], centre_list=[(0.0, 0.0)]
        )
    )
    lens = af.Model(
        al.Galaxy, redshift=0.5, mass=al.mp.Isothermal, shear=al.mp.ExternalShear,
        bulge=al.model_util.mge_model_from(mask_radius=radius, total_gaussians=20, centre_prior_is_uniform=True),
    )
    source_light = al.model_util.mge_model_from(mask_radius=radius, total_gaussians=20, centre_prior_is_uniform=False)
    source = af.Model(al.Galaxy, redshift=1.0, bulge=source_light)
    model = af.Collection(galaxies=af.Collection(lens=lens, source=source))

    # The good start: the prior medians, the lens mass and shear at their simulated values.
    true_lens = simulator.true_tracer().galaxies[0]
    start = af.values_by_path(model, model.instance_from_prior_medians())
    for component in ("mass", "shear"):
        simulated = af.values_by_path(getattr(lens, component), getattr(true_lens, component))
        start.update({f"galaxies.lens.{component}.{name}": value for name, value in simulated.items()})
    analysis = al.AnalysisImaging(dataset=dataset, use_jax=True)
    return "mge_hst", model, analysis, np.array(list(start.values())), true_lens


def point_lens():
    """The quad and model of `../point_source/image_plane.py` (10 parameters); the good start is its instance."""
    sys.path.insert(0, str(HERE.parent / "point_source"))
    from simulators import point_source as simulator

    dataset = al.from_json(file_path=simulator.ensure() / "point_dataset.json")
    grid = al.Grid2D.uniform(shape_native=(44, 44), pixel_scales=0.1)
    solver = al.PointSolver.for_grid(grid=grid, pixel_scale_precision=0.001, magnification_threshold=0.1)
    lens = af.Model(al.Galaxy, redshift=0.5, mass=al.mp.Isothermal, shear=al.mp.ExternalShear)
    source = af.Model(al.Galaxy, redshift=1.0, point_0=al.ps.PointFlux)
    model = af.Collection(galaxies=af.Collection(lens=lens, source=source))
    true_lens, true_source = simulator.true_tracer().galaxies
    simulated = [*af.values_by_path(lens, true_lens).values(), *af.values_by_path(source, true_source).values()]
    analysis = al.AnalysisPoint(dataset, solver, fit_positions_cls=al.FitPositionsImagePairAll, use_jax=True)
    return "point_quad", model, analysis, np.array(simulated) + 0.002, true_lens


cached_before = args.cache is not None and Path(args.cache).is_dir() and any(Path(args.cache).iterdir())
conf.instance.output_path = str(HERE / "output")
lens_name, model, analysis, good_start, true_lens = {"mge": mge_lens, "point": point_lens}[args.lens]()

fitness = Fitness(
    model=model,
    analysis=analysis,
    fom_is_log_likelihood=False,
    resample_figure_of_merit=-np.inf,
    convert_to_chi_squared=True,
)
bounds = af.LBFGS().bounds_from(model)


def log_likelihood_of(vector) -> float:
    """The log likelihood at `vector`: the figure of merit is -2 (log likelihood + log prior)."""
    log_prior = sum(model.log_prior_list_from_vector(vector=list(vector)))
    return -0.5 * float(fitness._jit(np.asarray(vector))) - log_prior


def lens_by_name(instance) -> dict:
    """The lens mass and shear by the model's names, with the truth beside each."""
    lens = model.galaxies.lens
    named = {}
    for component in ("mass", "shear"):
        fitted = af.values_by_path(getattr(lens, component), getattr(instance.galaxies.lens, component))
        truth = af.values_by_path(getattr(lens, component), getattr(true_lens, component))
        named.update({f"{component}.{name}": (float(fitted[name]), float(truth[name])) for name in fitted})
    return named


class Counted:
    """A function that counts its calls."""

    def __init__(self, function):
        self.function, self.calls = function, 0

    def __call__(self, *arguments):
        self.calls += 1
        return self.function(*arguments)


"""
__Searches__
"""
results = {}


def report(name, seconds, vector, likelihood_evaluations, gradient_evaluations, **extra):
    instance = model.instance_from_vector(vector=list(vector))
    results[name] = {
        "seconds": seconds,
        "log_likelihood": log_likelihood_of(vector),
        "likelihood_evaluations": likelihood_evaluations,
        "gradient_evaluations": gradient_evaluations,
        "lens_fitted_and_truth": lens_by_name(instance),
        **extra,
    }
    print(f"{name:<20} {seconds:8.1f} s  log L {results[name]['log_likelihood']:14.4f}  "
          f"likelihood evaluations {likelihood_evaluations}")


if "finite_differences" not in args.skip:
    objective = Counted(fitness._jit)
    start = time.perf_counter()
    found = optimize.minimize(objective, good_start, method="L-BFGS-B")
    report("finite_differences", time.perf_counter() - start, found.x, objective.calls, None, iterations=int(found.nit))

if "exact_gradient" not in args.skip:
    objective = Counted(_ExactGradient(fitness))
    start = time.perf_counter()
    found = optimize.minimize(objective, good_start, jac=True, method="L-BFGS-B", bounds=bounds)
    report("exact_gradient", time.perf_counter() - start, found.x, objective.calls, objective.calls,
           iterations=int(found.nit))

if "af_lbfgs" not in args.skip:
    # The search end to end: its output, its start point drawn at the good start, its visualisation.
    start_points = dict(zip(model.priors_ordered_by_id, good_start))
    search = af.LBFGS(name=f"af_lbfgs_{lens_name}", initializer=af.InitializerParamStartPoints(start_points))
    start = time.perf_counter()
    result = search.fit(model=model, analysis=analysis)
    info = result.samples.samples_info
    report("af_lbfgs", time.perf_counter() - start, result.samples.max_log_likelihood(as_instance=False),
           info["likelihood_evaluations"], info["gradient_evaluations"], iterations=info["total_iterations"])

if "multi_start" not in args.skip:
    search = af.MultiStartAdam(
        name=f"multi_start_{lens_name}", starts=args.starts, steps=args.steps, learning_rate=args.learning_rate,
        sweeps=args.sweeps, sweep_points=args.sweep_points, polish=args.polish,
    )
    start = time.perf_counter()
    result = search.fit(model=model, analysis=analysis)
    finals = sorted(result.samples.log_likelihood_list, reverse=True)
    report("multi_start", time.perf_counter() - start, result.samples.max_log_likelihood(as_instance=False),
           result.samples.samples_info["likelihood_evaluations"], result.samples.samples_info["gradient_evaluations"],
           starts=args.starts, steps=args.steps, learning_rate=args.learning_rate, sweeps=args.sweeps,
           sweep_points=args.sweep_points, polish=args.polish, final_log_likelihoods=finals)

"""
__Results__
"""
if "finite_differences" in results and "exact_gradient" in results:
    results["ratio_finite_differences_over_exact"] = (
        results["finite_differences"]["seconds"] / results["exact_gradient"]["seconds"]
    )
    print(f"finite differences / exact gradient, end to end: {results['ratio_finite_differences_over_exact']:.2f}")

suffix = "" if args.cache is None else ("_cached" if cached_before else "_filling_the_cache")
if args.skip:  # a partial run is saved beside the full one, named by what it ran
    suffix += "_" + "_".join(name for name in SEARCHES if name not in args.skip)
out = HERE / "results" / f"fit_time_{lens_name}{suffix}.json"
out.parent.mkdir(exist_ok=True)
out.write_text(json.dumps({"machine": f"{os.cpu_count()} cores, jax {jax.__version__}", **results}, indent=1))
print(f"results: {out}")
