"""
The interferometer likelihood jitted, vmapped and differentiated over a model instance.

`al.AnalysisInterferometer(dataset, use_jax=True).log_likelihood_function` with the
direct Fourier transform (`al.TransformerDFT`), for an MGE source (linear Gaussians
solved for by the non-negative inversion) and a rectangular pixelized source
(`Constant` regularization, the log evidence): `jax.jit` equals the eager
`FitInterferometer`, `jax.vmap` over leafwise-stacked instances equals single calls,
and `jax.grad` by parameter name equals central differences of the likelihood.

The dataset is conftest.py's lens observed by 300 visibilities on baselines out to
250,000 wavelengths (0.8" resolution), with the real-space image on conftest's
24 x 24 grid at 0.2"/pixel inside a 2" mask (316 pixels).

`al.TransformerNUFFT` calls PyNUFFT (an optional package) on the host: without it an
`Interferometer` asks for it or `TransformerDFT`; with it, the likelihood runs under
`jax.jit` and `jax.grad` says to use `TransformerDFT`.

Run as a script (the last test does so, in a fresh interpreter) this file prints the
likelihood and its gradient by name computed as that interpreter's first JAX calls.
"""
import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import autofit as af
import autolens as al
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import (
    MASK_RADIUS,
    PIXEL_SCALE,
    mge_lens_model,
    pixelized_model,
    simulated_tracer,
)

TOTAL_VISIBILITIES = 300
LONGEST_BASELINE = 2.5e5  # wavelengths
NOISE_SIGMA = 1.0

# conftest.simulated_tracer's lens and source, by the MGE model's parameter names (autofit's:
# a centre the basis' Gaussians share is named by the last of them).
MGE_TRUTH = {
    "galaxies.lens.bulge.profile_list.19.ell_comps.ell_comps_0": 0.05,
    "galaxies.lens.mass.ell_comps.ell_comps_0": 0.1,
    "galaxies.lens.mass.einstein_radius": 1.2,
    "galaxies.lens.shear.gamma_1": 0.05,
    "galaxies.source.bulge.profile_list.19.centre.centre_0": 0.1,
    "galaxies.source.bulge.profile_list.19.centre.centre_1": 0.1,
    "galaxies.source.bulge.profile_list.19.ell_comps.ell_comps_0": 0.1,
}


def uv_wavelengths(total=TOTAL_VISIBILITIES, seed=1):
    """Baselines spread uniformly over a disk of radius LONGEST_BASELINE, none shorter than 14% of it."""
    rng = np.random.default_rng(seed)
    radius = LONGEST_BASELINE * np.sqrt(rng.uniform(0.02, 1.0, total))
    angle = rng.uniform(0.0, 2.0 * np.pi, total)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


def real_space_mask():
    return al.Mask2D.circular(shape_native=(24, 24), pixel_scales=PIXEL_SCALE, radius=MASK_RADIUS)


def simulated_interferometer(transformer_class=al.TransformerDFT):
    """conftest's lens, observed through the DFT with complex Gaussian noise; fitted with `transformer_class`."""
    mask = real_space_mask()
    simulator = al.SimulatorInterferometer(
        uv_wavelengths=uv_wavelengths(),
        exposure_time=300.0,
        noise_sigma=NOISE_SIGMA,
        transformer_class=al.TransformerDFT,
        noise_seed=1,
    )
    simulated = simulator.via_tracer_from(tracer=simulated_tracer(), grid=al.Grid2D.from_mask(mask=mask))
    return al.Interferometer(
        data=simulated.data,
        noise_map=simulated.noise_map,
        uv_wavelengths=simulated.uv_wavelengths,
        real_space_mask=mask,
        transformer_class=transformer_class,
    )


def rectangular_model():
    return pixelized_model(
        al.Pixelization(
            mesh=al.mesh.RectangularUniform(shape=(12, 12)),
            regularization=al.reg.Constant(coefficient=1.0),
        )
    )


