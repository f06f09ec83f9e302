"""
`jax.jit(analysis.fit_from)(instance)` returns the fit: a `FitImaging` or a
`FitInterferometer` whose tracer holds the instance's parameters as JAX arrays, and
whose model data, residuals, chi-squared map and likelihood are the eager fit's,
computed by the compiled program and stored on the fit: reading them computes nothing.
Like an eager fit, its maps convert to NumPy and its subplot renders.

Imaging is the conftest lens fitted by the MGE lens model (linear Gaussians: an
inversion); the interferometer is the same lens seen through a small DFT.
"""
import copy
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import autofit as af
import autolens as al

from conftest import MASK_RADIUS, PIXEL_SCALE, mge_lens_model

MAPS = ("model_data", "residual_map", "normalized_residual_map", "chi_squared_map")
VALUES = ("log_likelihood", "figure_of_merit", "log_evidence")


def _interferometer(true_tracer):
    """The conftest lens seen through 40 random baselines, Fourier transformed by a DFT."""
    mask = al.Mask2D.circular(shape_native=(16, 16), pixel_scales=PIXEL_SCALE, radius=MASK_RADIUS)
    uv_wavelengths = np.random.default_rng(1).uniform(-3.0e5, 3.0e5, size=(40, 2))
    simulator = al.SimulatorInterferometer(
        uv_wavelengths=uv_wavelengths,
        exposure_time=300.0,
        noise_sigma=0.1,
        transformer_class=al.TransformerDFT,
        noise_seed=1,
    )
    dataset = simulator.via_tracer_from(tracer=true_tracer, grid=al.Grid2D.from_mask(mask=mask))
    return al.Interferometer(
        data=dataset.data,
        noise_map=dataset.noise_map,
        uv_wavelengths=uv_wavelengths,
        real_space_mask=mask,
        transformer_class=al.TransformerDFT,
    )


@pytest.fixture(scope="module")
def model():
    return mge_lens_model(total_gaussians=5)


@pytest.fixture(scope="module")
def instances(model):
    """Two instances of the model, away from the prior medians and from each other."""
    medians = np.array(model.physical_values_from_prior_medians)
    return [model.instance_from_vector(list(medians + shift)) for shift in (0.01, 0.02)]


@pytest.fixture(scope="module", params=["imaging", "interferometer"])
def analyses(request, dataset, true_tracer):
    """(the JAX analysis, the NumPy analysis, the fit class) of one dataset."""
    if request.param == "imaging":
        data, cls, fit_cls = dataset, al.AnalysisImaging, al.FitImaging
    else:
        data, cls, fit_cls = _interferometer(true_tracer), al.AnalysisInterferometer, al.FitInterferometer
    return cls(dataset=data, use_jax=True), cls(dataset=data, use_jax=False), fit_cls


def _assert_fits_equal(fit, eager):
    for name in MAPS:
        assert type(getattr(fit, name)) is type(getattr(eager, name)), name
        np.testing.assert_allclose(
            np.asarray(getattr(fit, name).array),
            np.asarray(getattr(eager, name).array),
            rtol=1e-8,
            atol=1e-8,
            err_msg=name,
        )
    for name in VALUES:
        np.testing.assert_allclose(
            float(getattr(fit, name)), float(getattr(eager, name)), rtol=1e-8, err_msg=name
        )


def test__jit_fit_from__returns_the_eager_fit(analyses, instances):
    analysis, eager_analysis, fit_cls = analyses
    instance = instances[0]

    fit = jax.jit(analysis.fit_from)(instance)

    assert type(fit) is fit_cls
    assert fit.dataset is analysis.dataset  # static: the analysis's own dataset

    # The tracer is the instance's, its leaves the instance's parameters as JAX arrays.
    tracer = analysis.tracer_via_instance_from(instance=instance)
    leaves, treedef = jax.tree_util.tree_flatten(fit.tracer)
    assert treedef == jax.tree_util.tree_structure(tracer)
    assert all(isinstance(leaf, jax.Array) for leaf in leaves)
    np.testing.assert_array_equal(leaves, jax.tree_util.tree_leaves(instance))

    # One tracer, under both its names; its leaves once, beside the computed quantities.
    assert fit.tracer is fit.model_obj
    dataset_model_leaves = jax.tree_util.tree_leaves(fit.dataset_model)
    assert len(jax.tree_util.tree_leaves(fit)) == (
        len(leaves) + len(dataset_model_leaves) + len(MAPS) + len(VALUES)
    )

    eager = eager_analysis.fit_from(instance)
    assert eager.inversion is not None  # the linear Gaussians: log_evidence is the inversion's
    _assert_fits_equal(fit, eager)


