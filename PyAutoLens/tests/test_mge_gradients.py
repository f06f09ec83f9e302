"""
Gradients and the Hessian of the MGE imaging likelihood (linear Gaussians solved for by a non-negative
inversion), taken over the model instance by parameter name, through the PyAutoArray series' active-set rule
for the non-negative solve.

The derivatives are checked against fourth-order central differences of the jitted likelihood (itself checked
against the eager `FitImaging`) near the prior medians, near the simulated lens, and at exactly zero ell_comps
and shear (the prior medians themselves).
"""
import autofit as af
import autolens as al
import jax
import jax.numpy as jnp
import numpy as np
import pytest


def eager_figure_of_merit(dataset, instance):
    return al.FitImaging(
        dataset=dataset, tracer=al.Tracer(galaxies=list(instance.galaxies))
    ).figure_of_merit


def near_medians(model, seed=0, scale=0.01):
    rng = np.random.default_rng(seed)
    medians = np.array(model.physical_values_from_prior_medians)
    return medians + scale * rng.standard_normal(medians.shape)


def near_truth(model, seed=0, scale=0.002):
    """Near the simulated lens: the Hessian there is that of a maximum (negative definite)."""
    lens, source = model.galaxies.lens, model.galaxies.source
    lens_bulge, source_bulge = lens.bulge.profile_list[0], source.bulge.profile_list[0]
    truth = {
        lens_bulge.centre.centre_0: 0.0,
        lens_bulge.centre.centre_1: 0.0,
        lens_bulge.ell_comps.ell_comps_0: 0.05,
        lens_bulge.ell_comps.ell_comps_1: 0.0,
        lens.mass.centre.centre_0: 0.0,
        lens.mass.centre.centre_1: 0.0,
        lens.mass.ell_comps.ell_comps_0: 0.1,
        lens.mass.ell_comps.ell_comps_1: 0.0,
        lens.mass.einstein_radius: 1.2,
        lens.shear.gamma_1: 0.05,
        lens.shear.gamma_2: 0.0,
        source_bulge.centre.centre_0: 0.1,
        source_bulge.centre.centre_1: 0.1,
        source_bulge.ell_comps.ell_comps_0: 0.1,
        source_bulge.ell_comps.ell_comps_1: 0.0,
    }
    vector = np.array([truth[prior] for prior in model.priors_ordered_by_id])
    return vector + scale * np.random.default_rng(seed).standard_normal(vector.shape)


def instance_of(model, vector):
    return jax.tree_util.tree_map(jnp.asarray, model.instance_from_vector(list(vector)))


def finite_differences(function, vector, step):
    """Fourth-order central differences: truncation O(h^4), so h can be large enough for rounding."""
    columns = []
    for i in range(len(vector)):
        e = np.zeros_like(vector)
        e[i] = step
        columns.append(
            (8 * (function(vector + e) - function(vector - e)) - (function(vector + 2 * e) - function(vector - 2 * e)))
            / (12 * step)
        )
    return np.array(columns)


@pytest.fixture(scope="module")
def mge(dataset):
    analysis = al.AnalysisImaging(dataset=dataset, use_jax=True)

    def log_likelihood(instance):
        return analysis.log_likelihood_function(instance=instance)

    return jax.jit(log_likelihood), jax.jit(jax.grad(log_likelihood)), log_likelihood


def test_forward_value_is_the_eager_figure_of_merit(dataset, mge_model, mge):
    likelihood, _, _ = mge
    for seed in (0, 1):
        vector = near_medians(mge_model, seed)
        np.testing.assert_allclose(
            float(likelihood(instance_of(mge_model, vector))),
            eager_figure_of_merit(dataset, mge_model.instance_from_vector(list(vector))),
            rtol=1e-10,
        )


def gradient_and_differences(model, mge, vector, step=1e-4):
    likelihood, gradient_of, _ = mge
    gradient = af.values_by_path(model, gradient_of(instance_of(model, vector)))
    assert len(gradient) == model.total_free_parameters == 15
    differences = finite_differences(
        lambda v: float(likelihood(instance_of(model, v))), vector, step=step
    )
    return gradient, differences


def test_gradient_by_name_equals_central_differences_near_the_simulated_lens(mge_model, mge):
    gradient, differences = gradient_and_differences(mge_model, mge, near_truth(mge_model, scale=0.01))
    for (path, value), expected in zip(gradient.items(), differences):
        assert np.isfinite(value), path
        np.testing.assert_allclose(value, expected, rtol=1e-4, err_msg=path)


