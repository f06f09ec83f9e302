"""
Point-source likelihoods (AnalysisPoint) with the instance as a pytree.

A quadruply imaged point source is simulated from a real tracer (an Isothermal lens with
external shear): its image positions, solved by the triangle solver, with noise, and its
fluxes. The model frees the lens, the shear, the source centre and its flux (10 leaves).

- Every positions fit (source plane; image plane: all pairs, pairs, pairs with repeats),
  with fluxes, traces under `jax.jit` and `jax.vmap` over a stacked batch of instances
  and equals the eager NumPy likelihood (use_jax=False); the first call of a fresh
  interpreter too (this file run as a script in a subprocess).
- The image-plane likelihood is smooth: its model positions solve the lens equation to
  machine precision, and `jax.grad` by name equals central differences of the
  likelihood itself for every parameter, with steps down to 1e-6.
- An image that vanishes at a caustic changes the likelihood by a jump, finite, with a
  finite gradient; a model with no image in the solver's region is finite too.
- `jax.jit(analysis.fit_from)` returns the `FitPointDataset`, its likelihood and model
  positions computed by the compiled program, equal to the eager fit's; one compile
  per model. Like an eager fit, it converts to NumPy and `subplot_fit_point` renders it.
- An analysis runs its solver in its own array module: `AnalysisPoint(use_jax=True)` given
  a solver made for NumPy (`PointSolver.for_grid`'s default) runs a copy made for JAX.
"""
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import autofit as af
import autolens as al

POSITION_NOISE = 0.005
FLUX_NOISE_FRACTION = 0.2
SOURCE_CENTRE = (0.02, 0.03)

FIT_CLASSES = (
    al.FitPositionsSource,
    al.FitPositionsImagePairAll,
    al.FitPositionsImagePair,
    al.FitPositionsImagePairRepeat,
)

# Close to the truth, with 4 images, in the model's prior order.
NEAR_TRUTH = {
    "galaxies.lens.mass.centre.centre_0": 0.003,
    "galaxies.lens.mass.centre.centre_1": -0.002,
    "galaxies.lens.mass.ell_comps.ell_comps_0": 0.098,
    "galaxies.lens.mass.ell_comps.ell_comps_1": 0.052,
    "galaxies.lens.mass.einstein_radius": 1.199,
    "galaxies.lens.shear.gamma_1": 0.049,
    "galaxies.lens.shear.gamma_2": 0.021,
    "galaxies.source.point_0.centre.centre_0": 0.021,
    "galaxies.source.point_0.centre.centre_1": 0.029,
    "galaxies.source.point_0.flux": 1.01,
}


def point_tracer():
    lens = al.Galaxy(
        redshift=0.5,
        mass=al.mp.Isothermal(centre=(0.0, 0.0), ell_comps=(0.1, 0.05), einstein_radius=1.2),
        shear=al.mp.ExternalShear(gamma_1=0.05, gamma_2=0.02),
    )
    source = al.Galaxy(redshift=1.0, point_0=al.ps.PointFlux(centre=SOURCE_CENTRE, flux=1.0))
    return al.Tracer(galaxies=[lens, source])


def point_solver(xp=np):
    """A 3" x 3" image plane, triangles refined to 0.01" (Newton steps do the rest)."""
    grid = al.Grid2D.uniform(shape_native=(30, 30), pixel_scales=0.1)
    return al.PointSolver.for_grid(
        grid=grid, pixel_scale_precision=0.01, magnification_threshold=0.1, xp=xp
    )


def point_dataset():
    tracer = point_tracer()
    positions = point_solver().solve(tracer=tracer, source_plane_coordinate=SOURCE_CENTRE).array
    magnifications = np.abs(
        np.asarray(al.LensCalc.from_tracer(tracer).magnification_2d_via_hessian_from(grid=al.Grid2DIrregular(positions)))
    )
    rng = np.random.default_rng(1)
    fluxes = magnifications * (1.0 + FLUX_NOISE_FRACTION * rng.normal(size=len(positions)))
    return al.PointDataset(
        name="point_0",
        positions=al.Grid2DIrregular(positions + POSITION_NOISE * rng.normal(size=positions.shape)),
        positions_noise_map=POSITION_NOISE,
        fluxes=al.ArrayIrregular(fluxes),
        fluxes_noise_map=al.ArrayIrregular(FLUX_NOISE_FRACTION * magnifications),
    )