def test__jit_fit_from__returns_the_quantities_computed(analyses, instances):
    """
    The maps and values are the arrays the compiled program returned, stored on the fit:
    read with its tracer and dataset model taken away, they are still there, so reading
    them computes nothing from the parameters (before, each read ran the fit again, op
    by op).
    """
    analysis, _, _ = analyses
    fit = jax.jit(analysis.fit_from)(instances[0])

    stored = copy.copy(fit)
    for name in ("tracer", "model_obj", "dataset_model"):
        setattr(stored, name, None)

    for name in MAPS + VALUES:
        value = getattr(stored, name)
        array = value.array if name in MAPS else value
        assert isinstance(array, jax.Array) and not isinstance(array, jax.core.Tracer), name
        assert getattr(fit, name) is vars(fit)[name], name
    assert np.shape(fit.model_data.array) == np.shape(analysis.dataset.data.array)
    if isinstance(fit, al.FitImaging):
        mask = fit.model_data.mask
        assert type(mask) is al.Mask2D and not isinstance(mask.array, jax.Array)
        np.testing.assert_array_equal(mask, analysis.dataset.data.mask)
        assert mask.pixel_scales == analysis.dataset.data.mask.pixel_scales


def test__jit_fit_from__converts_and_plots_as_the_eager_fit(analyses, instances, tmp_path):
    """NumPy takes the fit's maps (they hold JAX arrays) and the fit's subplot renders."""
    import matplotlib

    matplotlib.use("Agg")
    import autolens.plot as aplt

    analysis, eager_analysis, fit_cls = analyses
    fit = jax.jit(analysis.fit_from)(instances[0])
    eager = eager_analysis.fit_from(instances[0])

    for name in MAPS:
        converted = np.asarray(getattr(fit, name))
        assert type(converted) is np.ndarray, name
        np.testing.assert_allclose(converted, np.asarray(getattr(eager, name)), rtol=1e-8, atol=1e-8, err_msg=name)

    subplot = aplt.subplot_fit_imaging if fit_cls is al.FitImaging else aplt.subplot_fit_interferometer
    subplot(fit, output_path=str(tmp_path), output_format="png")
    assert [path.name for path in tmp_path.iterdir()] == ["fit.png"]


def test__jit_fit_from__compiles_once_per_model(analyses, instances):
    analysis, eager_analysis, _ = analyses
    traces = []

    def fit_from(instance):
        traces.append(instance)  # runs once per trace
        return analysis.fit_from(instance)

    jitted = jax.jit(fit_from)
    fits = [jitted(instance) for instance in instances]

    assert len(traces) == 1
    assert jitted._cache_size() == 1
    assert all(fit.tracer is fit.model_obj for fit in fits)
    for fit, instance in zip(fits, instances):
        _assert_fits_equal(fit, eager_analysis.fit_from(instance))
    assert float(fits[0].log_likelihood) != float(fits[1].log_likelihood)


def test__jit_fit_from__pixelized_source(dataset):
    """A rectangular mesh with constant regularization: the figure of merit is the log evidence."""
    model = af.Collection(
        galaxies=af.Collection(
            lens=af.Model(al.Galaxy, redshift=0.5, mass=al.mp.Isothermal(einstein_radius=1.2)),
            source=af.Model(
                al.Galaxy,
                redshift=1.0,
                pixelization=al.Pixelization(
                    mesh=al.mesh.RectangularUniform(shape=(8, 8)),
                    regularization=al.reg.Constant(),
                ),
            ),
        )
    )
    instance = model.instance_from_prior_medians()
    analysis = al.AnalysisImaging(dataset=dataset, use_jax=True)

    fit = jax.jit(analysis.fit_from)(instance)
    eager = al.AnalysisImaging(dataset=dataset).fit_from(instance)

    assert eager.log_evidence != eager.log_likelihood
    _assert_fits_equal(fit, eager)


def test__autogalaxy_fit__is_a_pytree_returned_by_jit(dataset, instances):
    """
    As upstream's own check asks (its fit, dataset model and galaxies registered), for
    PyAutoGalaxy's `AnalysisImaging`: the returned `FitImaging` holds `Galaxies` and a
    `DatasetModel` as pytree nodes, and equals the eager fit.
    """
    import autogalaxy as ag

    analysis = ag.AnalysisImaging(dataset=dataset, use_jax=True)
    fit = jax.jit(analysis.fit_from)(instances[0])

    assert type(fit) is ag.FitImaging
    assert fit.galaxies is fit.model_obj
    for node in (fit, fit.galaxies, fit.dataset_model):
        assert not jax.tree_util.all_leaves([node])
    _assert_fits_equal(fit, ag.AnalysisImaging(dataset=dataset).fit_from(instances[0]))


