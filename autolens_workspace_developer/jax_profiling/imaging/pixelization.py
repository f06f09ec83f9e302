"""
JAX Profiling: A Pixelized Source On A Rectangular Mesh
=======================================================

This script profiles the JAX likelihood of a lens model whose source is not a parametric profile but an image:
the source plane is a 28 x 28 `RectangularUniform` mesh of pixels, whose fluxes a regularized, non-negative
linear inversion solves for at every likelihood call. The lens has a `Sersic` bulge, an `Isothermal` mass and
`ExternalShear` (14 free parameters); the mesh and its `Constant` regularization are fixed. The figure of merit a
search maximizes is the Bayesian log evidence of the source reconstruction.

What is measured, each number asserted where it can be:

1. The likelihood step by step, from ray-tracing to the log evidence.
2. The full likelihood compiled as one program, equal to the eager NumPy `FitImaging`.
3. The same likelihood taking the flat parameter vector a search's `Fitness` passes, against the instance.
4. A `jax.vmap` batch of instances, every lane equal to its single call and to the eager likelihood.
5. `jax.grad` by parameter name, equal to central differences, and its cost against one likelihood call.
6. The log evidence and its gradient along the Einstein radius.

__Usage__

    python pixelization.py --instrument hst --repeats 3 --batch-size 3 --scan-points 5

Results go to `results/pixelization_likelihood_summary_<instrument>_v<version>` (`.json` and a bar chart) and the
scan to `results/pixelization_einstein_radius_scan_<instrument>_v<version>.png`.
"""

"""
__64-bit JAX__

PyAuto switches JAX to 64-bit only if JAX has not been imported yet, so this comes before every other import.
"""
import os

os.environ["JAX_ENABLE_X64"] = "True"

import sys
from pathlib import Path

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

One likelihood call takes of order a second on a CPU, so fewer calls are timed than for an MGE. Every point of
the scan holds its own mapping matrix (pixels x source pixels) and that of its gradient, so it has fewer points.
"""
parser = util.argument_parser(__doc__.split("\n")[1], repeats=3, batch_size=3, scan_points=5)
parser.add_argument("--instrument", default="hst", choices=list(simulator.INSTRUMENTS), help="the telescope (hst)")
args = parser.parse_args()

"""
__Dataset__

The simulated lens of `simulators/imaging.py` (made the first time an instrument is profiled), inside a 3.5"
circular mask. The lens light is evaluated on a grid over-sampled near its centre, as in `mge.py`. The source
pixels are fitted to the grid of image pixels, one point each, which is traced to the source plane as it is.
"""
pixel_scale = simulator.INSTRUMENTS[args.instrument]["pixel_scale"]
dataset_path = simulator.ensure(args.instrument)
dataset = al.Imaging.from_fits(
    data_path=dataset_path / "data.fits",
    noise_map_path=dataset_path / "noise_map.fits",
    psf_path=dataset_path / "psf.fits",
    pixel_scales=pixel_scale,
)
mask = al.Mask2D.circular(
    shape_native=dataset.shape_native, pixel_scales=dataset.pixel_scales, radius=simulator.MASK_RADIUS
)
dataset = dataset.apply_mask(mask=mask)
over_sample_size_lp = al.util.over_sample.over_sample_size_via_radial_bins_from(
    grid=dataset.grid, sub_size_list=[4, 2, 1], radial_list=[0.3, 0.6], centre_list=[(0.0, 0.0)]
)
dataset = dataset.apply_over_sampling(over_sample_size_lp=over_sample_size_lp, over_sample_size_pixelization=1)

"""
__Model__

The pixelization is built by hand and given to the source as a fixed object: its mesh shape and regularization
coefficient are constants of the model, so they are part of the instance's static structure and one compile serves
every instance. Its source pixels are not free parameters either: the inversion solves for them.
"""
mesh_shape = (28, 28)
pixelization = al.Pixelization(
    mesh=al.mesh.RectangularUniform(shape=mesh_shape), regularization=al.reg.Constant(coefficient=1.0)
)
lens = af.Model(al.Galaxy, redshift=0.5, bulge=al.lp.Sersic, mass=al.mp.Isothermal, shear=al.mp.ExternalShear)
source = af.Model(al.Galaxy, redshift=1.0, pixelization=pixelization)
model = af.Collection(galaxies=af.Collection(lens=lens, source=source))

configuration = {
    "instrument": args.instrument,
    "image_pixels_masked": int(dataset.data.shape[0]),
    "over_sampled_pixels": int(dataset.grids.lp.over_sampled.shape[0]),
    "mesh_shape": list(mesh_shape),
    "source_pixels": mesh_shape[0] * mesh_shape[1],
    "free_parameters": model.total_free_parameters,
}
print(f"\n  {configuration}")

"""
__Instance__

The 14 free parameters are all the lens's, and the profile is taken at their simulated values, read by name
(`af.values_by_path`) from the simulated lens: at the prior medians its light would swamp the source.
"""
true_lens = simulator.true_tracer().galaxies[0]
instance = model.instance_from_vector(vector=list(af.values_by_path(lens, true_lens).values()))
for name, value in af.values_by_path(model, instance).items():
    print(f"  {name} = {float(value):.4f}")

"""
__Analysis__

