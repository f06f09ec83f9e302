"""
JAX Profiling: The MGE Imaging Likelihood
=========================================

This script profiles the JAX likelihood of the lens model most imaging analyses start with: an `Isothermal` mass
with `ExternalShear`, and the light of the lens and of the source each a multi-Gaussian expansion (MGE) of 20
linear Gaussians, whose intensities a non-negative linear inversion solves for. The model has 15 free parameters.
The dataset is a simulated lens, observed by HST unless `--instrument` names another telescope (the pixel scale,
so the number of pixels, is what sets the likelihood's cost).

What is measured, each number asserted where it can be:

1. The likelihood step by step, from ray-tracing to the log likelihood.
2. The full likelihood compiled as one program, equal to the eager NumPy `FitImaging`.
3. The same likelihood taking the flat parameter vector a search's `Fitness` passes, against the instance.
4. A `jax.vmap` batch of instances, every lane equal to its single call and to the eager likelihood, and the same
   batch split over `--devices` devices.
5. `jax.grad` by parameter name, equal to central differences, its cost against one likelihood call and the
   1-sigma errors its Hessian gives (`--hessian`: also `jax.hessian` itself).
6. The likelihood and its gradient along the Einstein radius.

__Usage__

    python mge.py --instrument hst --repeats 10 --batch-size 3 --scan-points 21
    python mge.py --devices 2 --repeats 2 --batch-size 4 --scan-points 5
    python mge.py --cache /tmp/jax_cache        # twice: the second run loads its programs from the cache

On a CPU, `--devices N` makes N host devices. Results go to `results/mge_likelihood_summary_<instrument>_v<version>`
(`.json` and a bar chart) and the scan to `results/mge_einstein_radius_scan_<instrument>_v<version>.png`.
"""

"""
__64-bit JAX__

PyAuto switches JAX to 64-bit only if JAX has not been imported yet, so this comes before every other import (in
32-bit the MGE likelihood is NaN).
"""
import os

os.environ["JAX_ENABLE_X64"] = "True"

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import profiling_util as util

import autofit as af
import autolens as al

from simulators import imaging as simulator

results_path = Path(__file__).resolve().parent / "results"

"""
__Command Line__

The shared options (`--repeats`, `--batch-size`, `--scan-points`, `--gradient`, `--devices`) and this script's
own. The devices are set as soon as the line is parsed: on a CPU, JAX can make host devices only before its first
computation.
"""
parser = util.argument_parser(__doc__.split("\n")[1], devices=True)
parser.add_argument("--instrument", default="hst", choices=list(simulator.INSTRUMENTS), help="the telescope (hst)")
parser.add_argument(
    "--hessian", action=argparse.BooleanOptionalAction, default=False,
    help="also compile jax.hessian and check the errors it gives (default: no)",
)
parser.add_argument("--cache", default=None, help="a folder for JAX's persistent compilation cache (default: none)")
args = parser.parse_args()
devices = util.use_devices(args.devices)

"""
__Compilation Cache__

JAX can keep the programs it compiles on disk, so that a second run of a script (a notebook restarted, a search
resumed) loads them rather than compiling them again. Two settings, before the first `jax.jit`, turn it on for every
program that took a second or more to compile. Run this script twice with `--cache`: the second run's compile times
are the time to load each program.
"""
if args.cache:
    jax.config.update("jax_compilation_cache_dir", args.cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)

"""
__Dataset__

The lens is simulated by `simulators/imaging.py` the first time an instrument is profiled and read from
`dataset/imaging/<instrument>` after that. The mask is a 3.5" circle. The light profiles are evaluated on a grid
over-sampled where the lens light is steepest: 4 x 4 sub-pixels within 0.3" of the centre, 2 x 2 out to 0.6", one
beyond, as a real fit would.
"""
dataset_path = simulator.ensure(args.instrument)
dataset = al.Imaging.from_fits(
    data_path=dataset_path / "data.fits",
    noise_map_path=dataset_path / "noise_map.fits",
    psf_path=dataset_path / "psf.fits",
    pixel_scales=simulator.INSTRUMENTS[args.instrument]["pixel_scale"],
)
mask = al.Mask2D.circular(
    shape_native=dataset.shape_native, pixel_scales=dataset.pixel_scales, radius=simulator.MASK_RADIUS
)
dataset = dataset.apply_mask(mask=mask)
dataset = dataset.apply_over_sampling(
    over_sample_size_lp=al.util.over_sample.over_sample_size_via_radial_bins_from(
        grid=dataset.grid, sub_size_list=[4, 2, 1], radial_list=[0.3, 0.6], centre_list=[(0.0, 0.0)]
    )
)

