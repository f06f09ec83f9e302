"""
JAX Profiling: Point-Source Image-Plane Likelihood
==================================================

This script profiles the JAX likelihood of a quadruply imaged point source (a lensed quasar) fitted in the
image plane. The dataset is 4 observed image positions, with 0.005" noise, and their fluxes
(`simulators/point_source.py`). For every model the `PointSolver` finds where the source's images are (triangles
refined from 0.1" to 0.001", then Newton steps on the lens equation to machine precision), and each observed
position is compared with the mixture of all model images (`FitPositionsImagePairAll`). The fluxes are the point
source's flux times the magnification at each observed position (`FitFluxes`).

The model positions are exact solutions of the lens equation, differentiated at the solution by the implicit
function rule, never through the triangle search: between the parameters where an image appears or disappears
the likelihood is smooth, and `jax.grad` is its exact derivative.

What is measured, each number asserted where it can be:

1. The likelihood step by step, from the triangle solve to the total.
2. The full likelihood compiled as one program, equal to the eager NumPy likelihood.
3. The same likelihood taking the flat parameter vector a search's `Fitness` passes, against the instance.
4. A `jax.vmap` batch of instances, every lane equal to its single call and to the eager likelihood.
5. `jax.grad` by parameter name, equal to central differences, and its cost against one likelihood call.
6. The likelihood and its gradient along the Einstein radius.

__Usage__

    python image_plane.py --repeats 20 --batch-size 3 --scan-points 41

Results go to `results/image_plane_likelihood_summary_v<version>.json` with a bar chart beside it, and the
Einstein radius scan to `results/image_plane_einstein_radius_gradient_v<version>.png`.
"""

"""
__64-bit JAX__

PyAuto switches JAX to 64-bit only if JAX has not been imported yet, so this comes before every other import.
"""
import os

os.environ["JAX_ENABLE_X64"] = "True"

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import profiling_util as util

import autofit as af
import autolens as al

from simulators import point_source as simulator

results_path = Path(__file__).resolve().parent / "results"
args = util.argument_parser(__doc__.split("\n")[1], repeats=20, scan_points=41).parse_args()

"""
__Dataset__

The simulated quad is loaded from `dataset/point_source`, and simulated first if it is not there yet. The
`PointDataset` named `point_0` pairs with the model's point source of that name.
"""
dataset_path = simulator.ensure()
dataset = al.from_json(file_path=dataset_path / "point_dataset.json")
print(f"\n  {len(dataset.positions)} image positions: {np.round(np.asarray(dataset.positions), 3).tolist()}")

"""
__Point Solver__

The solver's image plane is a 4.4" square of 0.1" triangles. Those that contain a solution of the lens equation
are refined until they are 0.001" across, and their centres polished by Newton steps. Its size and precision
set most of the likelihood's cost.
"""
grid = al.Grid2D.uniform(shape_native=(44, 44), pixel_scales=0.1)
solver = al.PointSolver.for_grid(grid=grid, pixel_scale_precision=0.001, magnification_threshold=0.1)

"""
__Model__

An `Isothermal` mass with `ExternalShear`, and the point source's centre and flux: 10 free parameters.
"""
lens = af.Model(al.Galaxy, redshift=0.5, mass=al.mp.Isothermal, shear=al.mp.ExternalShear)
source = af.Model(al.Galaxy, redshift=1.0, point_0=al.ps.PointFlux)
model = af.Collection(galaxies=af.Collection(lens=lens, source=source))

"""
__Instance__

Every program here is compiled for a model instance: a JAX pytree whose leaves are the 10 free parameters, which
`af.values_by_path` names by their paths in the model. The profile is taken near the best fit but not on it,
where the gradient is not zero and the model still has 4 images: every simulated value moved by 0.002.
"""
lens_truth, source_truth = simulator.true_tracer().galaxies
simulated = {**af.values_by_path(lens, lens_truth), **af.values_by_path(source, source_truth)}
instance = model.instance_from_vector(vector=[value + 0.002 for value in simulated.values()])
for name, value in af.values_by_path(model, instance).items():
    print(f"  {name} = {value:.4f}")

"""
__Analysis__

The JAX analysis gives the likelihood a search calls, `analysis.log_likelihood_function(instance)`. The same
analysis without JAX computes it eagerly in NumPy: every compiled value is checked against that.
"""
analysis = al.AnalysisPoint(dataset=dataset, solver=solver, fit_positions_cls=al.FitPositionsImagePairAll, use_jax=True)
eager = al.AnalysisPoint(dataset=dataset, solver=solver, fit_positions_cls=al.FitPositionsImagePairAll, use_jax=False)
likelihood = analysis.log_likelihood_function