The JAX analysis gives the likelihood a search calls: its `log_likelihood_function` returns the fit's
`figure_of_merit`, here the log evidence. The same analysis without JAX builds the `FitImaging` eagerly in NumPy,
and its `figure_of_merit` is what every compiled value is checked against (the eager `log_likelihood_function`
returns the fit's `log_likelihood`, which leaves out the regularization terms).
"""
analysis = al.AnalysisImaging(dataset=dataset, use_jax=True)
eager = al.AnalysisImaging(dataset=dataset, use_jax=False)
likelihood = analysis.log_likelihood_function


def eager_log_evidence_of(instance):
    return float(eager.fit_from(instance=instance).figure_of_merit)


eager_log_evidence = eager_log_evidence_of(instance)
print(f"\n  FitImaging: log evidence {eager_log_evidence}")

"""
__The Likelihood Step By Step__

Each step is a quantity of the `FitImaging` that `analysis.fit_from(instance)` builds inside the trace, compiled and
timed as the likelihood up to and including it:

- the image grid traced to the source plane, and the lens light convolved with the PSF and subtracted from the data,
- the mapping matrix (each image pixel's bilinear weights on the mesh, one column per source pixel) and the same
  columns convolved with the PSF,
- the linear problem: data vector D, curvature matrix F, regularization matrix H, and the non-negative solution
  of (F + H) s = D, the source's pixel fluxes,
- the model image and the log evidence (chi-squared, regularization and the log determinants of F + H and H).
"""
steps = util.profile_fit_steps(
    analysis,
    instance,
    {
        "Ray-trace image grid": lambda fit: fit.tracer.traced_grid_2d_list_from(
            grid=dataset.grids.pixelization, xp=jnp
        )[-1].array,
        "Lens light, blurred": lambda fit: fit.blurred_image,
        "Profile-subtracted image": lambda fit: fit.profile_subtracted_image,
        "Mapping matrix": lambda fit: fit.inversion.mapping_matrix,
        "Blurred mapping matrix": lambda fit: fit.inversion.operated_mapping_matrix,
        "Data vector (D)": lambda fit: fit.inversion.data_vector,
        "Curvature matrix (F)": lambda fit: fit.inversion.curvature_matrix,
        "Regularization matrix (H)": lambda fit: fit.inversion.regularization_matrix,
        "Reconstruction (NNLS)": lambda fit: fit.inversion.reconstruction,
        "Model image": lambda fit: fit.model_data,
        "Log evidence": lambda fit: fit.figure_of_merit,
    },
    args.repeats,
)
util.check(steps["Log evidence"]["result"], eager_log_evidence, 1e-8, "the last step equals FitImaging")

"""
__Full Pipeline__

The likelihood as one program, which is what a search compiles.
"""
full = util.full_pipeline(likelihood, instance, eager_log_evidence, "FitImaging", args.repeats)

"""
__Pytree Versus Flat Vector__

A search's `Fitness` passes a flat vector and builds the instance inside the trace; here the instance itself is
the input. Against a likelihood that takes a second, crossing into JAX with a pytree should cost nothing measurable.
"""
flat_vector = util.flat_vector_ratio(likelihood, model, instance, args.repeats)

"""
__vmap__

A batch of nearby instances, stacked leaf by leaf: one `jax.vmap` evaluates it, each lane its own mesh and
inversion.
"""
vmap = util.vmap_batch(
    likelihood, model, instance, args.batch_size, full, args.repeats, eager_likelihood=eager_log_evidence_of
)

"""
__Gradient By Name__

At the simulated values the mass centre sits exactly on the centre of an image pixel, where the isothermal's
deflection is singular: the log evidence is finite there, its derivatives in the mass centre and `ell_comps` are
NaN. The gradient is checked with every value moved by 0.005. The source is interpolated bilinearly on the mesh, so
the log evidence is smooth only between the parameters where a traced image pixel crosses from one source pixel
into the next: central differences agree with `jax.grad` only for steps small enough that none crosses.
"""
moved = model.instance_from_vector(vector=[value + 0.005 for value in af.values_by_path(model, instance).values()])
gradient = None
if args.gradient:
    gradient = util.gradient_check(likelihood, model, moved, (1e-7,), rtol=1e-5, repeats=args.repeats)

"""
__Einstein Radius Scan__

The log evidence and its derivative at Einstein radii within 10% of the simulated one, every other parameter held.
"""
version = al.__version__
simulated = true_lens.mass.einstein_radius
scan = util.einstein_radius_scan(
    likelihood, model, instance, np.linspace(0.9, 1.1, args.scan_points) * simulated, simulated,
    plot_path=results_path / f"pixelization_einstein_radius_scan_{args.instrument}_v{version}.png",
    title=f"Rectangular pixelization, {args.instrument.upper()}: log evidence and jax.grad along the Einstein radius",
)

"""
__Summary__

In the JSON's shared names, `log_likelihood` is the log evidence: the figure of merit a search maximizes.
"""
log_likelihood = {"eager": eager_log_evidence, "jit": float(full["result"])}
summary = dict(autolens_version=version, configuration=configuration, log_likelihood=log_likelihood)
summary.update(steps=steps, full_pipeline=full, flat_vector=flat_vector, vmap=vmap, gradient=gradient)
summary.update(einstein_radius_scan=scan, repeats=args.repeats)
stem = f"pixelization_likelihood_summary_{args.instrument}_v{version}"
title = f"Pixelized source (rectangular {mesh_shape[0]}x{mesh_shape[1]}) - {args.instrument.upper()}"
subtitle = f"v{version} | {pixel_scale}\"/px | {configuration['image_pixels_masked']} pixels | 784 source pixels"
util.write_summary(summary, results_path, stem, title, subtitle)
