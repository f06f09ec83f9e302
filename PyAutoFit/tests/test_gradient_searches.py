"""
`af.LBFGS` and `af.BFGS` with an analysis that uses JAX take the exact gradient.

The toy is a 1D Gaussian fitted to noisy data (3 free parameters). With `use_jax=True`
scipy gets one compiled `jax.value_and_grad` of `Fitness.call`: the value is the figure
of merit the search minimised before (its chi-squared of the log posterior), each step
costs about one likelihood execution where finite differences cost one per parameter,
L-BFGS-B keeps inside the priors' limits, and the search reports how many likelihood and
gradient evaluations it made. A NumPy analysis is searched as before (finite differences,
no bounds).

`af.MultiStartAdam` optimises starts drawn from the priors together (`jax.vmap`) and finds
the global maximum of a bimodal likelihood where one start stops on the other mode.
"""
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import autofit as af
from autofit.non_linear.fitness import Fitness
from autofit.non_linear.search.mle.bfgs.search import _ExactGradient

XVALUES = np.linspace(0.0, 100.0, 101)
TRUTH = af.ex.Gaussian(centre=48.0, normalization=25.0, sigma=9.0)
NOISE = np.full(XVALUES.size, 0.5)
DATA = TRUTH.model_data_from(XVALUES) + np.random.default_rng(0).normal(0.0, 0.5, XVALUES.size)


class Analysis(af.Analysis):
    """A Gaussian's chi-squared; under JAX it records every execution and the centre it was given."""

    def __init__(self, use_jax):
        super().__init__(use_jax=use_jax)
        self.centres = []

    def log_likelihood_function(self, instance):
        xp = self._xp
        if xp is jnp:
            jax.debug.callback(lambda centre: self.centres.append(float(centre)), instance.gaussian.centre)
        model_data = instance.gaussian.model_data_from(XVALUES, xp=xp)
        return -0.5 * xp.sum(((DATA - model_data) / NOISE) ** 2)


def gaussian_model(centre_upper=100.0):
    model = af.Collection(gaussian=af.Model(af.ex.Gaussian))
    model.gaussian.centre = af.UniformPrior(lower_limit=0.0, upper_limit=centre_upper)
    model.gaussian.normalization = af.UniformPrior(lower_limit=0.0, upper_limit=100.0)
    model.gaussian.sigma = af.UniformPrior(lower_limit=0.0, upper_limit=30.0)
    return model


@pytest.fixture(autouse=True)
def output_in_tmp(tmp_path, monkeypatch):
    from autoconf import conf

    monkeypatch.setattr(conf.instance, "output_path", str(tmp_path))


def fit(search_cls, use_jax, model=None, name="fit"):
    analysis = Analysis(use_jax=use_jax)
    result = search_cls(name=name).fit(model=model or gaussian_model(), analysis=analysis)
    return result, analysis


def test_lbfgs_with_jax_takes_one_likelihood_execution_per_evaluation_and_reaches_the_numpy_optimum():
    exact, analysis = fit(af.LBFGS, use_jax=True, name="exact")
    numpy, _ = fit(af.LBFGS, use_jax=False, name="numpy")

    info = exact.samples.samples_info
    evaluations = info["likelihood_evaluations"]
    assert info["gradient_evaluations"] == evaluations
    # Every execution of the compiled likelihood is counted: the search's evaluations, and
    # the few the search makes itself (its start point, its final value).
    assert evaluations <= len(analysis.centres) <= evaluations + 5
    # Finite differences: one evaluation per parameter at every point, and more in all.
    assert evaluations < 2 * info["total_iterations"] + 5
    assert numpy.samples.samples_info["likelihood_evaluations"] >= 4 * numpy.samples.samples_info["total_iterations"]
    assert numpy.samples.samples_info["gradient_evaluations"] is None

    assert exact.log_likelihood == pytest.approx(numpy.log_likelihood, abs=1e-6)
    assert exact.instance.gaussian.centre == pytest.approx(numpy.instance.gaussian.centre, rel=1e-5)


def test_bfgs_with_jax_takes_the_exact_gradient_and_no_bounds():
    result, _ = fit(af.BFGS, use_jax=True, name="bfgs")
    assert af.BFGS().bounds_from(gaussian_model()) is None
    assert result.samples.samples_info["gradient_evaluations"] == result.samples.samples_info["likelihood_evaluations"]
    assert result.instance.gaussian.centre == pytest.approx(46.646, abs=1e-2)


def test_the_value_is_the_figure_of_merit_minimised_before_and_the_gradient_is_central_differences():
    model = gaussian_model()
    fitness = Fitness(
        model=model,
        analysis=Analysis(use_jax=True),
        fom_is_log_likelihood=False,
        resample_figure_of_merit=-np.inf,
        convert_to_chi_squared=True,
    )
    objective = _ExactGradient(fitness)
    step = 1.0e-6
    for vector in ([50.0, 50.0, 15.0], [30.0, 10.0, 4.0], [61.0, 80.0, 22.0]):
        vector = np.array(vector)
        value, gradient = objective(vector)
        assert value == pytest.approx(float(fitness._jit(vector)), rel=1e-10)
        assert value == pytest.approx(-2.0 * Analysis(use_jax=False).log_likelihood_function(
            model.instance_from_vector(list(vector))), rel=1e-10)
        central = [
            (float(fitness._jit(vector + step * unit)) - float(fitness._jit(vector - step * unit))) / (2 * step)
            for unit in np.eye(3)
        ]
        np.testing.assert_allclose(gradient, central, rtol=1e-5, atol=1e-5)


