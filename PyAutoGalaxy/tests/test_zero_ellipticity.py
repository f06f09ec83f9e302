"""
Elliptical Gaussians evaluated from their ell_comps: upstream's values, and derivatives at exactly zero
ellipticity (the prior medians) that are finite and equal central differences.

At zero the ellipticity |ell_comps| is the tip of a cone and the angle is undefined: a rotation by it has no
derivative. Central differences cancel the cone (its two sides have the same height), so the slope they see,
and the one JAX now gives, comes from the terms linear in the ell_comps.
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


def test_an_isothermal_at_zero_ellipticity_has_a_finite_gradient():
    """
    Its deflections still rotate to the profile's angle, so this slope is finite but is not the central
    differences' (a documented limit); it was NaN.
    """

    def weighted_deflections(e):
        mass = ag.mp.Isothermal(centre=(0.05, 0.0), ell_comps=(e[0], e[1]), einstein_radius=1.0)
        return jnp.sum(WEIGHTS[:, None] * mass.deflections_yx_2d_from(grid=GRID, xp=jnp).array)

    assert np.all(np.isfinite(np.asarray(jax.grad(weighted_deflections)(jnp.zeros(2)))))
