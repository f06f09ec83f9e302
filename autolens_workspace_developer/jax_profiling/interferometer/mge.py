"""
JAX Profiling: MGE Interferometer Likelihood
============================================

This script profiles the JAX likelihood of an interferometer dataset, 1,056 visibilities of a lens seen through a
1,941-pixel real-space mask (`simulators/interferometer.py`), whose lens light and source light are each a
multi-Gaussian expansion (MGE): 20 Gaussians per galaxy whose intensities are solved for by a non-negative linear
inversion. With an `Isothermal` mass and `ExternalShear` the model has 15 free parameters.

Every model image reaches the visibilities through the direct Fourier transform, `al.TransformerDFT`, which costs
(image pixels) x (visibilities) per image and which JAX traces and differentiates. (`al.TransformerNUFFT` calls
PyNUFFT on the host: it runs under `jax.jit` but has no derivative.)

The script first times the likelihood one step at a time (ray-tracing, the Gaussians' images and their
visibilities, the linear algebra of the inversion, the log likelihood), then as the single program a search
compiles, asserted equal to the eager NumPy likelihood. It compares that program with one taking the flat
parameter vector a search's `Fitness` passes, evaluates a `jax.vmap` batch of instances, checks `jax.grad` by
parameter name against central differences and scans the likelihood and its gradient along the Einstein radius.

__Usage__

    python mge.py --repeats 10 --batch-size 3 --scan-points 21

Results go to `results/mge_likelihood_summary_interferometer_v<version>.json` with a bar chart beside it, and the
Einstein radius scan to `results/mge_einstein_radius_gradient_interferometer_v<version>.png`.
"""

"""
__64-bit JAX__

The inversion needs 64-bit floats, and PyAuto turns them on only when it imports JAX itself: this comes first.
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

from simulators import interferometer as simulator

results_path = Path(__file__).resolve().parent / "results"
args = util.argument_parser(__doc__.split("\n")[1]).parse_args()

"""
__Dataset__

The visibilities, their noise and the (u, v) points they were observed at, simulated first if they are not on
disk. The real-space mask is a 2.5" circle of 0.1" pixels: model images are evaluated at its 1,941 pixels and
Fourier transformed to the 1,056 (u, v) points.
"""
dataset_path = simulator.ensure()
real_space_mask = al.Mask2D.circular(shape_native=(51, 51), pixel_scales=0.1, radius=2.5)
dataset = al.Interferometer(
    data=al.Visibilities(np.load(dataset_path / "visibilities.npy")),
    noise_map=al.VisibilitiesNoiseMap(np.load(dataset_path / "noise_map.npy")),
    uv_wavelengths=np.load(dataset_path / "uv_wavelengths.npy"),
    real_space_mask=real_space_mask,
    transformer_class=al.TransformerDFT,
)
configuration = {
    "transformer": "TransformerDFT",
    "real_space_pixels": int(real_space_mask.pixels_in_mask),
    "visibilities": int(dataset.data.shape[0]),
}
print(f"\n  {configuration}")

"""
__Model__

The MGE model of `imaging/mge.py`. Each galaxy's light is 20 linear Gaussians of fixed widths that share one
centre and one ellipticity; only those are free, so each MGE adds 4 free parameters however many Gaussians it has.

- lens: the MGE light (4), an `Isothermal` mass (5) and `ExternalShear` (2),
- source: the MGE light (4).
"""
lens = af.Model(
    al.Galaxy,
    redshift=0.5,
    bulge=al.model_util.mge_model_from(mask_radius=2.5, total_gaussians=20, centre_prior_is_uniform=True),
    mass=al.mp.Isothermal,
    shear=al.mp.ExternalShear,
)
source = af.Model(
    al.Galaxy,
    redshift=1.0,
    bulge=al.model_util.mge_model_from(mask_radius=2.5, total_gaussians=20, centre_prior_is_uniform=False),
)
model = af.Collection(galaxies=af.Collection(lens=lens, source=source))

"""
__Instance__

The point the likelihood is profiled at: the prior medians, with the lens mass and shear at the values the
dataset was simulated with (read by name from the true lens with `af.values_by_path`), so the Einstein radius scan
peaks near the truth. The instance is a JAX pytree whose 15 leaves are the free parameters.
"""
true_lens = simulator.true_tracer().galaxies[0]
start = af.values_by_path(model, model.instance_from_prior_medians())
for component in ("mass", "shear"):
    for name, value in af.values_by_path(getattr(lens, component), getattr(true_lens, component)).items():
        start[f"galaxies.lens.{component}.{name}"] = value
instance = model.instance_from_vector(vector=list(start.values()))

"""
__Analysis__