def test_lbfgs_keeps_inside_the_priors():
    """The data's centre (48) is beyond the centre prior's upper limit (40): the search stops at the limit."""
    result, analysis = fit(af.LBFGS, use_jax=True, model=gaussian_model(centre_upper=40.0), name="bounded")

    assert max(analysis.centres) <= 40.0
    assert result.instance.gaussian.centre == pytest.approx(40.0, abs=1e-3)
    lower, upper = af.LBFGS().bounds_from(gaussian_model(centre_upper=40.0))[0]
    assert 0.0 < lower < 1e-4 and 40.0 - 1e-4 < upper < 40.0


def test_lbfgs_logs_its_progress_by_name_and_its_summary_counts_evaluations(caplog):
    with caplog.at_level(logging.INFO):
        result, _ = fit(af.LBFGS, use_jax=True, name="progress")

    progress = [record.getMessage() for record in caplog.records if "L-BFGS-B iteration" in record.getMessage()]
    assert progress[0].startswith("L-BFGS-B iteration 1: log likelihood = ")
    assert "gaussian.centre = " in progress[0]

    from autofit.text import text_util

    summary = "".join(text_util.search_summary_from_samples(result.samples))
    assert f"Total Likelihood Evaluations = {result.samples.samples_info['likelihood_evaluations']}" in summary
    assert "Total Gradient Evaluations = " in summary


"""
__Multi-start__

Two peaks in the data (at 25, faint, and at 70, bright) fitted by one Gaussian: the likelihood
has a local maximum at 25 and its global maximum at 70.
"""
TWO_PEAKS = (
    af.ex.Gaussian(centre=25.0, normalization=10.0, sigma=3.0).model_data_from(np.linspace(0.0, 100.0, 201))
    + af.ex.Gaussian(centre=70.0, normalization=25.0, sigma=3.0).model_data_from(np.linspace(0.0, 100.0, 201))
    + np.random.default_rng(0).normal(0.0, 0.05, 201)
)


class TwoPeaks(af.Analysis):
    def log_likelihood_function(self, instance):
        xp = self._xp
        model_data = instance.gaussian.model_data_from(np.linspace(0.0, 100.0, 201), xp=xp)
        return -0.5 * xp.sum(((TWO_PEAKS - model_data) / 0.05) ** 2)


def test_multi_start_adam_finds_the_global_maximum_of_a_bimodal_likelihood():
    from scipy import optimize

    model = gaussian_model()
    result = af.MultiStartAdam(name="two_peaks", starts=16, steps=200).fit(
        model=model, analysis=TwoPeaks(use_jax=True)
    )

    assert result.instance.gaussian.centre == pytest.approx(70.0, abs=0.05)
    assert result.instance.gaussian.normalization == pytest.approx(25.0, abs=0.1)

    # Every start's final point, by the model's names: one stopped on the faint peak.
    finals = result.samples.sample_list
    assert len(finals) == 16
    centres = [sample.kwargs[("gaussian", "centre")] for sample in finals]
    assert any(abs(centre - 25.0) < 1.0 for centre in centres)

    # That peak is a local maximum: L-BFGS-B with the exact gradient started there stays.
    fitness = Fitness(
        model=model, analysis=TwoPeaks(use_jax=True), fom_is_log_likelihood=False,
        resample_figure_of_merit=-np.inf, convert_to_chi_squared=True,
    )
    local = optimize.minimize(
        _ExactGradient(fitness), [25.0, 10.0, 3.0], jac=True, method="L-BFGS-B", bounds=af.LBFGS().bounds_from(model)
    )
    assert local.x[0] == pytest.approx(25.0, abs=0.5)
    assert result.log_likelihood > -0.5 * local.fun + 1000.0


def test_multi_start_adam_refuses_an_analysis_without_jax():
    with pytest.raises(ValueError, match="use_jax=True"):
        af.MultiStartAdam(name="numpy").fit(model=gaussian_model(), analysis=TwoPeaks(use_jax=False))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_sweep_moves_a_start_across_its_priors_to_the_best_grid_point(seed):
    """
    The global step before the gradient: each parameter in turn moved to the best of
    `sweep_points` values across its prior, the others held. With no Adam step and no
    refinement, the start drawn from the priors ends on the grid point nearest the
    bright peak (grid spacing 2.5 in the centre), and the evaluations are counted.
    """
    result = af.MultiStartAdam(
        name=f"swept_{seed}", starts=1, steps=0, sweeps=2, sweep_points=41, polish=0, seed=seed
    ).fit(model=gaussian_model(), analysis=TwoPeaks(use_jax=True))

    swept = result.instance.gaussian
    assert swept.centre == pytest.approx(70.0, abs=1.25)
    assert np.min(np.abs(np.linspace(0.0, 100.0, 41) - swept.centre)) < 1e-3  # a grid point (bounds 1e-6 inside)
    assert result.samples.samples_info["likelihood_evaluations"] == 2 * 3 * 42