def test_gradient_by_name_is_finite_near_the_prior_medians(mge_model, mge):
    """
    Near the prior medians the source's Gaussians are all clamped at zero by the non-negative solve, so the
    likelihood does not depend on the mass, shear or source parameters there: their exact derivatives are 0
    (jaxnnls's relaxed backward pass gave them ~1e-4). Central differences of them are rounding noise,
    ~1e-9, hence the absolute tolerance, 1e-10 of the largest derivative.
    """
    gradient, differences = gradient_and_differences(mge_model, mge, near_medians(mge_model))
    largest = max(abs(float(value)) for value in gradient.values())
    for (path, value), expected in zip(gradient.items(), differences):
        assert np.isfinite(value), path
        np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-10 * largest, err_msg=path)


def test_gradient_by_name_at_exactly_the_prior_medians_is_finite_and_equals_central_differences(mge_model, mge):
    """
    At the prior medians every ell_comps and the shear are exactly zero (the gradient was NaN there). The lens
    Gaussians' ell_comps have a term |e| e, which central differences see as an error of order the step, hence
    the small step; as near the medians, the source is clamped at zero, so most derivatives are exactly 0.
    """
    medians = np.array(mge_model.physical_values_from_prior_medians)
    assert mge_model.instance_from_prior_medians().galaxies.lens.bulge.profile_list[0].ell_comps == (0.0, 0.0)
    gradient, differences = gradient_and_differences(mge_model, mge, medians, step=1e-6)
    largest = max(abs(float(value)) for value in gradient.values())
    assert largest > 0.0
    for (path, value), expected in zip(gradient.items(), differences):
        assert np.isfinite(value), path
        np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-8 * largest, err_msg=path)


def test_gradient_by_name_at_zero_ellipticity_near_the_simulated_lens(mge_model, mge):
    """
    Every ell_comps exactly zero, the rest at the simulated lens, so the source is bright and every parameter
    matters. The step, 1e-5, is above the scale (5e-6) within which the Isothermal's clamped axis ratio makes it
    depend on the direction of its ell_comps alone, and small enough for the Gaussians' |e| e term. At exactly
    zero that clamp leaves the Isothermal a little elliptical (axis ratio 0.99999, angle 0), off the limit its
    neighbours tend to, and its ell_comps' gradient, taken there, differs from central differences by ~1.6e-4.
    """
    zero_ellipticity = near_truth(mge_model, scale=0.0)
    names = list(af.values_by_path(mge_model, mge_model.instance_from_vector(list(zero_ellipticity))))
    for i, name in enumerate(names):
        if ".ell_comps" in name:
            zero_ellipticity[i] = 0.0

    gradient, differences = gradient_and_differences(mge_model, mge, zero_ellipticity, step=1e-5)
    for (path, value), expected in zip(gradient.items(), differences):
        assert np.isfinite(value), path
        rtol = 5e-4 if path.startswith("galaxies.lens.mass.ell_comps") else 1e-4
        np.testing.assert_allclose(value, expected, rtol=rtol, err_msg=path)


def test_hessian_by_name_is_finite_symmetric_and_gives_finite_errors(mge_model, mge):
    """
    The Hessian by central differences of the compiled gradient, column by column (60 gradient calls and no
    further compile). `jax.hessian` goes through the non-negative solve too (forward over reverse: the
    PyAutoArray tests check it), but compiling it for the whole likelihood takes many minutes on a CPU.
    Differencing an exact gradient has no reason to be symmetric, so its symmetry checks the gradient.
    """
    _, gradient_of, _ = mge
    vector = near_truth(mge_model)
    names = list(af.values_by_path(mge_model, instance_of(mge_model, vector)))

    hessian = finite_differences(
        lambda v: np.array(
            [float(g) for g in af.values_by_path(mge_model, gradient_of(instance_of(mge_model, v))).values()]
        ),
        vector,
        step=1e-4,
    ).T
    assert hessian.shape == (15, 15)
    assert np.all(np.isfinite(hessian))
    np.testing.assert_allclose(hessian, hessian.T, rtol=1e-4, atol=1e-6 * np.abs(hessian).max())

    # Near the simulated lens the log likelihood is at a maximum: the Fisher matrix -H is positive definite
    # and the 1-sigma errors sqrt(diag((-H)^-1)) are finite and positive.
    fisher = -0.5 * (hessian + hessian.T)
    assert np.linalg.eigvalsh(fisher).min() > 0
    errors = dict(zip(names, np.sqrt(np.diag(np.linalg.inv(fisher)))))
    assert all(np.isfinite(value) and value > 0 for value in errors.values())
    assert errors["galaxies.lens.mass.einstein_radius"] < 0.05