start = time.perf_counter()
eager_log_likelihood = float(eager.log_likelihood_function(instance))
print(f"\n  eager log likelihood {eager_log_likelihood} ({time.perf_counter() - start:.3f} s)")

"""
__The Likelihood Step By Step__

Each step is a quantity of the `FitPointDataset` that `analysis.fit_from(instance)` builds, compiled and timed as
the likelihood up to and including it. The triangle solve alone (`polish=False`) is good to the solver's
precision; the model positions add the Newton steps.
"""
steps = util.profile_fit_steps(
    analysis,
    instance,
    {
        "Triangle solve (to 0.001\")": lambda fit: fit.positions.solver.solve(
            tracer=fit.tracer,
            source_plane_coordinate=fit.positions.source_plane_coordinate,
            remove_infinities=False,
            polish=False,
        ),
        "Model positions (+ Newton steps)": lambda fit: fit.positions.model_positions,
        "Positions log likelihood": lambda fit: fit.positions.log_likelihood,
        "Magnifications at the data": lambda fit: fit.flux.magnifications_at_positions,
        "Fluxes log likelihood": lambda fit: fit.flux.log_likelihood,
        "Log likelihood": lambda fit: fit.log_likelihood,
    },
    args.repeats,
)

"""
__Full Pipeline__

The likelihood as one program, which is what a search compiles. XLA fuses across the steps, so it may cost less
than the last step above.
"""
full = util.full_pipeline(likelihood, instance, eager_log_likelihood, "the eager likelihood", args.repeats)

"""
__Pytree Versus Flat Vector__

A search's `Fitness` hands the compiled likelihood a flat vector and builds the instance from it inside the
trace. Given the instance itself, JAX flattens it to the same leaves on the way in, and the compiled programs are
the same computation; but the flattening is autofit's Python, run on every call, a fixed ~0.1 ms that this
likelihood's ~10 ms hides (`source_plane.py` shows where it does not).
"""
flat_vector = util.flat_vector_ratio(likelihood, model, instance, args.repeats)

"""
__vmap__

Instances of one model share one tree structure, so a batch of them stacks leaf by leaf and one `jax.vmap`
evaluates it. The solver's refinement loop runs until its slowest lane is done.
"""
vmap = util.vmap_batch(
    likelihood, model, instance, args.batch_size, full, args.repeats, eager_likelihood=eager.log_likelihood_function
)

"""
__Gradient By Name__

The gradient of the likelihood, read by parameter name. The model positions carry the implicit-function
derivative of the exact solutions, so central differences of the likelihood, which see no staircase from the
triangle precision, agree with `jax.grad` down to steps of 1e-6.
"""
gradient = None
if args.gradient:
    gradient = util.gradient_check(likelihood, model, instance, (1e-4, 1e-5, 1e-6), rtol=1e-4, repeats=args.repeats)

"""
__Einstein Radius Scan__

The likelihood and its derivative at 41 Einstein radii within 3% of the instance's, every other parameter held,
as one `jax.vmap` of `jax.value_and_grad`. The derivative crosses zero at the peak.
"""
version = al.__version__
radius = instance.galaxies.lens.mass.einstein_radius
radii = np.linspace(0.97 * radius, 1.03 * radius, args.scan_points)
plot_path = results_path / f"image_plane_einstein_radius_gradient_v{version}.png"
title = "Point source, image plane: log likelihood and jax.grad along the Einstein radius"
scan = util.einstein_radius_scan(likelihood, model, instance, radii, lens_truth.mass.einstein_radius, plot_path, title)

"""
__Summary__
"""
configuration = dict(fit_positions_cls="FitPositionsImagePairAll", images=len(dataset.positions), solver_shape=[44, 44])
configuration.update(solver_pixel_scale_arcsec=0.1, solver_precision_arcsec=0.001, solver_steps=solver.n_steps)
summary = {"autolens_version": version, "configuration": configuration, "repeats": args.repeats}
summary.update(steps=steps, full_pipeline=full, flat_vector=flat_vector, vmap=vmap, gradient=gradient)
summary.update(einstein_radius_scan=scan, log_likelihood={"eager": eager_log_likelihood, "jit": float(full["result"])})
util.write_summary(
    summary,
    results_path,
    f"image_plane_likelihood_summary_v{version}",
    title="Point-source image-plane likelihood (all pairs, fluxes)",
    subtitle=f"autolens v{version} | 4 images | solver 44^2 x 0.1\" to 0.001\" | 10 free parameters",
)
