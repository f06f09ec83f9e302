"""
Interferometer Util: What The Interferometer Profiling Scripts Share
====================================================================

`mge.py` and `pixelization.py` fit the same simulated visibilities (`simulators/interferometer.py`) with the
direct Fourier transform, and measure the same things in the same way: the likelihood step by step and as one
program, a `jax.vmap` batch, the gradient by name against central differences, and a scan over one named leaf.
This module holds the dataset, the two models and the analysis; the measurements are `fit_profile`'s, as the
point-source scripts make them too (one folder up, beside `profiling_util` and `gradients_util`).
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

from simulators import interferometer as simulator

GAUSSIANS_PER_GALAXY = 20
RECTANGULAR_MESH_SHAPE = (20, 20)


"""
__Dataset__
"""


def load_dataset() -> al.Interferometer:
    """The simulated visibilities (simulated first if not on disk), fitted through `al.TransformerDFT`."""
    folder = simulator.ensure()
    return al.Interferometer(
        data=al.Visibilities(np.load(folder / "visibilities.npy")),
        noise_map=al.VisibilitiesNoiseMap(np.load(folder / "noise_map.npy")),
        uv_wavelengths=np.load(folder / "uv_wavelengths.npy"),
        real_space_mask=simulator.real_space_mask(),
        transformer_class=al.TransformerDFT,
    )


def configuration_of(dataset: al.Interferometer) -> Dict:
    """The numbers that set the likelihood's run time, as the summary JSON reports them."""
    return {
        "transformer": type(dataset.transformer).__name__,
        "pixel_scale_arcsec": simulator.PIXEL_SCALE,
        "mask_radius_arcsec": simulator.MASK_RADIUS,
        "real_space_pixels": int(dataset.real_space_mask.pixels_in_mask),
        "visibilities": int(dataset.data.shape[0]),
    }


"""
__Models__
"""


def mge_model() -> af.Collection:
    """
    The MGE lens model (15 free parameters), as `imaging/mge.py`'s: an `Isothermal` mass, `ExternalShear` and
    20 linear Gaussians per galaxy sharing one centre and one ell_comps, their intensities solved for by the
    non-negative inversion.
    """
    lens = af.Model(
        al.Galaxy,
        redshift=0.5,
        bulge=al.model_util.mge_model_from(
            mask_radius=simulator.MASK_RADIUS,
            total_gaussians=GAUSSIANS_PER_GALAXY,
            centre_prior_is_uniform=True,
        ),
        mass=af.Model(al.mp.Isothermal),
        shear=af.Model(al.mp.ExternalShear),
    )
    source = af.Model(
        al.Galaxy,
        redshift=1.0,
        bulge=al.model_util.mge_model_from(
            mask_radius=simulator.MASK_RADIUS,
            total_gaussians=GAUSSIANS_PER_GALAXY,
            centre_prior_is_uniform=False,
        ),
    )
    return af.Collection(galaxies=af.Collection(lens=lens, source=source))


def rectangular_model() -> af.Collection:
    """
    The pixelized-source model (14 free parameters): a `Sersic` lens bulge, `Isothermal` mass and `ExternalShear`;
    the source a fixed `Pixelization` (a `RectangularUniform` mesh, `Constant` regularization), whose mesh shape
    and coefficient are static parts of the pytree.
    """
    lens = af.Model(
        al.Galaxy,
        redshift=0.5,
        bulge=af.Model(al.lp.Sersic),
        mass=af.Model(al.mp.Isothermal),
        shear=af.Model(al.mp.ExternalShear),
    )
    pixelization = al.Pixelization(
        mesh=al.mesh.RectangularUniform(shape=RECTANGULAR_MESH_SHAPE),
        regularization=al.reg.Constant(coefficient=1.0),
    )
    source = af.Model(al.Galaxy, redshift=1.0, pixelization=pixelization)
    return af.Collection(galaxies=af.Collection(lens=lens, source=source))


def reference_vector(model: af.Collection) -> np.ndarray:
    """
    The prior medians, with the lens mass and shear (and a `Sersic` lens bulge) at the simulated values,
    addressed by their priors, never by their place in the vector.
    """
    truth = simulator.true_tracer().galaxies[0]
    lens = model.galaxies.lens
    overrides = {
        lens.mass.einstein_radius: truth.mass.einstein_radius,
        lens.mass.ell_comps.ell_comps_0: truth.mass.ell_comps[0],
        lens.mass.ell_comps.ell_comps_1: truth.mass.ell_comps[1],
        lens.shear.gamma_1: truth.shear.gamma_1,
        lens.shear.gamma_2: truth.shear.gamma_2,
    }
    if getattr(lens.bulge, "cls", None) is al.lp.Sersic:
        for name in ("intensity", "effective_radius", "sersic_index"):
            overrides[getattr(lens.bulge, name)] = getattr(truth.bulge, name)
        overrides[lens.bulge.ell_comps.ell_comps_0] = truth.bulge.ell_comps[0]
        overrides[lens.bulge.ell_comps.ell_comps_1] = truth.bulge.ell_comps[1]
    medians = model.physical_values_from_prior_medians
    return np.array([overrides.get(prior, median) for prior, median in zip(model.priors_ordered_by_id, medians)])


"""
__The Likelihood__
"""


def likelihood_function(dataset: al.Interferometer):
    """
    The analysis, and its log likelihood as a function of the instance: the closure every compiled program here
    takes (`jax.jit(likelihood)(instance)`), with no `Fitness` and no parameter vector.
    """
    analysis = al.AnalysisInterferometer(dataset=dataset, use_jax=True)

    def likelihood(instance):
        return analysis.log_likelihood_function(instance=instance)

    return analysis, likelihood


def eager_figure_of_merit(analysis, instance) -> float:
    """`FitInterferometer` in NumPy, with the analysis's settings: the reference every compiled value must equal."""
    return float(
        al.FitInterferometer(
            dataset=analysis.dataset,
            tracer=al.Tracer(galaxies=list(instance.galaxies)),
            settings=analysis.settings,
        ).figure_of_merit
    )
