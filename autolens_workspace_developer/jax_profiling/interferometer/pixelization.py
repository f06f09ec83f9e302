"""
JAX Profiling: Pixelized-Source Interferometer Likelihood (Rectangular Mesh), With Model Instances As Pytrees
============================================================================================================

Profiles the JAX likelihood of the interferometer dataset of `mge.py` (1,056 visibilities of a 1,941-pixel
real-space mask) whose source is reconstructed on a 20 x 20 `RectangularUniform` mesh with `Constant`
regularization, behind a lens with a `Sersic` bulge, an `Isothermal` mass and `ExternalShear`: 14 free
parameters. The figure of merit is the Bayesian log evidence of the source reconstruction. Every source pixel's
image reaches the visibilities through the direct Fourier transform (`al.TransformerDFT`): 400 columns.

What is measured, as in `mge.py`:

1. The likelihood step by step, each step compiled and timed as the likelihood up to and including it:
   ray-tracing, the lens light's visibilities, the mapping matrix, its DFT, the data vector D, the curvature
   matrix F, the regularization matrix H, the reconstruction, the model visibilities and the log evidence.
2. The full pipeline as one program, asserted equal to the eager `FitInterferometer` (rtol 1e-8).
3. A `jax.vmap` batch of different instances, each lane asserted equal to its single call.
4. `jax.jit(jax.grad(...))` by parameter name against central differences, and its time against the likelihood.
5. A scan over the leaf named `einstein_radius`, with the gradient along it.

The source's `Pixelization` is a fixed object of the model: its mesh shape and coefficient are static parts of
the pytree, so the leaves are the 14 lens parameters and one compile serves every instance.

__Usage__

    python pixelization.py --repeats 3 --batch-size 3 --scan-points 11

Results go to `results/pixelization_likelihood_summary_interferometer_v<version>.json` with a bar chart beside
it, and the scan to `results/pixelization_einstein_radius_gradient_interferometer_v<version>.png`.
"""

"""
__64-bit JAX__

Before any other import, for the reason given in `mge.py`.
"""
import os

os.environ["JAX_ENABLE_X64"] = "True"

import jax

jax.config.update("jax_enable_x64", True)

import argparse
import time

import jax.numpy as jnp
import numpy as np

import autolens as al

import interferometer_util as iu
import fit_profile as fp  # fit_profile and profiling_util: put on the path by interferometer_util
import profiling_util as util

"""
__Command Line__

One likelihood call costs a few tenths of a second on a 2-core CPU, so the defaults are small.
"""
parser = util.OneLineArgumentParser(description=__doc__.split("\n")[1])
parser.add_argument("--repeats", type=int, default=3, help="steady-state calls timed per program (default 3)")
parser.add_argument("--batch-size", type=int, default=3, help="instances in the vmap batch (default 3)")
parser.add_argument("--scan-points", type=int, default=11, help="Einstein radii in the scan (default 11)")
parser.add_argument(
    "--gradient",
    action=argparse.BooleanOptionalAction,
    default=True,
    help="time jax.grad of the likelihood and check it against central differences (default: yes)",
)
args = parser.parse_args()
repeats = args.repeats

"""
__Dataset, Model And Instance__

The instance sits at the prior medians with the lens light, mass and shear at the simulated values: at the
medians the lens light alone would swamp the source.
"""
print("\n--- Dataset ---")
dataset = iu.load_dataset()
configuration = iu.configuration_of(dataset)
configuration["mesh_shape"] = list(iu.RECTANGULAR_MESH_SHAPE)
configuration["source_pixels"] = iu.RECTANGULAR_MESH_SHAPE[0] * iu.RECTANGULAR_MESH_SHAPE[1]
for key, value in configuration.items():
    print(f"  {key}: {value}")

print("\n--- Model ---")
model = iu.rectangular_model()
vector = iu.reference_vector(model)
instance = model.instance_from_vector(vector=list(vector))
util.require_pytree(instance)
leaf_names, same_structure = util.one_structure_per_model(model, instance, vector)
instance_jax = util.on_device(instance)

