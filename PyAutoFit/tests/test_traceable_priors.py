"""
A prior's transform of a unit value (`value_for`, the map from the unit cube a search
steps in to the physical value) traces under `jax.jit` and `jax.grad`: equal to the
eager value, its derivative equal to central differences. Other input is computed as
before (a NumPy float stays a float).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import autofit as af

PRIORS = {
    "uniform": af.UniformPrior(lower_limit=-1.0, upper_limit=3.0),
    "gaussian": af.GaussianPrior(mean=1.0, sigma=2.0),
    "log_uniform": af.LogUniformPrior(lower_limit=1e-3, upper_limit=10.0),
    "truncated_gaussian": af.TruncatedGaussianPrior(mean=1.0, sigma=2.0, lower_limit=0.0, upper_limit=3.0),
    "log_gaussian": af.LogGaussianPrior(mean=0.0, sigma=1.0),
}

units = st.floats(min_value=1e-3, max_value=1.0 - 1e-3)


@pytest.mark.parametrize("name", PRIORS)
@settings(max_examples=25, deadline=None)
@given(unit=units)
def test_value_for_jit_equals_eager_and_grad_equals_central_differences(name, unit):
    prior = PRIORS[name]

    eager = float(prior.value_for(np.float64(unit)))
    jitted = float(jax.jit(prior.value_for)(jnp.float64(unit)))
    derivative = float(jax.grad(prior.value_for)(jnp.float64(unit)))
    step = 1e-6
    central = (float(prior.value_for(np.float64(unit + step))) - float(prior.value_for(np.float64(unit - step)))) / (
        2 * step
    )

    assert jitted == pytest.approx(eager, rel=1e-12, abs=1e-12)
    assert derivative == pytest.approx(central, rel=1e-5)


def test_eager_uniform_values_are_still_rounded_floats():
    value = af.UniformPrior(lower_limit=0.0, upper_limit=2.0).value_for(0.3)

    assert type(value) is float and value == 0.6


def test_a_model_steps_in_the_unit_cube_under_jit():
    """From unit values to an instance inside one compiled function, as a search in the unit cube would."""
    model = af.Collection(
        one=af.Model(af.ex.Gaussian, centre=PRIORS["uniform"], normalization=PRIORS["log_uniform"]),
        two=af.Model(af.ex.Gaussian, sigma=PRIORS["truncated_gaussian"]),
    )
    unit = np.linspace(0.2, 0.8, model.prior_count)

    def sigma_sum(unit):
        instance = model.instance_from_vector(model.vector_from_unit_vector(unit), xp=jnp)
        return instance.one.centre + instance.one.normalization * instance.two.sigma

    eager = model.instance_from_unit_vector(list(unit))
    expected = eager.one.centre + eager.one.normalization * eager.two.sigma

    assert float(jax.jit(sigma_sum)(jnp.asarray(unit))) == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(jax.grad(sigma_sum)(jnp.asarray(unit))))
