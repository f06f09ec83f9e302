"""
A tracer whose light profiles are all linear (an MGE lens model) has a zero image: its light is the inversion's.
It is returned as zeros, not ray-traced, evaluated and convolved or transformed, which keeps the JAX program of
the likelihood small; with a light profile of its own, a tracer is imaged as before.
"""
import autolens as al
import jax
import jax.numpy as jnp
import numpy as np


def fit_of(dataset, galaxies):
    return al.FitImaging(dataset=dataset, tracer=al.Tracer(galaxies=galaxies), xp=jnp)


def test_an_all_linear_tracer_s_blurred_image_is_zeros_in_a_few_equations(dataset, mge_model):
    instance = mge_model.instance_from_prior_medians()

    def blurred_image(instance):
        return fit_of(dataset, list(instance.galaxies)).blurred_image.array

    np.testing.assert_array_equal(np.asarray(blurred_image(instance)), np.zeros(dataset.data.shape_slim))
    jaxpr = jax.make_jaxpr(blurred_image)(instance).jaxpr
    assert "fft" not in str(jaxpr)  # no convolution
    assert len(jaxpr.eqns) < 50  # building the fit; imaging 40 Gaussians through the lens took ~3,000


def test_a_tracer_with_light_of_its_own_is_blurred_as_before(dataset, true_tracer):
    """The simulated lens has a Sersic: its blurred image is the sum of its galaxies' convolved images."""
    tracer = true_tracer
    fit = al.FitImaging(dataset=dataset, tracer=tracer)
    per_galaxy = tracer.blurred_image_2d_list_from(
        grid=dataset.grids.lp, blurring_grid=dataset.grids.blurring, psf=dataset.psf
    )
    assert np.max(np.abs(fit.blurred_image.array)) > 0.1
    np.testing.assert_allclose(fit.blurred_image.array, sum(image.array for image in per_galaxy), rtol=1e-10)


def test_the_mge_likelihood_keeps_its_value(dataset, mge_model):
    """The same figure of merit under JAX and NumPy, the inversion imaging every Gaussian."""
    instance = mge_model.instance_from_vector(list(np.array(mge_model.physical_values_from_prior_medians) + 0.01))
    analysis = al.AnalysisImaging(dataset=dataset, use_jax=True)
    eager = al.FitImaging(dataset=dataset, tracer=al.Tracer(galaxies=list(instance.galaxies))).figure_of_merit
    np.testing.assert_allclose(float(jax.jit(analysis.log_likelihood_function)(instance)), eager, rtol=1e-10)