"""
__Model__

`al.model_util.mge_model_from` makes a basis of 20 linear Gaussians whose sigmas are fixed and whose intensities
are solved for, so the free parameters of each basis are the one centre and one `ell_comps` all 20 share.
"""
lens_bulge = al.model_util.mge_model_from(
    mask_radius=simulator.MASK_RADIUS, total_gaussians=20, centre_prior_is_uniform=True
)
lens = af.Model(
    al.Galaxy, redshift=0.5, bulge=lens_bulge, mass=af.Model(al.mp.Isothermal), shear=af.Model(al.mp.ExternalShear)
)
source_bulge = al.model_util.mge_model_from(
    mask_radius=simulator.MASK_RADIUS, total_gaussians=20, centre_prior_is_uniform=False
)
source = af.Model(al.Galaxy, redshift=1.0, bulge=source_bulge)
model = af.Collection(galaxies=af.Collection(lens=lens, source=source))

"""
__Instance__

Every program here is compiled for a model instance: a JAX pytree whose leaves are the 15 free parameters, named by
`af.values_by_path` by their paths in the model (a prior shared by the 20 Gaussians is one leaf). The profile is
taken at the prior medians with the lens mass and shear at their simulated values, read by name from the simulated
lens, so the fit is a sensible one and the Einstein radius scan peaks near the truth.
"""
true_lens = simulator.true_tracer().galaxies[0]
parameters = dict(zip(model.joined_paths, model.physical_values_from_prior_medians))
for part in ("mass", "shear"):
    simulated = af.values_by_path(getattr(lens, part), getattr(true_lens, part))
    parameters.update({f"galaxies.lens.{part}.{name}": value for name, value in simulated.items()})
instance = model.instance_from_vector(vector=list(parameters.values()))
for name, value in af.values_by_path(model, instance).items():
    print(f"  {name} = {float(value):.4f}")

"""
__Analysis__

The JAX analysis gives the likelihood a search calls, `analysis.log_likelihood_function(instance)`. The same
analysis without JAX builds the `FitImaging` eagerly in NumPy: every compiled value is checked against its
`figure_of_merit`, which for a model without regularization is the log likelihood.
"""
analysis = al.AnalysisImaging(dataset=dataset, use_jax=True)
eager = al.AnalysisImaging(dataset=dataset, use_jax=False)
likelihood = analysis.log_likelihood_function

fit = eager.fit_from(instance=instance)
eager_log_likelihood = float(fit.figure_of_merit)
gaussians = fit.inversion.total_params
print(f"\n  {type(fit).__name__}: figure of merit {eager_log_likelihood} ({gaussians} linear Gaussians)")

"""
__The Likelihood Step By Step__

Each step is a quantity of the `FitImaging` that `analysis.fit_from(instance)` builds inside the trace, compiled and
timed as the likelihood up to and including it: the traced grids, the Gaussians' images (one column each), those
images convolved with the PSF, the data vector D and curvature matrix F of the linear problem, its non-negative
solution (the Gaussians' intensities), the model image and the log likelihood.
"""
steps = util.profile_fit_steps(
    analysis,
    instance,
    {
        "Ray-trace grids": lambda fit: [
            grid.array for grid in fit.tracer.traced_grid_2d_list_from(grid=dataset.grids.lp, xp=jnp)
        ],
        "Mapping matrix": lambda fit: fit.inversion.mapping_matrix,
        "Blurred mapping matrix": lambda fit: fit.inversion.operated_mapping_matrix,
        "Data vector (D)": lambda fit: fit.inversion.data_vector,
        "Curvature matrix (F)": lambda fit: fit.inversion.curvature_matrix,
        "Reconstruction (NNLS)": lambda fit: fit.inversion.reconstruction,
        "Model image": lambda fit: fit.model_data,
        "Log likelihood": lambda fit: fit.figure_of_merit,
    },
    args.repeats,
)
util.check(steps["Log likelihood"]["result"], eager_log_likelihood, 1e-8, "the last step equals FitImaging")

"""
__Full Pipeline__

The likelihood as one program, which is what a search compiles. XLA fuses across the steps, so it may cost less than
the last step above.
"""
full = util.full_pipeline(likelihood, instance, eager_log_likelihood, "FitImaging", args.repeats)

"""
__Pytree Versus Flat Vector__

A search's `Fitness` hands the compiled likelihood a flat vector and builds the instance from it inside the trace.
Given the instance itself, JAX flattens it to the same leaves on the way in: the two programs should cost the same
per call, and differ in how long they take to trace and in the Python work of crossing into JAX.
"""
flat_vector = util.flat_vector_ratio(likelihood, model, instance, args.repeats)

