"""
Elliptical Gaussians and Isothermal deflections: upstream's values, and derivatives at exactly zero ellipticity
(the prior medians) that are finite and equal central differences.

At zero the ellipticity |ell_comps| is the tip of a cone and the angle is undefined: a rotation by it has no
derivative. Central differences cancel the cone (its two sides have the same height), so the slope they see,
and the one JAX now gives, comes from the terms linear in the ell_comps. The Isothermal's deflections, computed
by rotating to its angle, get those terms' slope added at exactly zero.
"""
import autogalaxy as ag
import jax
import jax.numpy as jnp
import numpy as np
import pytest

GRID = ag.Grid2D.uniform(shape_native=(10, 10), pixel_scales=0.25, over_sample_size=1)
WEIGHTS = np.cos(3.0 * GRID.array[:, 0]) + GRID.array[:, 1] ** 2  # no symmetry to hide a wrong sign


def rotated_grid_image(gaussian, grid):
    """Upstream's evaluation: the grid rotated to the profile's angle, then its eccentric radii."""
    radii = gaussian.eccentric_radii_grid_from(grid=gaussian.transformed_to_reference_frame_grid_from(grid))
    return np.asarray(gaussian.image_2d_via_radii_from(radii))


@pytest.mark.parametrize(
    "ell_comps", [(0.0, 0.0), (0.2, 0.0), (0.0, -0.3), (-0.25, 0.4), (0.9, 0.6)]  # the last is capped
)
@pytest.mark.parametrize("cls", [ag.lp.Gaussian, ag.lp_linear.Gaussian, ag.lmp.Gaussian])
def test_images_are_upstream_s_in_numpy_and_jax(cls, ell_comps):
    """The light-and-mass Gaussian clamps its axis ratio below 1: round, it is a little elliptical."""
    kwargs = dict(centre=(0.1, -0.2), ell_comps=ell_comps, sigma=0.7)
    if cls is not ag.lp_linear.Gaussian:
        kwargs["intensity"] = 2.0
    gaussian = cls(**kwargs)
    expected = rotated_grid_image(gaussian, GRID)

    for xp in (np, jnp):
        np.testing.assert_allclose(
            np.asarray(gaussian.image_2d_from(grid=GRID, xp=xp).array), expected, rtol=1e-12
        )


def weighted_image(ell_comps):
    gaussian = ag.lp.Gaussian(centre=(0.1, -0.2), ell_comps=(ell_comps[0], ell_comps[1]), intensity=2.0, sigma=0.7)
    return jnp.sum(WEIGHTS * gaussian.image_2d_from(grid=GRID, xp=jnp).array)


def test_the_gradient_at_zero_ellipticity_is_finite_and_equals_central_differences():
    """
    The image has a term |e| e (the axis ratio's cone times the terms linear in e), which central differences
    of step h see as an error of order h, so they close in on the gradient as h shrinks.
    """
    gradient = np.asarray(jax.grad(weighted_image)(jnp.zeros(2)))
    assert np.all(np.isfinite(gradient)) and np.all(gradient != 0.0)

    for h, rtol in ((1e-4, 1e-3), (1e-6, 1e-5)):
        differences = [
            (weighted_image(jnp.eye(2)[k] * h) - weighted_image(-jnp.eye(2)[k] * h)) / (2 * h)
            for k in range(2)
        ]
        np.testing.assert_allclose(gradient, differences, rtol=rtol)


def test_the_axis_ratio_has_slope_zero_at_zero_ellipticity():
    """Its cone's two sides cancel in central differences; JAX gave NaN (the square root at zero)."""
    slope = jax.grad(lambda e: ag.convert.axis_ratio_from(ell_comps=(e[0], e[1]), xp=jnp))(jnp.zeros(2))
    np.testing.assert_array_equal(np.asarray(slope), [0.0, 0.0])


def weighted_deflections(e, einstein_radius=1.3):
    mass = ag.mp.Isothermal(centre=(0.05, -0.1), ell_comps=(e[0], e[1]), einstein_radius=einstein_radius)
    deflections = mass.deflections_yx_2d_from(grid=GRID, xp=jnp).array
    return jnp.sum(WEIGHTS * deflections[:, 0] + WEIGHTS**2 * deflections[:, 1])


def test_isothermal_deflections_at_zero_ellipticity_keep_their_values():
    mass = ag.mp.Isothermal(centre=(0.05, -0.1), ell_comps=(0.0, 0.0), einstein_radius=1.3)
    np.testing.assert_allclose(
        np.asarray(mass.deflections_yx_2d_from(grid=GRID, xp=jnp).array),
        np.asarray(mass.deflections_yx_2d_from(grid=GRID).array),
        rtol=1e-14,
    )


@pytest.mark.parametrize("ell_comps", [(0.0, 0.0), (0.1, -0.05)])
def test_isothermal_gradient_equals_central_differences_at_and_away_from_zero_ellipticity(ell_comps):
    """
    The Isothermal clamps its axis ratio at 0.99999, so within an ellipticity of 5e-6 of zero it depends on the
    direction of its ell_comps alone: central differences need a step above that scale.
    """
    e = jnp.asarray(ell_comps)
    gradient = np.asarray(jax.grad(weighted_deflections)(e))
    h = 1e-4
    differences = [
        (weighted_deflections(e + jnp.eye(2)[k] * h) - weighted_deflections(e - jnp.eye(2)[k] * h)) / (2 * h)
        for k in range(2)
    ]
    assert np.all(np.isfinite(gradient)) and np.all(gradient != 0.0)
    np.testing.assert_allclose(gradient, differences, rtol=1e-6)


def test_the_einstein_radius_gradient_at_zero_ellipticity_is_unchanged():
    """The slope added at zero ellipticity is zero times a coefficient: nothing for the other parameters."""
    gradient = jax.grad(lambda b: weighted_deflections(jnp.zeros(2), b))(1.3)
    h = 1e-6
    difference = (weighted_deflections(jnp.zeros(2), 1.3 + h) - weighted_deflections(jnp.zeros(2), 1.3 - h)) / (2 * h)
    np.testing.assert_allclose(gradient, difference, rtol=1e-7)