def test__fit_with_cached_values__flattens_without_them(dataset, instances):
    """
    An eager fit whose `inversion` and `galaxy_model_image_dict` were read (cached in its
    `__dict__`: no JAX types, a dict keyed by galaxies) flattens all the same: they are
    not children, and the rebuilt fit computes them again when read.
    """
    fit = al.AnalysisImaging(dataset=dataset).fit_from(instances[0])
    inversion = fit.inversion
    galaxy_model_images = fit.galaxy_model_image_dict

    leaves, treedef = jax.tree_util.tree_flatten(fit)
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)

    assert "inversion" not in vars(rebuilt)
    assert rebuilt.dataset is fit.dataset
    assert rebuilt.tracer is rebuilt.model_obj
    _assert_fits_equal(rebuilt, fit)
    np.testing.assert_allclose(rebuilt.inversion.reconstruction, inversion.reconstruction)
    assert len(rebuilt.galaxy_model_image_dict) == len(galaxy_model_images)


def test__jit_fit_from__is_the_first_jax_call():
    """`jax.jit(analysis.fit_from)(instance)` as the first JAX operation of an interpreter."""
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import autolens as al
from conftest import simulated_dataset, simulated_tracer, mge_lens_model
dataset = simulated_dataset(simulated_tracer())
instance = mge_lens_model(total_gaussians=5).instance_from_prior_medians()
import jax
fit = jax.jit(al.AnalysisImaging(dataset=dataset, use_jax=True).fit_from)(instance)
eager = al.AnalysisImaging(dataset=dataset).fit_from(instance)
assert type(fit) is al.FitImaging, type(fit)
assert fit.tracer is fit.model_obj
assert abs(float(fit.log_likelihood) - eager.log_likelihood) < 1e-8 * abs(eager.log_likelihood)
assert abs(fit.model_data.array - eager.model_data.array).max() < 1e-8
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


def test__fit_classes_are_pytrees_when_defined__before_any_fit_is_built():
    """
    Fits are registered as their classes are defined (`af.pytree_node`), not when a fit
    is first built with JAX: in a fresh interpreter, with no fit built, JAX already
    knows every fit class (registering one again is refused as a duplicate), and an
    eager fit flattens into its tracer's parameters and its computed fields.
    """
    script = """
import autogalaxy as ag
import autolens as al
import jax
for cls in (al.FitImaging, al.FitInterferometer, ag.FitImaging, ag.FitInterferometer, al.FitPointDataset):
    try:
        jax.tree_util.register_pytree_node(cls, lambda fit: ((), None), lambda aux, children: None)
    except ValueError as error:
        assert "Duplicate" in str(error), error
    else:
        raise AssertionError(f"{cls.__name__} was not a pytree node")
grid = al.Grid2D.uniform(shape_native=(20, 20), pixel_scales=0.2)
tracer = al.Tracer(galaxies=[
    al.Galaxy(redshift=0.5, mass=al.mp.Isothermal(einstein_radius=1.0)),
    al.Galaxy(redshift=1.0, light=al.lp.Sersic(intensity=1.0, effective_radius=0.5)),
])
dataset = al.Imaging(
    data=al.Array2D.no_mask(values=tracer.image_2d_from(grid=grid).native, pixel_scales=0.2),
    noise_map=al.Array2D.full(fill_value=0.1, shape_native=(20, 20), pixel_scales=0.2),
    psf=al.Convolver.from_gaussian(shape_native=(3, 3), sigma=0.2, pixel_scales=0.2),
).apply_mask(mask=al.Mask2D.circular(shape_native=(20, 20), pixel_scales=0.2, radius=1.8))
fit = al.FitImaging(dataset=dataset, tracer=tracer)
leaves, treedef = jax.tree_util.tree_flatten_with_path(fit)
names = [jax.tree_util.keystr(path) for path, _ in leaves]
assert ".model_obj.galaxies[0].mass.einstein_radius" in names, names  # the tracer, once
assert ".log_likelihood" in names and not any(name.startswith(".tracer") for name in names), names
rebuilt = jax.tree_util.tree_unflatten(treedef, [leaf for _, leaf in leaves])
assert type(rebuilt) is al.FitImaging and rebuilt.tracer is rebuilt.model_obj
assert rebuilt.log_likelihood == fit.log_likelihood
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