"""
__Eager Reference__

`FitInterferometer` in NumPy with the analysis's settings; with an inversion its `figure_of_merit` is the log
evidence.
"""
print("\n--- Eager FitInterferometer (reference) ---")
analysis, likelihood = iu.likelihood_function(dataset)
start = time.perf_counter()
figure_of_merit = iu.eager_figure_of_merit(analysis, instance)
print(f"  figure_of_merit (log evidence) = {figure_of_merit}  ({time.perf_counter() - start:.2f} s)")

"""
__Per-Step JIT Profiling__

Each step is a quantity of the `FitInterferometer` built inside the trace. The lens light is a standard light
profile: its image is Fourier transformed and subtracted from the data before the source is reconstructed.
"""
steps = fp.profile_fit_steps(
    analysis,
    instance_jax,
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
    repeats,
)
fp.check(float(steps["Log evidence"]["result"]), figure_of_merit, 1e-8, "the last step equals the eager fit")

"""
__Full Pipeline, vmap Batch__
"""
full = fp.full_pipeline(likelihood, instance_jax, figure_of_merit, "the eager FitInterferometer", repeats)
vmapped = fp.vmap_batch(likelihood, model, vector, args.batch_size, full, repeats)

"""
__Gradient By Name__

The rectangular mesh interpolates bilinearly between source pixels and its extent follows the traced grid's, so
the log evidence has kinks in the mass parameters wherever a traced image pixel crosses a source pixel's edge:
`jax.grad` is the derivative on the side the point lies, and central differences agree with it only where no
kink lies within their steps. Here one lies between 2e-6 and 1e-5 from the point in `shear.gamma_2`: steps of
1e-6 (the stencil reaches 2e-6) were off by 2.3e-4 there, while two-point differences with steps of 1e-6 down
to 1e-8 all give 128.5596. Steps of 1e-7 clear it; their rounding error, ~1e-16 |log evidence| / 1e-7 ~ 1e-5
in absolute terms, is what the tolerance of 1e-4 leaves room for (the smallest derivative is ~4).
"""
gradient = None
if args.gradient:
    gradient_vector = util.jittered_vectors(vector, 2, scale=0.01, seed=1)[1]  # a little off the reference point
    gradient = fp.gradient_check(likelihood, model, gradient_vector, steps=(1e-7,), rtol=1e-4, repeats=repeats)

"""
__Einstein Radius Scan__
"""
version = al.__version__
einstein_radius = float(instance.galaxies.lens.mass.einstein_radius)
scan = fp.einstein_radius_scan(
    likelihood,
    instance_jax,
    np.linspace(0.9 * einstein_radius, 1.1 * einstein_radius, args.scan_points),
    truth=float(iu.simulator.true_tracer().galaxies[0].mass.einstein_radius),
    plot_path=iu.RESULTS_DIR / f"pixelization_einstein_radius_gradient_interferometer_v{version}.png",
    title="Pixelized source, interferometer: log evidence and jax.grad along galaxies.lens.mass.einstein_radius",
)

"""
__Summary__
"""
summary = {
    "autolens_version": version,
    "configuration": configuration,
    **fp.steps_summary(steps),
    "full_pipeline": util.timings_only(full),
    "log_evidence": {"fit_interferometer": figure_of_merit, "full_pipeline_pytree": float(full["result"])},
    "vmap": vmapped,
    "gradient": gradient,
    "einstein_radius_scan": scan,
    "pytree": util.pytree_summary(leaf_names, model, same_structure),
    "repeats": repeats,
}
fp.write_summary(
    summary,
    iu.RESULTS_DIR,
    f"pixelization_likelihood_summary_interferometer_v{version}",
    title="Pixelized-source interferometer likelihood (DFT, 20 x 20 rectangular mesh), pytree inputs",
    subtitle=(
        f"autolens v{version} | {configuration['visibilities']} visibilities | "
        f"{configuration['real_space_pixels']} real-space pixels | {configuration['source_pixels']} source pixels | "
        f"{model.total_free_parameters} free parameters"
    ),
)