def near_truth(model, seed=0, scale=0.01):
    """
    A vector a little way from the simulated lens (the MGE priors' medians elsewhere): there the
    source's Gaussians are not all clamped at zero by the non-negative solve, and no ell_comps is
    exactly 0, where a profile's axis ratio has no derivative.
    """
    names = af.values_by_path(model, model.instance_from_prior_medians())
    medians = np.array(model.physical_values_from_prior_medians)
    vector = np.array([MGE_TRUTH.get(name, median) for name, median in zip(names, medians)])
    return vector + scale * np.random.default_rng(seed).standard_normal(vector.shape)


def instance_of(model, vector):
    return jax.tree_util.tree_map(jnp.asarray, model.instance_from_vector([float(v) for v in vector]))


def eager_figure_of_merit(analysis, model, vector):
    tracer = al.Tracer(galaxies=list(model.instance_from_vector([float(v) for v in vector]).galaxies))
    return al.FitInterferometer(
        dataset=analysis.dataset, tracer=tracer, settings=analysis.settings
    ).figure_of_merit


def finite_differences(function, vector, step):
    """Fourth-order central differences, one parameter at a time."""
    columns = []
    for i in range(len(vector)):
        e = np.zeros_like(vector)
        e[i] = step
        columns.append(
            (8 * (function(vector + e) - function(vector - e)) - (function(vector + 2 * e) - function(vector - 2 * e)))
            / (12 * step)
        )
    return np.array(columns)


class Likelihood:
    """An analysis's likelihood over an instance, its `jax.jit` and the `jax.jit` of its `jax.grad`."""

    def __init__(self, dataset):
        self.analysis = al.AnalysisInterferometer(dataset=dataset, use_jax=True)
        self.jitted = jax.jit(self.__call__)
        self.gradient = jax.jit(jax.grad(self.__call__))

    def __call__(self, instance):
        return self.analysis.log_likelihood_function(instance=instance)


@pytest.fixture(scope="module")
def interferometer():
    return simulated_interferometer()


@pytest.fixture(scope="module")
def likelihood(interferometer):
    return Likelihood(interferometer)


@pytest.fixture(scope="module", params=["mge", "rectangular"])
def model(request):
    return {"mge": mge_lens_model, "rectangular": rectangular_model}[request.param]()


def test_the_dataset_is_small_and_real(interferometer):
    assert interferometer.data.shape == (TOTAL_VISIBILITIES,)
    assert interferometer.real_space_mask.pixels_in_mask == 316
    assert isinstance(interferometer.transformer, al.TransformerDFT)
    # the lens is seen well above the noise
    assert np.abs(interferometer.data.array).max() > 100 * NOISE_SIGMA


def test_likelihood_jit_equals_the_eager_fit_with_one_compile(likelihood, model):
    compiles = []
    for seed in (0, 1):
        vector = near_truth(model, seed=seed, scale=0.002)
        np.testing.assert_allclose(
            likelihood.jitted(instance_of(model, vector)),
            eager_figure_of_merit(likelihood.analysis, model, vector),
            rtol=1e-10,
        )
        compiles.append(likelihood.jitted._cache_size())
    assert compiles[1] == compiles[0]  # the second instance used the first one's compile


def test_vmap_over_leafwise_stacked_instances_equals_single_calls(likelihood, model):
    instances = [instance_of(model, near_truth(model, seed=seed, scale=0.002)) for seed in (2, 3, 4)]
    batch = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *instances)
    np.testing.assert_allclose(
        jax.jit(jax.vmap(likelihood))(batch),
        [likelihood.jitted(instance) for instance in instances],
        rtol=1e-10,
    )


def gradient_and_differences(likelihood, model, scale, step):
    vector = near_truth(model, scale=scale)
    gradient = af.values_by_path(model, likelihood.gradient(instance_of(model, vector)))
    assert len(gradient) == model.total_free_parameters
    differences = finite_differences(
        lambda v: float(likelihood.jitted(instance_of(model, v))), vector, step=step
    )
    return gradient, differences


