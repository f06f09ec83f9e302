"""
Pixelizations, meshes, image meshes and regularizations as JAX pytrees.

PyAutoArray does not depend on PyAutoFit: its classes declare their static fields (the
PyAutoArray series) and become pytrees when PyAutoGalaxy is imported (the PyAutoGalaxy
series), as the galaxies that hold them are.
"""
import autoarray as aa
from autoarray.inversion.linear_obj.neighbors import Neighbors
import autogalaxy  # noqa: F401  (makes the PyAutoArray classes pytrees)
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import keystr, tree_flatten, tree_flatten_with_path, tree_structure

MESHES = [
    aa.mesh.RectangularUniform(shape=(6, 5)),
    aa.mesh.RectangularAdaptDensity(shape=(4, 4)),
    aa.mesh.Delaunay(pixels=30, zeroed_pixels=4),
    aa.mesh.KNearestNeighbor(pixels=30, k_neighbors=8),
]

REGULARIZATIONS = [
    aa.reg.Constant(coefficient=2.0),
    aa.reg.ConstantSplit(coefficient=2.0),
    aa.reg.Adapt(inner_coefficient=1.0, outer_coefficient=2.0, signal_scale=0.5),
    aa.reg.GaussianKernel(coefficient=1.0, scale=0.3),
]


@pytest.mark.parametrize("mesh", MESHES, ids=lambda m: type(m).__name__)
def test_mesh_sizes_stay_static_inside_jit(mesh):
    @jax.jit
    def f(pixelization):
        mesh = pixelization.mesh
        assert isinstance(mesh.pixels, int)  # sets array shapes: a Python int
        if hasattr(mesh, "shape"):
            assert mesh.shape == tuple(int(n) for n in mesh.shape)
        return jnp.zeros(mesh.pixels).sum() + pixelization.regularization.coefficient

    pixelization = aa.Pixelization(mesh=mesh, regularization=aa.reg.Constant(coefficient=2.0))
    assert f(pixelization) == 2.0
    assert tree_flatten(pixelization)[0] == [2.0]


@pytest.mark.parametrize("regularization", REGULARIZATIONS, ids=lambda r: type(r).__name__)
def test_regularization_parameters_are_named_leaves(regularization):
    pixelization = aa.Pixelization(mesh=MESHES[0], regularization=regularization)
    paths = {keystr(p): leaf for p, leaf in tree_flatten_with_path(pixelization)[0]}
    for name, value in vars(regularization).items():
        assert paths[f".regularization.{name}"] == value

    out = jax.jit(lambda p: p)(pixelization)
    assert type(out) is aa.Pixelization
    assert type(out.regularization) is type(regularization)
    assert type(out.mesh) is type(MESHES[0]) and out.mesh.shape == (6, 5)


def test_one_compile_serves_every_coefficient_and_a_new_shape_recompiles():
    f = jax.jit(lambda p: p.regularization.coefficient * p.mesh.pixels)
    for coefficient in (1.0, 2.0, 3.0):
        pixelization = aa.Pixelization(
            mesh=aa.mesh.RectangularUniform(shape=(6, 5)),
            regularization=aa.reg.Constant(coefficient=coefficient),
        )
        assert f(pixelization) == 30 * coefficient
    assert f._cache_size() == 1

    f(aa.Pixelization(mesh=aa.mesh.RectangularUniform(shape=(7, 5)), regularization=aa.reg.Constant()))
    assert f._cache_size() == 2


class TriangleOfPixels:
    """A linear object of three pixels, each the neighbour of the other two."""

    params = 3
    neighbors = Neighbors(arr=np.array([[1, 2], [0, 2], [0, 1]]), sizes=np.array([2, 2, 2]))


def test_regularization_matrices_differentiate_through_the_coefficient():
    def trace(regularization):
        return jnp.trace(
            regularization.regularization_matrix_from(linear_obj=TriangleOfPixels(), xp=jnp)
        )

    regularization = aa.reg.Constant(coefficient=2.0)
    grad = jax.grad(trace)(regularization)
    assert type(grad) is aa.reg.Constant
    assert tree_structure(grad) == tree_structure(regularization)
    # The matrix scales with the coefficient squared.
    np.testing.assert_allclose(grad.coefficient, 2 * trace(regularization) / 2.0, rtol=1e-8)
