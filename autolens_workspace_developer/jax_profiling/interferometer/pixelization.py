"""
JAX Profiling: Pixelized-Source Interferometer Likelihood
=========================================================

This script profiles the JAX likelihood of the interferometer dataset of `mge.py` (1,056 visibilities, a
1,941-pixel real-space mask) with the source reconstructed on a pixel grid: a 20 x 20 `RectangularUniform` mesh
with `Constant` regularization, behind a lens with a `Sersic` bulge, an `Isothermal` mass and `ExternalShear`
(14 free parameters). The figure of merit is the Bayesian log evidence of the source reconstruction, and every
source pixel's image reaches the visibilities through the direct Fourier transform: 400 columns of it.

What is measured is what `mge.py` measures: the likelihood step by step and as one program (equal to the eager
NumPy one), the flat parameter vector against the instance, a `jax.vmap` batch, `jax.grad` by name against
central differences and the log evidence along the Einstein radius.

__Usage__

    python pixelization.py --repeats 3 --batch-size 3 --scan-points 11

Results go to `results/pixelization_likelihood_summary_interferometer_v<version>.json` with a bar chart beside
it, and the scan to `results/pixelization_einstein_radius_gradient_interferometer_v<version>.png`.
"""

"""
__64-bit JAX__

Before any other import, for the reason `mge.py` gives.
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

"""
__Command Line__

One likelihood call costs a few tenths of a second on a 2-core CPU, so the defaults are small.
"""
args = util.argument_parser(__doc__.split("\n")[1], repeats=3, scan_points=11).parse_args()
version = al.__version__
results_path = Path(__file__).resolve().parent / "results"

"""
__Dataset__

The visibilities of `mge.py`, simulated first if they are not on disk, fitted through the DFT over the same 2.5"
real-space mask of 0.1" pixels.
"""
dataset_path = simulator.ensure()
dataset = al.Interferometer(
    data=al.Visibilities(np.load(dataset_path / "visibilities.npy")),
    noise_map=al.VisibilitiesNoiseMap(np.load(dataset_path / "noise_map.npy")),
    uv_wavelengths=np.load(dataset_path / "uv_wavelengths.npy"),
    real_space_mask=al.Mask2D.circular(shape_native=(51, 51), pixel_scales=0.1, radius=2.5),
    transformer_class=al.TransformerDFT,
)

"""
__Model__

The source is a fixed `Pixelization` object, not a model component: it has no free parameters, so its mesh shape
and regularization coefficient are static parts of the instance's pytree and one compile serves every instance.
The 14 free parameters are the lens's: `Sersic` light (7), `Isothermal` mass (5) and `ExternalShear` (2).
"""
pixelization = al.Pixelization(
    mesh=al.mesh.RectangularUniform(shape=(20, 20)), regularization=al.reg.Constant(coefficient=1.0)
)
lens = af.Model(al.Galaxy, redshift=0.5, bulge=al.lp.Sersic, mass=al.mp.Isothermal, shear=al.mp.ExternalShear)
model = af.Collection(
    galaxies=af.Collection(lens=lens, source=af.Model(al.Galaxy, redshift=1.0, pixelization=pixelization))
)

"""
__Instance__

Every lens parameter at the value the dataset was simulated with, read by name from the true lens: at the prior
medians the lens light alone would swamp the source.
"""
true_lens = simulator.true_tracer().galaxies[0]
simulated = af.values_by_path(lens, true_lens)
instance = model.instance_from_vector(vector=list(simulated.values()))

"""
__Analysis__

With an inversion the figure of merit is the log evidence. The eager analysis (NumPy) is the reference.
"""
analysis = al.AnalysisInterferometer(dataset=dataset, use_jax=True)
log_evidence = analysis.log_likelihood_function
eager_log_evidence = float(al.AnalysisInterferometer(dataset=dataset, use_jax=False).log_likelihood_function(instance))
print(f"\n  eager log evidence {eager_log_evidence}")

"""
__The Likelihood Step By Step__

