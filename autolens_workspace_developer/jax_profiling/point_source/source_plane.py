"""
JAX Profiling: Point-Source Source-Plane Likelihood
===================================================

This script profiles the JAX likelihood of the quad of `image_plane.py` (4 image positions with 0.005" noise and
their fluxes, `simulators/point_source.py`) fitted in the source plane (`FitPositionsSource`). Every observed
position is ray-traced to the source plane, and its distance from the model source centre, scaled by the
magnification there, is compared with the position noise. No lens equation is solved, so the likelihood is
cheap and smooth in every parameter: it is the fast, approximate fit a lens modeller runs before the image-plane
one. The fluxes are fitted as in `image_plane.py`: the source's flux times the magnification at each position.

What is measured, as in `image_plane.py`: the likelihood step by step and as one program (equal to the eager
NumPy likelihood), the flat parameter vector against the instance, a `jax.vmap` batch, `jax.grad` by name
against central differences and the likelihood along the Einstein radius.

__Usage__

    python source_plane.py --repeats 20 --batch-size 3 --scan-points 41

Results go to `results/source_plane_likelihood_summary_v<version>.json` with a bar chart beside it, and the
Einstein radius scan to `results/source_plane_einstein_radius_gradient_v<version>.png`.
"""

"""
__64-bit JAX__

Before any other import, for the reason `image_plane.py` gives.
"""
import os

os.environ["JAX_ENABLE_X64"] = "True"

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import profiling_util as util
import autofit as af
import autolens as al
from simulators import point_source as simulator

args = util.argument_parser(__doc__.split("\n")[1], repeats=20, scan_points=41).parse_args()
version = al.__version__

"""
__Dataset And Model__

The quad, simulated first if it is not on disk, and the model of `image_plane.py`: an `Isothermal` mass with
`ExternalShear`, and the point source's centre and flux, 10 free parameters.
"""
dataset = al.from_json(file_path=simulator.ensure() / "point_dataset.json")

model = af.Collection(
    galaxies=af.Collection(
        lens=af.Model(al.Galaxy, redshift=0.5, mass=al.mp.Isothermal, shear=al.mp.ExternalShear),
        source=af.Model(al.Galaxy, redshift=1.0, point_0=al.ps.PointFlux),
    )
)

"""
__Instance__

The point the profile is taken at: the simulated lens and source, every value moved by 0.002, so the gradient is
not zero. The simulated values are read by name from the true galaxies (`af.values_by_path`).
"""
truth = simulator.true_tracer()
lens_values = af.values_by_path(model.galaxies.lens, truth.galaxies[0])
source_values = af.values_by_path(model.galaxies.source, truth.galaxies[1])
simulated = [*lens_values.values(), *source_values.values()]
instance = model.instance_from_vector(vector=[value + 0.002 for value in simulated])

"""
__Analysis__

A source-plane fit needs no `PointSolver`: nothing is solved for, so the analysis is given none. The eager
analysis (NumPy, `use_jax=False`) is the reference every compiled value must equal.
"""
analysis = al.AnalysisPoint(dataset=dataset, solver=None, fit_positions_cls=al.FitPositionsSource, use_jax=True)
eager = al.AnalysisPoint(dataset=dataset, solver=None, fit_positions_cls=al.FitPositionsSource, use_jax=False)
eager_log_likelihood = float(eager.log_likelihood_function(instance))
print(f"\n  eager log likelihood {eager_log_likelihood}")

"""
__The Likelihood Step By Step__

Each step is a quantity of the fit `analysis.fit_from(instance)` builds, compiled and timed as the likelihood up
to and including it: the observed positions traced to the source plane, the magnifications there, then the two
log likelihoods and their sum.
"""
steps = util.profile_fit_steps(
    analysis,
    instance,
    dict(
        [
            ("Data ray-traced to the source plane", lambda fit: fit.positions.model_data),
            ("Magnifications at the data", lambda fit: fit.positions.magnifications_at_positions),
            ("Positions log likelihood", lambda fit: fit.positions.log_likelihood),
            ("Fluxes log likelihood", lambda fit: fit.flux.log_likelihood),
            ("Log likelihood", lambda fit: fit.log_likelihood),
        ]
    ),
    args.repeats,
)

"""
__Full Pipeline And The Flat Vector__

The whole likelihood as one program, equal to the eager one; then the same likelihood given the flat parameter
vector, as a search's `Fitness` gives it, timed in turn with the program given the instance. Both compute the
same, but the instance is flattened to its leaves in Python on every call: a fixed ~0.1 ms, which for a likelihood
this cheap is most of the call, so here the flat vector is the faster input.
"""
full = util.full_pipeline(analysis.log_likelihood_function, instance, eager_log_likelihood, "eager", args.repeats)
flat_vector = util.flat_vector_ratio(analysis.log_likelihood_function, model, instance, args.repeats)

"""
__vmap__

A batch of nearby instances stacked leaf by leaf, every lane equal to its single call and to the eager likelihood.
"""
vmap = util.vmap_batch(
    analysis.log_likelihood_function, model, instance, args.batch_size, full, args.repeats,
    eager_likelihood=eager.log_likelihood_function,
)

"""
__Gradient By Name__

Nothing is solved for, so the likelihood is a smooth function of the parameters and central differences of it
agree with `jax.grad` down to steps of 1e-6.
"""
if args.gradient:
    gradient = util.gradient_check(
        analysis.log_likelihood_function, model, instance, steps=(1e-4, 1e-5, 1e-6), rtol=1e-4, repeats=args.repeats
    )
else:
    gradient = None

"""
__Einstein Radius Scan__

The likelihood and `jax.grad` at Einstein radii within 3% of the instance's, as one `jax.vmap`.
"""
radius = instance.galaxies.lens.mass.einstein_radius
scan = util.einstein_radius_scan(
    analysis.log_likelihood_function, model, instance, np.linspace(0.97 * radius, 1.03 * radius, args.scan_points),
    truth=truth.galaxies[0].mass.einstein_radius,
    plot_path=Path(__file__).resolve().parent / "results" / f"source_plane_einstein_radius_gradient_v{version}.png",
    title="Point source, source plane: log likelihood and jax.grad along the Einstein radius",
)

"""
__Summary__

The measurements under the names every profiling script uses, and a bar chart of the steps.
"""
summary = dict(autolens_version=version, repeats=args.repeats, steps=steps, full_pipeline=full, vmap=vmap)
summary.update(flat_vector=flat_vector, gradient=gradient, einstein_radius_scan=scan)
summary["log_likelihood"] = {"eager": eager_log_likelihood, "jit": float(full["result"])}
summary["configuration"] = {"fit_positions_cls": "FitPositionsSource", "images": len(dataset.positions)}
util.write_summary(
    summary,
    results_dir=Path(__file__).resolve().parent / "results",
    stem=f"source_plane_likelihood_summary_v{version}",
    title="Point-source source-plane likelihood (fluxes)",
    subtitle=f"autolens v{version} | {len(dataset.positions)} images | {model.total_free_parameters} free parameters",
)
