"""External shear deflections in Cartesian form: upstream's values, exact derivatives at zero shear."""

import autogalaxy as ag
import jax
import jax.numpy as jnp
import numpy as np
import pytest

GRID = ag.Grid2D.uniform(shape_native=(9, 9), pixel_scales=0.3)


def polar_deflections(gamma_1, gamma_2, yx):
    """Upstream's form: magnitude and angle, the deflection (-g y', g x') in the shear's frame rotated back."""
    magnitude = np.hypot(gamma_1, gamma_2)
    phi = 0.5 * np.arctan2(gamma_2, gamma_1)
    cos, sin = np.cos(phi), np.sin(phi)
    y = -sin * yx[:, 1] + cos * yx[:, 0]
    x = cos * yx[:, 1] + sin * yx[:, 0]
    ay, ax = -magnitude * y, magnitude * x
    return np.stack((sin * ax + cos * ay, cos * ax - sin * ay), axis=1)


@pytest.mark.parametrize("gamma", [(0.05, 0.0), (0.0, 0.07), (-0.03, 0.04), (0.1, -0.2)])
def test_deflections_are_the_polar_forms_in_numpy_and_jax(gamma):
    shear = ag.mp.ExternalShear(gamma_1=gamma[0], gamma_2=gamma[1])
    expected = polar_deflections(*gamma, GRID.array)

    for xp in (np, jnp):
        np.testing.assert_allclose(
            np.asarray(shear.deflections_yx_2d_from(grid=GRID, xp=xp).array), expected, atol=1e-14
        )


def test_the_gradient_at_zero_shear_is_finite_and_equals_central_differences():
    def total(gammas):
        shear = ag.mp.ExternalShear(gamma_1=gammas[0], gamma_2=gammas[1])
        deflections = shear.deflections_yx_2d_from(grid=GRID, xp=jnp).array
        return jnp.sum(deflections[:, 0] * GRID.array[:, 1] ** 2 + deflections[:, 1] * GRID.array[:, 0])

    gradient = jax.grad(total)(jnp.zeros(2))
    h = 1e-6
    differences = [
        (total(jnp.eye(2)[k] * h) - total(-jnp.eye(2)[k] * h)) / (2 * h) for k in range(2)
    ]

    assert np.all(np.isfinite(gradient)) and np.any(gradient != 0.0)
    np.testing.assert_allclose(gradient, differences, rtol=1e-8, atol=1e-9)