Each step is a quantity of the `FitInterferometer` built inside the trace, compiled and timed as the log evidence
up to and including it. The lens light is a standard light profile: its image is Fourier transformed and
subtracted from the data before the source is reconstructed.
"""
steps = util.profile_fit_steps(
    analysis,
    instance,
    {
        "Ray-trace grids": lambda fit: jnp.stack(
            [grid.array for grid in fit.tracer.traced_grid_2d_list_from(grid=dataset.grids.pixelization, xp=jnp)]
        ),
        "Lens light visibilities (DFT)": lambda fit: fit.profile_visibilities,
        "Mapping matrix": lambda fit: fit.inversion.linear_obj_list[0].mapping_matrix,
        "Transformed mapping matrix (DFT)": lambda fit: fit.inversion.operated_mapping_matrix,
        "Data vector (D)": lambda fit: fit.inversion.data_vector,
        "Curvature matrix (F)": lambda fit: fit.inversion.curvature_matrix,
        "Regularization matrix (H)": lambda fit: fit.inversion.regularization_matrix,
        "Reconstruction": lambda fit: fit.inversion.reconstruction,
        "Model visibilities": lambda fit: fit.model_data,
        "Log evidence": lambda fit: fit.figure_of_merit,
    },
    args.repeats,
)

"""
__Full Pipeline, Flat Vector And vmap__

The log evidence as one program (equal to the eager one), the same given the flat parameter vector as a search's
`Fitness` gives it (timed in turn with the instance), and a `jax.vmap` batch of nearby instances.
"""
full = util.full_pipeline(log_evidence, instance, eager_log_evidence, "eager", args.repeats)
flat_vector = util.flat_vector_ratio(log_evidence, model, instance, args.repeats)
vmap = util.vmap_batch(log_evidence, model, instance, args.batch_size, full, args.repeats)

"""
__Gradient By Name__

The rectangular mesh interpolates bilinearly between source pixels and its extent follows the traced grid's, so
the log evidence has kinks in the mass parameters wherever a traced image pixel crosses a source pixel's edge:
`jax.grad` is the derivative on the side the point lies, and central differences agree with it only where no kink
lies within their steps. At the point checked here (every parameter moved at random by ~0.01) one lies between
2e-6 and 1e-5 away in `shear.gamma_2`, so the steps are 1e-7. Their rounding error, ~1e-16 |log evidence| / 1e-7
~ 1e-5 in absolute terms, is what the tolerance of 1e-4 leaves room for (the smallest derivative is ~4).
"""
gradient = None
if args.gradient:
    rng = np.random.default_rng(1)
    moved = [value + 0.01 * rng.standard_normal() for value in simulated.values()]
    gradient = util.gradient_check(
        log_evidence, model, model.instance_from_vector(vector=moved), steps=(1e-7,), rtol=1e-4, repeats=args.repeats
    )

"""
__Einstein Radius Scan__

The log evidence and its derivative at Einstein radii within 10% of the simulated one, as one `jax.vmap`. The
kinks above show as small steps in the derivative.
"""
radius = true_lens.mass.einstein_radius
scan = util.einstein_radius_scan(
    log_evidence, model, instance, np.linspace(0.9 * radius, 1.1 * radius, args.scan_points), truth=radius,
    plot_path=results_path / f"pixelization_einstein_radius_gradient_interferometer_v{version}.png",
    title="Pixelized source, interferometer: log evidence and jax.grad along the Einstein radius",
)

"""
__Summary__

Stored under the names of every profiling script; `log_likelihood` holds the log evidence, this model's figure of
merit.
"""
configuration = {"transformer": "TransformerDFT", "visibilities": int(dataset.data.shape[0]), "mesh_shape": [20, 20]}
configuration["real_space_pixels"] = int(dataset.real_space_mask.pixels_in_mask)
util.write_summary(
    dict(
        autolens_version=version, configuration=configuration, repeats=args.repeats, steps=steps, full_pipeline=full,
        flat_vector=flat_vector, vmap=vmap, gradient=gradient, einstein_radius_scan=scan,
        log_likelihood={"eager": eager_log_evidence, "jit": float(full["result"])},
    ),
    results_path,
    f"pixelization_likelihood_summary_interferometer_v{version}",
    title="Pixelized-source interferometer likelihood (DFT, 20 x 20 rectangular mesh)",
    subtitle=f"autolens v{version} | 1,056 visibilities | 1,941 real-space pixels | 400 source pixels | "
    "14 free parameters",
)
