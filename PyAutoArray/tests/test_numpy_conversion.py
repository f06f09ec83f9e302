"""
`np.asarray` of an autoarray structure gives a NumPy array, whatever array it holds.

A structure returned by `jax.jit` (the maps of a fit) holds a JAX array; NumPy's
`__array__` protocol needs a NumPy array back, so plotting or saving it must not depend
on where it was computed. Inside a trace there is no value to give: JAX's own error.
"""
import autoarray as aa
import jax
import jax.numpy as jnp
import numpy as np
import pytest


def structures(xp):
    mask = aa.Mask2D.circular(shape_native=(7, 7), pixel_scales=0.2, radius=0.5)
    values = xp.arange(mask.pixels_in_mask, dtype=xp.float64) / 3.0
    return {
        "Array2D": aa.Array2D(values=values, mask=mask),
        "ArrayIrregular": aa.ArrayIrregular(values=values),
        "Grid2DIrregular": aa.Grid2DIrregular(values=xp.stack([values, -values], axis=1)),
        "Visibilities": aa.Visibilities(visibilities=values + 1j * values),
    }


@pytest.mark.parametrize("name", ["Array2D", "ArrayIrregular", "Grid2DIrregular", "Visibilities"])
def test_asarray_of_a_structure_holding_a_jax_array_is_the_numpy_array(name):
    holding_jax = structures(jnp)[name]
    holding_numpy = structures(np)[name]
    assert isinstance(holding_jax.array, jax.Array)

    converted = np.asarray(holding_jax)

    assert type(converted) is np.ndarray
    np.testing.assert_array_equal(converted, np.asarray(holding_numpy))
    assert np.asarray(holding_jax, dtype=np.complex128).dtype == np.complex128
    copied = np.array(holding_numpy, copy=True)
    assert not np.shares_memory(copied, holding_numpy.array)


def test_asarray_of_a_structure_holding_numpy_does_not_copy():
    structure = structures(np)["Array2D"]
    assert np.shares_memory(np.asarray(structure), structure.array)


def test_asarray_inside_a_trace_is_jaxs_conversion_error():
    mask = aa.Mask2D.circular(shape_native=(7, 7), pixel_scales=0.2, radius=0.5)

    @jax.jit
    def f(values):
        return np.asarray(aa.Array2D(values=values, mask=mask)).sum()

    with pytest.raises(jax.errors.TracerArrayConversionError):
        f(jnp.ones(mask.pixels_in_mask))