def point_model():
    lens = af.Model(al.Galaxy, redshift=0.5, mass=al.mp.Isothermal, shear=al.mp.ExternalShear)
    source = af.Model(al.Galaxy, redshift=1.0, point_0=al.ps.PointFlux)
    return af.Collection(galaxies=af.Collection(lens=lens, source=source))


def instance_from(model, **changes):
    values = {**NEAR_TRUTH, **changes}
    return model.instance_from_vector([values[".".join(path)] for path in model.paths])


def analyses(fit_positions_cls, dataset):
    """
    The eager (NumPy) and the JAX analysis of one fit, given one solver made for NumPy (the
    default of `PointSolver.for_grid`): the JAX analysis runs a copy of it made for JAX.
    """
    solver = point_solver()
    return tuple(
        al.AnalysisPoint(dataset=dataset, solver=solver, fit_positions_cls=fit_positions_cls, use_jax=use_jax)
        for use_jax in (False, True)
    )


@pytest.fixture(scope="module")
def dataset():
    return point_dataset()


@pytest.fixture(scope="module")
def model():
    return point_model()


def test_the_simulated_source_has_four_images(dataset):
    assert len(dataset.positions) == 4


def test_an_analysis_runs_its_solver_in_its_own_array_module(dataset):
    eager, analysis = analyses(al.FitPositionsImagePairAll, dataset)

    assert not eager.solver.use_jax and analysis.solver.use_jax
    assert analysis.solver.for_xp(jnp) is analysis.solver
    np.testing.assert_array_equal(
        np.asarray(analysis.solver.initial_triangles.coordinates), eager.solver.initial_triangles.coordinates
    )


def test_a_solver_that_cannot_be_converted_says_how_to_build_one():
    from autoarray.structures.triangles.array_np import ArrayTrianglesNp

    solver = al.PointSolver(
        scale=0.1,
        initial_triangles=ArrayTrianglesNp.for_limits_and_scale(
            y_min=-1.0, y_max=1.0, x_min=-1.0, x_max=1.0, scale=0.1
        ),
        pixel_scale_precision=0.01,
    )
    with pytest.raises(TypeError, match="xp=jax.numpy"):
        solver.for_xp(jnp)


@pytest.mark.parametrize("fit_positions_cls", FIT_CLASSES, ids=lambda cls: cls.__name__)
def test_jit_of_vmap_over_a_batch_equals_the_eager_likelihood(fit_positions_cls, dataset, model):
    eager, analysis = analyses(fit_positions_cls, dataset)
    instances = [
        instance_from(model),
        instance_from(model, **{"galaxies.lens.mass.einstein_radius": 1.203}),
        instance_from(model, **{"galaxies.source.point_0.centre.centre_0": 0.018}),
    ]
    batch = jax.tree.map(lambda *leaves: jnp.stack(leaves), *instances)

    batched = jax.jit(jax.vmap(analysis.log_likelihood_function))(batch)

    expected = [eager.log_likelihood_function(instance) for instance in instances]
    assert len(set(expected)) == 3
    np.testing.assert_allclose(np.asarray(batched), expected, rtol=1e-8)


def central_difference(f, vector, index, step, order):
    def at(shift):
        shifted = np.array(vector)
        shifted[index] += shift
        return float(f(shifted))

    if order == 2:
        return (at(step) - at(-step)) / (2 * step)
    return (8 * (at(step) - at(-step)) - (at(2 * step) - at(-2 * step))) / (12 * step)