The JAX analysis gives the likelihood a search calls; the same analysis without JAX computes it eagerly in NumPy,
the reference every compiled value must equal.
"""
analysis = al.AnalysisInterferometer(dataset=dataset, use_jax=True)
eager = al.AnalysisInterferometer(dataset=dataset, use_jax=False)
eager_log_likelihood = float(eager.log_likelihood_function(instance))
print(f"  eager log likelihood {eager_log_likelihood}")

"""
__The Likelihood Step By Step__

Each step is a quantity of the `FitInterferometer` that `analysis.fit_from(instance)` builds, compiled and timed
as the likelihood up to and including it. The inversion holds one linear object per MGE; the mapping matrix is
the images of all 40 Gaussians side by side, and its DFT is their visibilities.
"""
steps = util.profile_fit_steps(
    analysis,
    instance,
    {
        "Ray-trace grids": lambda fit: jnp.stack(
            [grid.array for grid in fit.tracer.traced_grid_2d_list_from(grid=dataset.grids.lp, xp=jnp)]
        ),
        "Mapping matrix": lambda fit: jnp.hstack([obj.mapping_matrix for obj in fit.inversion.linear_obj_list]),
        "Transformed mapping matrix (DFT)": lambda fit: fit.inversion.operated_mapping_matrix,
        "Data vector (D)": lambda fit: fit.inversion.data_vector,
        "Curvature matrix (F)": lambda fit: fit.inversion.curvature_matrix,
        "Reconstruction (NNLS)": lambda fit: fit.inversion.reconstruction,
        "Model visibilities": lambda fit: fit.model_data,
        "Log likelihood": lambda fit: fit.figure_of_merit,
    },
    args.repeats,
)

"""
__Full Pipeline__

The likelihood as the one program a search compiles, equal to the eager NumPy likelihood.
"""
full = util.full_pipeline(analysis.log_likelihood_function, instance, eager_log_likelihood, "eager", args.repeats)

"""
__Pytree Versus Flat Vector__

A search's `Fitness` hands the compiled likelihood a flat vector and builds the instance from it inside the trace;
here the instance itself is the input, and JAX flattens it to the same 15 numbers. The two programs are asserted
equal and timed in turn.
"""
flat_vector = util.flat_vector_ratio(analysis.log_likelihood_function, model, instance, args.repeats)

"""
__vmap__

A batch of nearby instances stacked leaf by leaf (instances of one model share one tree structure), evaluated by
one `jax.vmap`; every lane equals its single call.
"""
vmap = util.vmap_batch(analysis.log_likelihood_function, model, instance, args.batch_size, full, args.repeats)

"""
__Gradient By Name__

The gradient is checked a little off the simulated values, every parameter moved at random by ~0.01, where no
derivative is near zero. The MGE likelihood is smooth wherever the non-negative solve keeps its active set (the
Gaussians clamped at zero stay clamped) over the central differences' steps of 2e-5, as it does here.
"""
gradient = None
if args.gradient:
    rng = np.random.default_rng(1)
    moved = model.instance_from_vector(vector=[value + 0.01 * rng.standard_normal() for value in start.values()])
    gradient = util.gradient_check(
        analysis.log_likelihood_function, model, moved, steps=(2e-5,), rtol=1e-6, repeats=args.repeats
    )

"""
__Einstein Radius Scan__

The likelihood and its derivative at Einstein radii within 10% of the simulated one, every other parameter held,
as one `jax.vmap` of `jax.value_and_grad`.
"""
version = al.__version__
einstein_radius = true_lens.mass.einstein_radius
scan = util.einstein_radius_scan(
    analysis.log_likelihood_function,
    model,
    instance,
    np.linspace(0.9 * einstein_radius, 1.1 * einstein_radius, args.scan_points),
    truth=einstein_radius,
    plot_path=results_path / f"mge_einstein_radius_gradient_interferometer_v{version}.png",
    title="MGE interferometer: log likelihood and jax.grad along the Einstein radius",
)

"""
__Summary__

The measurements under the names every profiling script uses, and a bar chart of the steps.
"""
summary = dict(autolens_version=version, configuration=configuration, steps=steps, full_pipeline=full)
summary.update(flat_vector=flat_vector, vmap=vmap, gradient=gradient, einstein_radius_scan=scan, repeats=args.repeats)
summary["log_likelihood"] = {"eager": eager_log_likelihood, "jit": float(full["result"])}
util.write_summary(
    summary,
    results_path,
    f"mge_likelihood_summary_interferometer_v{version}",
    title="MGE interferometer likelihood (DFT)",
    subtitle=f"autolens v{version} | {configuration['visibilities']} visibilities | "
    f"{configuration['real_space_pixels']} real-space pixels | 40 Gaussians | 15 free parameters",
)