"""
__vmap And Devices__

Instances of one model share one tree structure, so a batch of them stacks leaf by leaf and one `jax.vmap`
evaluates it. With several devices the batch is also split over them (each leaf's batch axis sharded over a mesh
of the devices, each device evaluating its own lanes), checked against the one-device batch and timed against it.
"""
vmap = util.vmap_batch(
    likelihood, model, instance, args.batch_size, full, args.repeats,
    eager_likelihood=eager.log_likelihood_function, devices=devices,
)

"""
__Gradient By Name__

The non-negative solve is differentiated on its active set, so every derivative is finite and equals central
differences of the likelihood, except across the points where the active set changes (a Gaussian's intensity
reaching zero): there the curvature jumps, and differences that straddle one disagree. Near the truth such points
lie every few thousandths, and at exactly zero `ell_comps` the Gaussians' likelihood has a term in |e| e that
central differences see as an error of the order of their step. So the gradient is checked at the instance with
every value moved by 0.005, clear of both for hst and euclid (0.001 and 0.002 are not).

The Hessian, from differences of the compiled gradient, gives the 1-sigma errors of the parameters: the square
roots of the diagonal of the inverse Fisher matrix (minus the Hessian). With `--hessian`, `jax.hessian` (forward
over reverse) is compiled too; its errors must be the same.
"""
moved = model.instance_from_vector(vector=[value + 0.005 for value in parameters.values()])
gradient = None
if args.gradient:
    gradient = util.gradient_check(likelihood, model, moved, (1e-5, 1e-6), rtol=1e-6, repeats=args.repeats, errors=True)

if args.gradient and args.hessian:
    hessian = util.time_jit(jax.hessian(likelihood), moved, repeats=0)
    assert gradient["errors"] is not None, "the Fisher matrix is not positive definite here: no errors to compare"
    size = model.total_free_parameters
    matrix = np.reshape(np.asarray(jax.tree_util.tree_leaves(hessian["result"])), (size, size))
    errors = np.sqrt(np.diag(np.linalg.inv(-matrix)))
    print(f"  jax.hessian: lower {hessian['lower_s']:.2f} s | compile {hessian['compile_s']:.2f} s")
    util.check(errors, list(gradient["errors"].values()), 1e-4, "its errors equal the gradient differences'")
    gradient["hessian"] = {key: hessian[key] for key in ("lower_s", "compile_s", "first_call_s")}

"""
__Einstein Radius Scan__

The likelihood and its derivative at Einstein radii within 10% of the instance's, every other parameter held, as
one `jax.vmap` of `jax.value_and_grad` over that one leaf (XLA computes what does not depend on it, like the lens
light's images, once for the whole scan).
"""
version = al.__version__
scan = util.einstein_radius_scan(
    likelihood,
    model,
    instance,
    np.linspace(0.9, 1.1, args.scan_points) * float(instance.galaxies.lens.mass.einstein_radius),
    truth=true_lens.mass.einstein_radius,
    plot_path=results_path / f"mge_einstein_radius_scan_{args.instrument}_v{version}.png",
    title=f"MGE, {args.instrument.upper()}: log likelihood and jax.grad along the Einstein radius",
)

"""
__Summary__

The JSON's names are those of every profiling script; `configuration` holds what sets this likelihood's cost.
"""
configuration = {
    "instrument": args.instrument,
    "pixel_scale_arcsec": simulator.INSTRUMENTS[args.instrument]["pixel_scale"],
    "mask_radius_arcsec": simulator.MASK_RADIUS,
    "image_pixels_masked": int(dataset.data.shape[0]),
    "over_sampled_pixels": int(dataset.grids.lp.over_sampled.shape[0]),
    "linear_gaussians": gaussians,
    "free_parameters": model.total_free_parameters,
    "devices": len(devices),
    "compilation_cache": args.cache,
}
log_likelihood = {"eager": eager_log_likelihood, "jit": float(full["result"])}
summary = dict(autolens_version=version, configuration=configuration, log_likelihood=log_likelihood)
summary.update(steps=steps, full_pipeline=full, flat_vector=flat_vector, vmap=vmap, gradient=gradient)
summary.update(einstein_radius_scan=scan, repeats=args.repeats)
util.write_summary(
    summary,
    results_path,
    f"mge_likelihood_summary_{args.instrument}_v{version}",
    title=f"MGE imaging likelihood - {args.instrument.upper()}",
    subtitle=f"autolens v{version} | {configuration['pixel_scale_arcsec']}\"/px | "
    f"{configuration['image_pixels_masked']} pixels | {configuration['over_sampled_pixels']} over-sampled | "
    f"{gaussians} Gaussians | 15 free parameters",
)