def test_gradient_by_name_equals_central_differences_of_the_likelihood(dataset, model):
    _, analysis = analyses(al.FitPositionsImagePairAll, dataset)
    instance = instance_from(model)
    treedef = jax.tree_util.tree_structure(instance)

    gradient = af.values_by_path(model, jax.jit(jax.grad(analysis.log_likelihood_function))(instance))
    likelihood = jax.jit(lambda vector: analysis.log_likelihood_function(jax.tree_util.tree_unflatten(treedef, list(vector))))
    vector = np.array(jax.tree_util.tree_leaves(instance), dtype=float)

    assert len(gradient) == len(NEAR_TRUTH) and "galaxies.lens.mass.einstein_radius" in gradient
    for index, name in enumerate(gradient):  # by name, in the order of the leaves
        for step, order in ((1e-6, 2), (1e-5, 4), (1e-4, 4)):
            difference = central_difference(likelihood, vector, index, step, order)
            assert difference == pytest.approx(float(gradient[name]), rel=1e-4), (name, step, order)


def test_an_image_vanishing_at_the_caustic_gives_a_finite_jump_in_likelihood_and_gradient(dataset, model):
    """
    The source moves along x across the caustic (4 images, then 2), and then far out,
    where the model has no image inside the solver's region (the likelihood of
    observed positions with no image to pair with, `no_image_residual` away).
    """
    eager, analysis = analyses(al.FitPositionsImagePairAll, dataset)
    name = "galaxies.source.point_0.centre.centre_1"
    xs = [0.029, 0.1, 0.12, 0.14, 0.16, 5.0]
    instances = [instance_from(model, **{name: x}) for x in xs]
    batch = jax.tree.map(lambda *leaves: jnp.stack(leaves), *instances)

    def images_likelihood_gradient(instance):
        fit = analysis.fit_from(instance)
        images = jnp.isfinite(fit.positions.model_data.array).all(axis=1).sum()
        return images, fit.log_likelihood, jax.grad(analysis.log_likelihood_function)(instance)

    images, likelihoods, gradients = jax.jit(jax.vmap(images_likelihood_gradient))(batch)
    eager_images = [np.isfinite(eager.fit_from(i).positions.model_data.array).all(axis=1).sum() for i in instances]

    assert list(np.asarray(images)) == eager_images
    assert eager_images[0] == 4 and 2 in eager_images and eager_images[-1] == 0
    np.testing.assert_allclose(
        np.asarray(likelihoods), [eager.log_likelihood_function(i) for i in instances], rtol=1e-8
    )
    assert np.isfinite(np.asarray(likelihoods)).all()
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(gradients))

    # The jump: the likelihood falls where an image pair vanishes.
    vanished = eager_images.index(2)
    assert likelihoods[vanished] < likelihoods[vanished - 1]
    # With no image at all, moving the source changes nothing (the fluxes are fitted at
    # the observed positions, so the lens still moves the likelihood).
    no_image = af.values_by_path(model, jax.tree.map(lambda leaf: leaf[-1], gradients))
    assert no_image["galaxies.source.point_0.centre.centre_1"] == 0.0
    assert no_image["galaxies.lens.mass.einstein_radius"] != 0.0


def test_a_fit_from_jit_converts_and_plots_as_the_eager_fit(dataset, model, tmp_path):
    """NumPy takes the model positions and residuals (JAX arrays) and `subplot_fit_point` renders."""
    import matplotlib

    matplotlib.use("Agg")
    import autolens.plot as aplt

    eager, analysis = analyses(al.FitPositionsImagePairRepeat, dataset)
    instance = instance_from(model)
    fit, expected = jax.jit(analysis.fit_from)(instance), eager.fit_from(instance)

    for name in ("model_data", "residual_map", "chi_squared_map"):
        converted = np.asarray(getattr(fit.positions, name))
        assert type(converted) is np.ndarray, name
        np.testing.assert_allclose(converted, np.asarray(getattr(expected.positions, name)), rtol=1e-8, atol=1e-12)

    aplt.subplot_fit_point(fit, output_path=str(tmp_path), output_format="png")
    assert [path.suffix for path in tmp_path.iterdir()] == [".png"]


