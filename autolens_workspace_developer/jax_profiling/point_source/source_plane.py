"""
JAX Profiling: Point-Source Source-Plane Likelihood, With Model Instances As Pytrees
===================================================================================

Profiles the JAX likelihood of a quadruply imaged point source (`simulators/point_source.py`: 4 image positions
with 0.005" noise and their fluxes) fitted in the source plane (`FitPositionsSource`): every observed position is
ray-traced to the source plane, and its distance from the model source centre, times the magnification there, is
compared with the position noise. No lens equation is solved, so the likelihood is smooth in every parameter and
cheap. The fluxes are the point source's flux times the magnification at each observed position (`FitFluxes`).
The lens is an `Isothermal` mass with `ExternalShear`; with the point source's centre and flux, 10 free
parameters.

What is measured:

1. The likelihood step by step, each step compiled and timed as the likelihood up to and including it: the
   observed positions ray-traced to the source plane, the magnifications there, the positions' log likelihood,
   the fluxes' log likelihood and the total.
2. The full pipeline compiled as one program, `AnalysisPoint.log_likelihood_function` over the instance, asserted
   equal to the eager NumPy likelihood (`use_jax=False`; rtol 1e-8).
3. A `jax.vmap` batch of different instances stacked leaf by leaf, each lane asserted equal to its single call and
   to the eager likelihood.
4. `jax.jit(jax.grad(...))` over the instance, read by parameter name, asserted equal to fourth-order central
   differences of the compiled likelihood with steps 1e-4, 1e-5 and 1e-6 (rtol 1e-4) in every parameter, and its
   time against one likelihood call.
5. A scan over the one leaf named `einstein_radius` (a `jax.vmap` of the likelihood and its gradient).

Every compiled function here takes the model instance itself: a pytree whose leaves are the free parameters, named
by key paths such as `.galaxies.lens.mass.einstein_radius`. Every JAX timing waits for its result.

__Usage__

    python source_plane.py --repeats 20 --batch-size 3 --scan-points 41

Results go to `results/source_plane_likelihood_summary_v<version>.json` with a bar chart beside it, and the
Einstein radius scan with its gradient to `results/source_plane_einstein_radius_gradient_v<version>.png`.
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

import numpy as np

import autolens as al

import point_source_util as pu
import fit_profile as fp  # fit_profile and profiling_util: put on the path by point_source_util
import profiling_util as util

"""
__Command Line__
"""
parser = util.OneLineArgumentParser(description=__doc__.split("\n")[1])
parser.add_argument("--repeats", type=int, default=20, help="steady-state calls timed per program (default 20)")
parser.add_argument("--batch-size", type=int, default=3, help="instances in the vmap batch (default 3)")
parser.add_argument("--scan-points", type=int, default=41, help="Einstein radii in the scan (default 41)")
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

The instance sits a small fixed distance from the simulated values (`point_source_util.reference_vector`), where
the model has the 4 images; its leaves are the 10 free parameters.
"""
print("\n--- Dataset ---")
dataset = pu.load_dataset()
configuration = pu.configuration_of(dataset)
for key, value in configuration.items():
    print(f"  {key}: {value}")

print("\n--- Model ---")
model = pu.point_model()
vector = pu.reference_vector(model)
instance = model.instance_from_vector(vector=list(vector))
util.require_pytree(instance)
leaf_names, same_structure = util.one_structure_per_model(model, instance, vector)
instance_jax = util.on_device(instance)

"""
__Eager Reference__

The same analysis in NumPy, with a NumPy solver: the reference every compiled value must equal.
"""
print("\n--- Eager likelihood (NumPy reference) ---")
analysis, likelihood, eager = pu.analyses(dataset, al.FitPositionsSource)
start = time.perf_counter()
eager_log_likelihood = float(eager.log_likelihood_function(instance))
print(f"  log likelihood = {eager_log_likelihood}  ({time.perf_counter() - start:.3f} s)")

"""
__Per-Step JIT Profiling__

Each step is a quantity of the `FitPointDataset` that `analysis.fit_from(instance)` builds inside the trace.
"""
steps = fp.profile_fit_steps(
    analysis,
    instance_jax,
    {
        "Data ray-traced to the source plane": lambda fit: fit.positions.model_data,
        "Magnifications at the data": lambda fit: fit.positions.magnifications_at_positions,
        "Positions log likelihood": lambda fit: fit.positions.log_likelihood,
        "Fluxes log likelihood": lambda fit: fit.flux.log_likelihood,
        "Log likelihood": lambda fit: fit.log_likelihood,
    },
    repeats,
)
fp.check(float(steps["Log likelihood"]["result"]), eager_log_likelihood, 1e-8, "the last step equals the eager fit")

"""
__Full Pipeline, vmap Batch__
"""
full = fp.full_pipeline(likelihood, instance_jax, eager_log_likelihood, "the eager (NumPy) likelihood", repeats)
vmapped = fp.vmap_batch(
    likelihood, model, vector, args.batch_size, full, repeats, eager_likelihood=eager.log_likelihood_function
)

"""
__Gradient By Name__

Nothing is solved for: the likelihood is a smooth function of the parameters, and central differences of it agree
with `jax.grad` down to steps of 1e-6.
"""
gradient = (
    fp.gradient_check(likelihood, model, vector, pu.FINITE_DIFFERENCE_STEPS, pu.RTOL, repeats) if args.gradient else None
)

"""
__Einstein Radius Scan__
"""
version = al.__version__
einstein_radius = float(instance.galaxies.lens.mass.einstein_radius)
scan = fp.einstein_radius_scan(
    likelihood,
    instance_jax,
    np.linspace(0.97 * einstein_radius, 1.03 * einstein_radius, args.scan_points),
    truth=float(pu.simulator.true_tracer().galaxies[0].mass.einstein_radius),
    plot_path=pu.RESULTS_DIR / f"source_plane_einstein_radius_gradient_v{version}.png",
    title="Point source, source plane: log likelihood and jax.grad along einstein_radius",
)

"""
__Summary__
"""
summary = {
    "autolens_version": version,
    "fit_positions_cls": "FitPositionsSource",
    "configuration": configuration,
    **fp.steps_summary(steps),
    "full_pipeline": util.timings_only(full),
    "log_likelihood": {"eager_numpy": eager_log_likelihood, "full_pipeline_pytree": float(full["result"])},
    "vmap": vmapped,
    "gradient": gradient,
    "einstein_radius_scan": scan,
    "pytree": util.pytree_summary(leaf_names, model, same_structure),
    "repeats": repeats,
}
fp.write_summary(
    summary,
    pu.RESULTS_DIR,
    f"source_plane_likelihood_summary_v{version}",
    title="Point-source source-plane likelihood (fluxes), pytree inputs",
    subtitle=(
        f"autolens v{version} | {configuration['images']} images | {model.total_free_parameters} free parameters"
    ),
)
