"""
A basis of profiles of one class (the linear Gaussians of an MGE) evaluated by JAX as one
vectorised program, and the fallback to one profile at a time.
"""
import autofit as af
import autogalaxy as ag
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import autogalaxy.profiles.light.linear.abstract as linear_module
from autogalaxy.profiles.light.linear.abstract import LightProfileLinearObjFuncList
from autogalaxy.profiles.stacked import stacked_from

MASK = ag.Mask2D.circular(shape_native=(24, 24), pixel_scales=0.2, radius=2.0)
GRID = ag.Grid2D.from_mask(mask=MASK, over_sample_size=2)
PSF = ag.Convolver.from_gaussian(shape_native=(5, 5), pixel_scales=0.2, sigma=0.3, normalize=True)
BLURRING_GRID = GRID.blurring_grid_via_kernel_shape_from(kernel_shape_native=(5, 5))


def mge_basis(total_gaussians=8):
    """The Gaussians of an MGE basis as a model builds them: one centre and ell_comps, fixed sigmas."""
    model = ag.model_util.mge_model_from(mask_radius=2.0, total_gaussians=total_gaussians, centre_prior_is_uniform=True)
    return model, model.instance_from_vector([0.05, -0.02, 0.1, -0.06])


def function_list(profiles, xp):
    return LightProfileLinearObjFuncList(
        grid=GRID, blurring_grid=BLURRING_GRID, psf=PSF, light_profile_list=profiles, xp=xp
    )


def operated_mapping_matrix(profiles, xp=jnp):
    return function_list(profiles, xp).operated_mapping_matrix_override


def mapping_matrix(profiles, xp=jnp):
    return function_list(profiles, xp).mapping_matrix


@pytest.mark.parametrize("matrix", [mapping_matrix, operated_mapping_matrix])
def test_a_vectorised_basis_equals_the_profiles_one_by_one_under_jit(matrix):
    _, basis = mge_basis()
    assert stacked_from(basis.profile_list) is not None

    eager = matrix(basis.profile_list, xp=np)
    jitted = jax.jit(lambda b: matrix(b.profile_list))(basis)

    assert jitted.shape == eager.shape == (GRID.shape[0] if matrix is mapping_matrix else MASK.pixels_in_mask, 8)
    np.testing.assert_allclose(jitted, eager, rtol=1e-10, atol=1e-14)


def test_the_gradient_of_a_vectorised_basis_equals_one_profile_at_a_time():
    model, basis = mge_basis()

    def total(b, vectorise):
        if vectorise:
            return operated_mapping_matrix(b.profile_list).sum()
        return sum(operated_mapping_matrix([p]).sum() for p in b.profile_list)  # one: never stacked

    vectorised = af.values_by_path(model, jax.grad(lambda b: total(b, True))(basis))
    one_by_one = af.values_by_path(model, jax.grad(lambda b: total(b, False))(basis))

    for name, value in one_by_one.items():
        np.testing.assert_allclose(vectorised[name], value, rtol=1e-10, err_msg=name)
    assert all(np.isfinite(float(v)) and float(v) != 0.0 for v in vectorised.values())


def test_a_vectorised_basis_grows_the_program_by_a_stack_not_by_a_profile(monkeypatch):
    def growth():  # equations added by 12 more Gaussians
        def equations(total_gaussians):
            _, basis = mge_basis(total_gaussians)
            return len(jax.make_jaxpr(lambda b: operated_mapping_matrix(b.profile_list))(basis).jaxpr.eqns)

        return equations(16) - equations(4)

    vectorised = growth()
    monkeypatch.setattr(linear_module, "stacked_from", lambda profiles: None)  # one by one
    one_by_one = growth()

    assert vectorised <= 2 * 12  # their sigmas stacked
    assert one_by_one > 20 * vectorised


def test_profiles_that_differ_in_more_than_their_float_parameters_are_not_stacked():
    gaussian = ag.lp_linear.Gaussian(centre=(0.0, 0.0), ell_comps=(0.1, 0.0), sigma=0.5)
    sersic = ag.lp_linear.Sersic(centre=(0.0, 0.0), ell_comps=(0.1, 0.0), effective_radius=0.5, sersic_index=2.0)
    shapelets = [ag.lp_linear.ShapeletCartesian(n_y=n, n_x=0, centre=(0.0, 0.0), beta=1.0) for n in (0, 1)]

    assert stacked_from([gaussian]) is None  # nothing to stack
    assert stacked_from([gaussian, sersic]) is None  # mixed classes
    assert stacked_from(shapelets) is None  # differing orders: static fields
    assert stacked_from([gaussian, ag.lp_linear.Gaussian(sigma=2.0)]) is not None


def test_a_mixed_basis_is_evaluated_one_profile_at_a_time_and_equals_numpy():
    profiles = [
        ag.lp_linear.Gaussian(centre=(0.0, 0.1), ell_comps=(0.1, 0.0), sigma=0.5),
        ag.lp_linear.Sersic(centre=(0.0, 0.0), ell_comps=(0.1, 0.05), effective_radius=0.6, sersic_index=2.0),
    ]

    np.testing.assert_allclose(
        jax.jit(lambda: operated_mapping_matrix(profiles))(), operated_mapping_matrix(profiles, xp=np), rtol=1e-10
    )