def test_jit_of_fit_from_returns_the_eager_fit_with_one_compile_per_model(dataset, model):
    eager, analysis = analyses(al.FitPositionsImagePairRepeat, dataset)
    traces = []

    def fit_from(instance):
        traces.append(instance)  # runs when jit traces, not when it calls
        return analysis.fit_from(instance)

    jitted = jax.jit(fit_from)
    instances = [instance_from(model), instance_from(model, **{"galaxies.lens.mass.einstein_radius": 1.203})]
    fits = [jitted(instance) for instance in instances]

    assert len(traces) == 1 and jitted._cache_size() == 1
    for fit, instance in zip(fits, instances):
        expected = eager.fit_from(instance)
        assert type(fit) is al.FitPointDataset and type(fit.positions) is al.FitPositionsImagePairRepeat
        # Computed by the compiled program and held by the fit.
        assert isinstance(vars(fit)["log_likelihood"], jax.Array)
        assert isinstance(vars(fit.positions)["model_positions"], jax.Array)
        assert float(fit.log_likelihood) == pytest.approx(expected.log_likelihood, rel=1e-8)
        np.testing.assert_allclose(
            np.asarray(fit.positions.model_data.array), expected.positions.model_data.array, rtol=0, atol=1e-12
        )
        for name in ("residual_map", "chi_squared_map"):
            np.testing.assert_allclose(
                np.asarray(getattr(fit.positions, name).array), getattr(expected.positions, name).array, rtol=1e-8
            )
        for part in ("positions", "flux"):
            assert float(getattr(fit, part).chi_squared) == pytest.approx(getattr(expected, part).chi_squared, rel=1e-8)
        assert fit.tracer.galaxies[0].mass.einstein_radius == instance.galaxies.lens.mass.einstein_radius

        # The model positions are the 4 images, solutions of the lens equation.
        positions = expected.positions.model_data.array
        images = positions[np.isfinite(positions).all(axis=1)]
        traced = expected.tracer.traced_grid_2d_list_from(grid=al.Grid2DIrregular(images))[-1]
        assert len(images) == 4
        np.testing.assert_allclose(
            np.asarray(traced), np.tile(instance.galaxies.source.point_0.centre, (4, 1)), rtol=0, atol=1e-13
        )


class CountingSolver(al.m.MockPointSolver):
    def __init__(self, model_positions):
        super().__init__(model_positions=model_positions)
        self.calls = 0

    def solve(self, *args, **kwargs):
        self.calls += 1
        return super().solve(*args, **kwargs)


def test_a_fit_solves_for_its_model_positions_once(dataset):
    solver = CountingSolver(model_positions=dataset.positions)
    fit = al.FitPointDataset(
        dataset=dataset,
        tracer=point_tracer(),
        solver=solver,
        fit_positions_cls=al.FitPositionsImagePairAll,
    )

    fit.log_likelihood
    fit.positions.model_data

    assert solver.calls == 1


def test_first_call_in_a_fresh_interpreter_equals_the_eager_likelihood():
    completed = subprocess.run(
        [sys.executable, __file__],
        cwd=Path(__file__).parent,
        env={**os.environ, "JAX_ENABLE_X64": "True"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])

    for name in ("FitPositionsSource", "FitPositionsImagePairAll"):
        jitted, eager = report[name]
        assert jitted == pytest.approx(eager, rel=1e-8), name


if __name__ == "__main__":
    # The first JAX call of this interpreter is the jitted likelihood of an instance.
    dataset, model = point_dataset(), point_model()
    instance = instance_from(model)
    report = {}
    for fit_positions_cls in (al.FitPositionsSource, al.FitPositionsImagePairAll):
        eager, analysis = analyses(fit_positions_cls, dataset)
        jitted = float(jax.jit(analysis.log_likelihood_function)(instance))
        report[fit_positions_cls.__name__] = (jitted, eager.log_likelihood_function(instance))
    print(json.dumps(report))
