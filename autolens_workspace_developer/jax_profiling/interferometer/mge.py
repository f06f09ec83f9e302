"""
JAX Profiling: MGE Interferometer Likelihood, With Model Instances As Pytrees
=============================================================================

Profiles the JAX likelihood of an interferometer dataset (1,056 visibilities of a 1,941-pixel real-space mask,
`simulators/interferometer.py`) whose lens light and source light are both modelled with a multi-Gaussian
expansion: 20 linear Gaussians per galaxy, whose intensities are solved for by a non-negative linear inversion,
plus an `Isothermal` mass and `ExternalShear`: 15 free parameters. Model images reach the visibilities through
the direct Fourier transform, `al.TransformerDFT`, which JAX traces and differentiates (`al.TransformerNUFFT`
calls PyNUFFT on the host: it runs under `jax.jit` but has no derivative, and says so).

What is measured:

1. The likelihood step by step, each step compiled and timed as the likelihood up to and including it
   (lower, compile, first call, steady state): ray-tracing, the Gaussians' images (mapping matrix), their
   visibilities (the DFT of every column), the data vector D, the curvature matrix F, the non-negative
   reconstruction, the model visibilities and the log likelihood.
2. The full pipeline compiled as one program, `AnalysisInterferometer.log_likelihood_function` over the
   instance, asserted equal to the eager `FitInterferometer` (rtol 1e-8).
3. A `jax.vmap` batch of different instances stacked leaf by leaf, each lane asserted equal to its single call.
4. `jax.jit(jax.grad(...))` over the instance, read by parameter name, asserted equal to fourth-order central
   differences of the likelihood in every parameter, and its time against one likelihood call.
5. A scan over the one leaf named `einstein_radius` (a `jax.vmap` of the likelihood and its gradient).

Every compiled function here takes the model instance itself (an `af.ModelInstance` of `Galaxy` objects): a
pytree whose leaves are the free parameters, named by key paths such as `.galaxies.lens.mass.einstein_radius`.
Every JAX timing waits for its result with `block_until_ready()`.

__Usage__

    python mge.py --repeats 10 --batch-size 3 --scan-points 21

Results go to `results/mge_likelihood_summary_interferometer_v<version>.json` with a bar chart beside it, and the
Einstein radius scan with its gradient to `results/mge_einstein_radius_gradient_interferometer_v<version>.png`.
"""

"""
__64-bit JAX__

This comes before every other import: PyAuto switches JAX to 64-bit only if JAX has not been imported yet.
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
"""
parser = util.OneLineArgumentParser(description=__doc__.split("\n")[1])
parser.add_argument("--repeats", type=int, default=10, help="steady-state calls timed per program (default 10)")
parser.add_argument("--batch-size", type=int, default=3, help="instances in the vmap batch (default 3)")
parser.add_argument("--scan-points", type=int, default=21, help="Einstein radii in the scan (default 21)")
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

The instance sits at the prior medians with the lens mass and shear at the simulated values
(`interferometer_util.reference_vector`); its leaves are the 15 free parameters, one per prior, and a second
instance of the model has the same tree structure (one compile serves every instance).
"""
print("\n--- Dataset ---")
dataset = iu.load_dataset()
configuration = iu.configuration_of(dataset)
for key, value in configuration.items():
    print(f"  {key}: {value}")

print("\n--- Model ---")
model = iu.mge_model()
vector = iu.reference_vector(model)
instance = model.instance_from_vector(vector=list(vector))
util.require_pytree(instance)
leaf_names, same_structure = util.one_structure_per_model(model, instance, vector)
instance_jax = util.on_device(instance)

"""
__Eager Reference__

`FitInterferometer` in NumPy: for a model without regularization its `figure_of_merit` is the log likelihood.
"""
print("\n--- Eager FitInterferometer (reference) ---")
analysis, likelihood = iu.likelihood_function(dataset)
start = time.perf_counter()
figure_of_merit = iu.eager_figure_of_merit(analysis, instance)
print(f"  figure_of_merit = {figure_of_merit}  ({time.perf_counter() - start:.2f} s)")

"""
__Per-Step JIT Profiling__

Each step is a quantity of the `FitInterferometer` that `analysis.fit_from(instance)` builds inside the trace.
The inversion holds one linear object per Gaussian basis; the mapping matrix is their images side by side.
"""
steps = fp.profile_fit_steps(
    analysis,
    instance_jax,
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
    repeats,
)
fp.check(float(steps["Log likelihood"]["result"]), figure_of_merit, 1e-8, "the last step equals the eager fit")

"""
__Full Pipeline, vmap Batch__

The likelihood a search calls, as one program; then a batch of instances stacked leaf by leaf
(`profiling_util.stack_instances`), which works because instances of one model share a tree structure.
"""
full = fp.full_pipeline(likelihood, instance_jax, figure_of_merit, "the eager FitInterferometer", repeats)
vmapped = fp.vmap_batch(likelihood, model, vector, args.batch_size, full, repeats)

"""
__Gradient By Name__

Fourth-order central differences with steps of 2e-5: the MGE likelihood is smooth where the non-negative solve
keeps its active set (the Gaussians clamped at zero stay clamped) over the steps, as it does here.
"""
gradient = None
if args.gradient:
    gradient_vector = util.jittered_vectors(vector, 2, scale=0.01, seed=1)[1]  # a little off the reference point
    gradient = fp.gradient_check(likelihood, model, gradient_vector, steps=(2e-5,), rtol=1e-6, repeats=repeats)

"""
__Einstein Radius Scan__

Found by name, not by its place in the vector: the one leaf whose name ends in `einstein_radius` is mapped
over, every other leaf broadcast.
"""
version = al.__version__
einstein_radius = float(instance.galaxies.lens.mass.einstein_radius)
scan = fp.einstein_radius_scan(
    likelihood,
    instance_jax,
    np.linspace(0.9 * einstein_radius, 1.1 * einstein_radius, args.scan_points),
    truth=float(iu.simulator.true_tracer().galaxies[0].mass.einstein_radius),
    plot_path=iu.RESULTS_DIR / f"mge_einstein_radius_gradient_interferometer_v{version}.png",
    title="MGE interferometer: log likelihood and jax.grad along galaxies.lens.mass.einstein_radius",
)

"""
__Summary__
"""
summary = {
    "autolens_version": version,
    "configuration": configuration,
    **fp.steps_summary(steps),
    "full_pipeline": util.timings_only(full),
    "log_likelihood": {"fit_interferometer": figure_of_merit, "full_pipeline_pytree": float(full["result"])},
    "vmap": vmapped,
    "gradient": gradient,
    "einstein_radius_scan": scan,
    "pytree": util.pytree_summary(leaf_names, model, same_structure),
    "repeats": repeats,
}
fp.write_summary(
    summary,
    iu.RESULTS_DIR,
    f"mge_likelihood_summary_interferometer_v{version}",
    title="MGE interferometer likelihood (DFT), pytree inputs",
    subtitle=(
        f"autolens v{version} | {configuration['visibilities']} visibilities | "
        f"{configuration['real_space_pixels']} real-space pixels | "
        f"{2 * iu.GAUSSIANS_PER_GALAXY} Gaussians | {model.total_free_parameters} free parameters"
    ),
)
