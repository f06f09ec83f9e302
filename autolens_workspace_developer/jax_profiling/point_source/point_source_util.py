"""
Point Source Util: What The Point-Source Profiling Scripts Share
================================================================

`source_plane.py` and `image_plane.py` fit the same simulated quad (`simulators/point_source.py`: 4 image
positions and their fluxes) with the same lens model, and measure the same things in the same way: the
likelihood step by step and as one program (asserted equal to the eager NumPy likelihood), a `jax.vmap` batch,
the gradient by name against central differences (a sweep of steps), and a scan over one named leaf. This module
holds the dataset, the model and the analyses; the measurements are `fit_profile`'s, as the interferometer
scripts make them too (one folder up, beside `profiling_util` and `gradients_util`).
"""

import os

# The scripts set this themselves before importing anything; repeating it here keeps the module safe to
# import on its own (a PyAuto import that comes first would otherwise leave JAX in 32-bit mode).
os.environ["JAX_ENABLE_X64"] = "True"

import sys
from pathlib import Path
from typing import Dict

import numpy as np

import autofit as af
import autolens as al

SCRIPT_DIR = Path(__file__).resolve().parent
RESULTS_DIR = SCRIPT_DIR / "results"

# The scripts' shared modules, one folder up: profiling_util, gradients_util and fit_profile.
sys.path.insert(0, str(SCRIPT_DIR.parent))

from simulators import point_source as simulator

# Fourth-order central differences at each of these steps must equal jax.grad to RTOL in every parameter.
FINITE_DIFFERENCE_STEPS = (1e-4, 1e-5, 1e-6)
RTOL = 1e-4


"""
__Dataset And Model__
"""


def load_dataset() -> al.PointDataset:
    """The simulated positions and fluxes (simulated first if not on disk), named `point_0`."""
    folder = simulator.ensure()
    return al.PointDataset(
        name="point_0",
        positions=al.Grid2DIrregular(np.load(folder / "positions.npy")),
        positions_noise_map=simulator.POSITION_NOISE,
        fluxes=al.ArrayIrregular(np.load(folder / "fluxes.npy")),
        fluxes_noise_map=al.ArrayIrregular(np.load(folder / "fluxes_noise_map.npy")),
    )


def configuration_of(dataset: al.PointDataset) -> Dict:
    """The numbers that set the likelihood's run time, as the summary JSON reports them."""
    solver = simulator.solver()
    return {
        "images": len(dataset.positions),
        "fluxes": dataset.fluxes is not None,
        "position_noise_arcsec": simulator.POSITION_NOISE,
        "solver_pixel_scale_arcsec": simulator.SOLVER_PIXEL_SCALE,
        "solver_shape": list(simulator.SOLVER_SHAPE),
        "solver_precision_arcsec": simulator.SOLVER_PRECISION,
        "solver_refinement_steps": solver.n_steps,
    }


def point_model() -> af.Collection:
    """An `Isothermal` mass and `ExternalShear`, the point source's centre and flux: 10 free parameters."""
    lens = af.Model(al.Galaxy, redshift=0.5, mass=af.Model(al.mp.Isothermal), shear=af.Model(al.mp.ExternalShear))
    source = af.Model(al.Galaxy, redshift=1.0, point_0=af.Model(al.ps.PointFlux))
    return af.Collection(galaxies=af.Collection(lens=lens, source=source))


def reference_vector(model: af.Collection) -> np.ndarray:
    """
    The simulated values, each moved by a fixed small amount (a point near the best fit, not on it, where the
    gradient is not zero and the model has the 4 images), addressed by their priors.
    """
    truth = simulator.true_tracer()
    lens, point = truth.galaxies[0], truth.galaxies[1].point_0
    priors = model.galaxies.lens.mass, model.galaxies.lens.shear, model.galaxies.source.point_0
    values = {
        priors[0].centre.centre_0: 0.002,
        priors[0].centre.centre_1: -0.001,
        priors[0].ell_comps.ell_comps_0: lens.mass.ell_comps[0] + 0.002,
        priors[0].ell_comps.ell_comps_1: lens.mass.ell_comps[1] - 0.001,
        priors[0].einstein_radius: lens.mass.einstein_radius + 0.002,
        priors[1].gamma_1: lens.shear.gamma_1 - 0.001,
        priors[1].gamma_2: lens.shear.gamma_2 + 0.001,
        priors[2].centre.centre_0: point.centre[0] + 0.001,
        priors[2].centre.centre_1: point.centre[1] - 0.001,
        priors[2].flux: point.flux * 1.01,
    }
    return np.array([values[prior] for prior in model.priors_ordered_by_id])


"""
__The Likelihood__
"""


def analyses(dataset: al.PointDataset, fit_positions_cls):
    """
    The JAX analysis, its log likelihood as a function of the instance (the closure every compiled program here
    takes), and the eager NumPy analysis every compiled value must equal. Both are given the one NumPy solver;
    the JAX analysis runs a copy of it made for JAX.
    """
    solver = simulator.solver()
    analysis = al.AnalysisPoint(dataset=dataset, solver=solver, fit_positions_cls=fit_positions_cls, use_jax=True)
    eager = al.AnalysisPoint(dataset=dataset, solver=solver, fit_positions_cls=fit_positions_cls, use_jax=False)

    def likelihood(instance):
        return analysis.log_likelihood_function(instance=instance)

    return analysis, likelihood, eager