def test_mge_gradient_by_name_equals_central_differences(likelihood):
    """
    The likelihood is smooth in every parameter here (the non-negative solve keeps its active
    set over the differences' steps): the derivatives agree to ~2e-9. (0.002 from the truth, one
    Gaussian's intensity reaches zero within the steps in the lens centre: 8e-5 there.)
    """
    model = mge_lens_model()
    gradient, differences = gradient_and_differences(likelihood, model, scale=0.01, step=1e-4)
    assert "galaxies.lens.mass.einstein_radius" in gradient
    for (name, value), expected in zip(gradient.items(), differences):
        np.testing.assert_allclose(value, expected, rtol=1e-7, err_msg=name)


def test_rectangular_gradient_by_name_equals_central_differences(likelihood):
    """
    A rectangular mesh interpolates bilinearly between source pixels, and its extent follows the
    traced grid's: the likelihood has kinks in the mass parameters wherever a traced image pixel
    crosses a source pixel's edge. With steps of 1e-4 the differences straddle a kink for some
    parameters (off by up to 1e-3); steps of 1e-6 straddle none here and agree to ~2e-8.
    """
    model = rectangular_model()
    gradient, differences = gradient_and_differences(likelihood, model, scale=0.002, step=1e-6)
    assert "galaxies.lens.mass.einstein_radius" in gradient
    for (name, value), expected in zip(gradient.items(), differences):
        np.testing.assert_allclose(value, expected, rtol=1e-6, err_msg=name)


def test_the_gradient_is_traced_without_a_complex_warning(likelihood, model):
    # make_jaxpr traces afresh, so the transpose of every complex operation runs here.
    instance = instance_of(model, near_truth(model, scale=0.002))
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        jax.make_jaxpr(jax.grad(likelihood))(instance)


# NUFFT --------------------------------------------------------------------------

PYNUFFT = importlib.util.find_spec("pynufft") is not None


@pytest.mark.skipif(PYNUFFT, reason="PyNUFFT is installed")
def test_without_pynufft_the_nufft_error_names_the_dft():
    with pytest.raises(ModuleNotFoundError, match="transformer_class=TransformerDFT"):
        simulated_interferometer(transformer_class=al.TransformerNUFFT)


@pytest.mark.skipif(not PYNUFFT, reason="PyNUFFT is not installed")
def test_the_nufft_likelihood_jits_and_its_gradient_names_the_dft():
    dataset = simulated_interferometer(transformer_class=al.TransformerNUFFT)
    nufft = Likelihood(dataset)
    model = mge_lens_model(total_gaussians=5)
    vector = near_truth(model)
    instance = instance_of(model, vector)

    np.testing.assert_allclose(
        nufft.jitted(instance), eager_figure_of_merit(nufft.analysis, model, vector), rtol=1e-10
    )
    with pytest.raises(NotImplementedError, match="transformer_class=TransformerDFT"):
        jax.grad(nufft)(instance)


# The first JAX calls of an interpreter --------------------------------------------


def first_calls(vector):
    """The likelihood and its gradient at `vector`, as the first JAX call of this interpreter."""
    model = mge_lens_model()
    likelihood = Likelihood(simulated_interferometer())
    value, gradient = jax.jit(jax.value_and_grad(likelihood))(model.instance_from_vector(vector))
    return {
        "gradient": {name: float(value) for name, value in af.values_by_path(model, gradient).items()},
        "likelihood": float(value),
        "eager": float(eager_figure_of_merit(likelihood.analysis, model, vector)),
    }


def test_the_likelihood_and_its_gradient_as_the_first_jax_calls_of_an_interpreter(likelihood):
    model = mge_lens_model()
    vector = [float(v) for v in near_truth(model, scale=0.002)]
    completed = subprocess.run(
        [sys.executable, __file__, json.dumps(vector)],
        cwd=Path(__file__).parent,
        env={**os.environ, "JAX_ENABLE_X64": "True", "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])

    np.testing.assert_allclose(report["likelihood"], report["eager"], rtol=1e-10)
    here = af.values_by_path(model, likelihood.gradient(instance_of(model, vector)))
    assert list(report["gradient"]) == list(here)
    np.testing.assert_allclose(
        list(report["gradient"].values()), [float(value) for value in here.values()], rtol=1e-10
    )


if __name__ == "__main__":
    print(json.dumps(first_calls(json.loads(sys.argv[1]))))
