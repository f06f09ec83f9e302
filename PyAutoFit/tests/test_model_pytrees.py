"""
Models, Collections and priors as JAX pytrees (the PyAutoFit series).

A prior is a pytree whose leaves are its hyperparameters; a model's leaves are those of
its distinct priors in vector order. Ids, labels, classes, structure and constants are
static. No registration call is needed.
"""
import copy
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import autofit as af
import jax
import jax.numpy as jnp
from jax.tree_util import tree_flatten, tree_flatten_with_path, tree_map, tree_unflatten

HYPERPARAMETERS = {
    af.UniformPrior: ("lower_limit", "upper_limit"),
    af.LogUniformPrior: ("lower_limit", "upper_limit"),
    af.GaussianPrior: ("mean", "sigma"),
    af.LogGaussianPrior: ("mean", "sigma"),
    af.TruncatedGaussianPrior: ("mean", "sigma", "lower_limit", "upper_limit"),
}


def make_priors():
    return [
        af.UniformPrior(lower_limit=1.0, upper_limit=3.0),
        af.LogUniformPrior(lower_limit=1e-3, upper_limit=10.0),
        af.GaussianPrior(mean=1.0, sigma=2.0),
        af.LogGaussianPrior(mean=0.5, sigma=1.5),
        af.TruncatedGaussianPrior(mean=1.0, sigma=2.0, lower_limit=0.0, upper_limit=3.0),
    ]


# Model shapes ---------------------------------------------------------------------


def gaussian():
    return af.Model(af.ex.Gaussian)


def shared_prior():
    model = af.Collection(a=af.Model(af.ex.Gaussian), b=af.Model(af.ex.Gaussian))
    model.b.centre = model.a.centre
    return model


def linked():
    model = af.Model(af.ex.Gaussian)
    model.sigma = 2 * model.centre
    return model


def with_constants():
    return af.Model(af.ex.Gaussian, centre=1.5, normalization=af.GaussianPrior(3.0, 1.0))


def tuple_priors():
    from autofit.example.model import PhysicalNFW

    model = af.Model(PhysicalNFW)
    model.centre.centre_0 = af.GaussianPrior(mean=0.0, sigma=1.0)
    model.centre.centre_1 = af.GaussianPrior(mean=0.5, sigma=1.0)
    model.ell_comps.ell_comps_0 = 0.1  # a constant in a tuple prior
    model.ell_comps.ell_comps_1 = af.UniformPrior(-1.0, 1.0)
    model.log10m = af.UniformPrior(10.0, 12.0)
    model.concentration = af.LogUniformPrior(1.0, 10.0)
    return model


def nested():
    return af.Collection(
        outer=af.Collection(inner=af.Model(af.ex.Gaussian)),
        profiles=[af.Model(af.ex.Gaussian), af.Model(af.ex.Exponential)],
    )


def only_sub_models():
    return af.Collection(outer=af.Collection(inner=af.Model(af.ex.Gaussian)))


def array():
    return af.Array(shape=(2, 2), prior=af.GaussianPrior(mean=0.0, sigma=1.0))


def with_assertion():
    model = af.Model(af.ex.Gaussian)
    model.add_assertion(model.centre > model.sigma)
    return model


def zero_parameters():
    return af.Model(af.ex.Gaussian, centre=1.0, normalization=2.0, sigma=3.0)


def empty_collection():
    return af.Collection()


SHAPES = [
    gaussian, shared_prior, linked, with_constants, tuple_priors, nested,
    only_sub_models, array, with_assertion, zero_parameters, empty_collection,
]


def instance_tree(instance):
    """An instance as (treedef, leaves): equal for equal instances."""
    leaves, treedef = tree_flatten(instance)
    return treedef, [np.asarray(leaf) for leaf in leaves]


def assert_same_instance(a, b):
    (treedef_a, leaves_a), (treedef_b, leaves_b) = instance_tree(a), instance_tree(b)
    assert treedef_a == treedef_b
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_allclose(x, y)


# 1. Priors ------------------------------------------------------------------------


@pytest.mark.parametrize("prior", make_priors(), ids=lambda p: type(p).__name__)
def test_the_leaves_of_a_prior_are_its_hyperparameters_not_its_id(prior):
    leaves, treedef = tree_flatten(prior)
    names = HYPERPARAMETERS[type(prior)]

    assert leaves == [getattr(prior, name) for name in names]
    assert [jax.tree_util.keystr(path) for path, _ in tree_flatten_with_path(prior)[0]] == [
        f".{name}" for name in names
    ]
    new = tree_unflatten(treedef, leaves)

    assert type(new) is type(prior)
    assert new == prior and new.id == prior.id
    assert new is not prior
    for name in names:
        assert getattr(new, name) == getattr(prior, name)
    assert new.value_for(0.3) == pytest.approx(prior.value_for(0.3))
    assert str(new) == str(prior)


@pytest.mark.parametrize("prior", make_priors(), ids=lambda p: type(p).__name__)
def test_tree_map_over_a_prior_maps_its_hyperparameters_and_keeps_its_id(prior):
    doubled = tree_map(lambda x: 2 * x, prior)

    assert doubled.id == prior.id
    for name in HYPERPARAMETERS[type(prior)]:
        assert getattr(doubled, name) == 2 * getattr(prior, name)
    expected = type(prior)(
        **{name: 2 * getattr(prior, name) for name in HYPERPARAMETERS[type(prior)]}
    )
    assert doubled.value_for(0.3) == pytest.approx(expected.value_for(0.3))


def test_a_prior_keeps_a_message_set_after_unflatten():
    prior = tree_map(lambda x: x, af.GaussianPrior(mean=1.0, sigma=2.0))
    other = af.GaussianPrior(mean=5.0, sigma=1.0)

    moved = prior.with_message(other.message)

    assert moved.mean == 5.0 and moved.id == prior.id
    assert prior.mean == 1.0


# 2. Round trips over model shapes -------------------------------------------------


@pytest.mark.parametrize("make", SHAPES, ids=lambda f: f.__name__)
def test_a_model_round_trips(make):
    model = make()
    leaves, treedef = tree_flatten(model)
    new = tree_unflatten(treedef, leaves)

    assert type(new) is type(model) and new is not model
    per_prior = [len(HYPERPARAMETERS[type(t.prior)]) for t in model.prior_tuples_ordered_by_id]
    assert len(leaves) == sum(per_prior)
    assert new.prior_count == model.prior_count
    assert [p.id for p in new.priors_ordered_by_id] == [p.id for p in model.priors_ordered_by_id]
    assert new.paths == model.paths
    assert new.joined_paths == model.joined_paths
    assert new.info == model.info
    assert [t.name for t in new.instance_tuples] == [t.name for t in model.instance_tuples]
    assert [t.value for t in new.instance_tuples] == [t.value for t in model.instance_tuples]
    rng = np.random.default_rng(0)
    for _ in range(3):
        unit = rng.uniform(0.05, 0.45, model.prior_count)
        vector = model.vector_from_unit_vector(list(unit))
        try:
            expected = model.instance_from_vector(vector)
        except af.exc.FitException:  # an assertion: the new model asserts it too
            with pytest.raises(af.exc.FitException):
                new.instance_from_vector(vector)
            continue
        assert_same_instance(new.instance_from_vector(vector), expected)
    # The new model's priors are new objects: the old ones are not touched.
    for old, renewed in zip(model.priors_ordered_by_id, new.priors_ordered_by_id):
        assert old is not renewed


@pytest.mark.parametrize("make", SHAPES, ids=lambda f: f.__name__)
def test_the_leaves_of_a_model_are_its_priors_hyperparameters_in_vector_order(make):
    model = make()

    expected = [
        getattr(t.prior, name)
        for t in model.prior_tuples_ordered_by_id
        for name in HYPERPARAMETERS[type(t.prior)]
    ]
    assert jax.tree_util.tree_leaves(model) == expected


@pytest.mark.parametrize("make", SHAPES, ids=lambda f: f.__name__)
def test_the_leaves_are_named_by_autofits_own_paths(make):
    """`<joined path>.<hyperparameter>`: a shared prior has the one name autofit gives it."""
    model = make()

    paths = [jax.tree_util.keystr(path)[1:] for path, _ in tree_flatten_with_path(model)[0]]

    expected = [
        f"{name}.{hyperparameter}"
        for name, prior in zip(model.joined_paths, model.priors_ordered_by_id)
        for hyperparameter in HYPERPARAMETERS[type(prior)]
    ]
    assert paths == expected


def test_a_shared_prior_is_one_prior_after_unflatten():
    model = shared_prior()
    new = tree_map(lambda x: x, model)

    assert new.a.centre is new.b.centre
    assert new.a.centre is not model.a.centre
    assert new.prior_count == model.prior_count == 5


def test_a_linked_prior_points_to_the_unflattened_prior():
    model = linked()
    new = tree_map(lambda x: 2 * x, model)

    assert new.sigma is not model.sigma
    assert new.sigma.right is new.centre or new.sigma.left is new.centre
    assert new.centre.upper_limit == 2 * model.centre.upper_limit
    instance = new.instance_from_vector([10.0, 1.0])
    assert instance.sigma == 20.0


def test_an_assertion_follows_the_unflattened_priors():
    model = with_assertion()
    new = tree_map(lambda x: x, model)

    assert new.assertions[0] is not model.assertions[0]
    with pytest.raises(af.exc.FitException):
        new.instance_from_vector([1.0, 1.0, 5.0])
    new.instance_from_vector([5.0, 1.0, 1.0])


def test_tuple_priors_round_trip():
    model = tuple_priors()
    new = tree_map(lambda x: x, model)

    assert type(new.centre) is type(model.centre)
    assert new.centre is not model.centre
    assert new.centre.centre_0.id == model.centre.centre_0.id
    instance = new.instance_from_prior_medians()
    assert instance.centre == model.instance_from_prior_medians().centre


def test_constants_are_static_and_kept():
    model = with_constants()
    leaves, treedef = tree_flatten(model)

    assert len(leaves) == 4  # two priors of two hyperparameters
    assert tree_unflatten(treedef, leaves).centre == 1.5
    other = af.Model(af.ex.Gaussian, centre=2.5, normalization=af.GaussianPrior(3.0, 1.0))
    assert jax.tree_util.tree_structure(other) != treedef


def test_unflatten_runs_no_constructor():
    model = nested()
    treedef = jax.tree_util.tree_structure(model)
    # A UniformPrior's constructor refuses object() (float(object())): JAX unflattens
    # such placeholders.
    for placeholder in (None, object()):
        new = tree_unflatten(treedef, [placeholder] * treedef.num_leaves)
        assert new.prior_count == model.prior_count
        assert new.outer.inner.centre.lower_limit is placeholder
        copy.deepcopy(new)


def test_copies_and_pickles_of_an_unflattened_model_work():
    model = nested()
    new = tree_map(lambda x: x, model)

    for again in (copy.deepcopy(new), pickle.loads(pickle.dumps(new))):
        assert again.info == model.info
        assert_same_instance(
            again.instance_from_prior_medians(), model.instance_from_prior_medians()
        )


def test_a_model_still_copies_and_pickles_as_before():
    model = nested()

    for again in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert again.info == model.info
        assert jax.tree_util.tree_structure(again) == jax.tree_util.tree_structure(model)


# 3. tree_map, jit, grad -----------------------------------------------------------


def test_tree_map_doubles_every_mean():
    model = af.Collection(
        g=af.Model(
            af.ex.Gaussian,
            centre=af.GaussianPrior(mean=1.0, sigma=1.0),
            normalization=af.GaussianPrior(mean=2.0, sigma=1.0),
            sigma=af.GaussianPrior(mean=3.0, sigma=1.0),
        )
    )
    paths = [jax.tree_util.keystr(path) for path, _ in tree_flatten_with_path(model)[0]]
    assert paths[:2] == [".g.centre.mean", ".g.centre.sigma"]

    doubled = jax.tree_util.tree_map_with_path(
        lambda path, x: 2 * x if path[-1].name.endswith(".mean") else x, model
    )

    assert [p.mean for p in doubled.priors_ordered_by_id] == [2.0, 4.0, 6.0]
    assert [p.sigma for p in doubled.priors_ordered_by_id] == [1.0, 1.0, 1.0]
    assert [p.id for p in doubled.priors_ordered_by_id] == [
        p.id for p in model.priors_ordered_by_id
    ]
    assert doubled.instance_from_prior_medians().g.centre == pytest.approx(2.0)


@pytest.mark.parametrize("make", SHAPES, ids=lambda f: f.__name__)
def test_a_model_crosses_jit(make):
    model = make()

    out = jax.jit(lambda m: m)(model)

    assert type(out) is type(model)
    assert out.info == model.info
    assert [p.id for p in out.priors_ordered_by_id] == [p.id for p in model.priors_ordered_by_id]


def test_a_jitted_function_reads_prior_hyperparameters():
    model = gaussian()

    width = jax.jit(lambda m: m.centre.upper_limit - m.centre.lower_limit)(model)

    assert width == 100.0


def test_grad_with_respect_to_hyperparameters_is_a_model():
    model = af.Model(
        af.ex.Gaussian,
        centre=af.GaussianPrior(mean=1.0, sigma=2.0),
        normalization=af.GaussianPrior(mean=3.0, sigma=1.0),
        sigma=1.0,
    )

    grad = jax.grad(lambda m: m.centre.mean ** 2 + m.normalization.sigma * m.centre.sigma)(model)

    assert isinstance(grad, af.Model)
    assert grad.centre.mean == 2.0
    assert grad.centre.sigma == 1.0
    assert grad.normalization.sigma == 2.0


def test_two_builds_of_the_same_code_share_one_treedef_and_one_compile():
    traces = []

    @jax.jit
    def f(m):
        traces.append(1)
        return sum(jax.tree_util.tree_leaves(m))

    for make in (nested, linked, shared_prior, tuple_priors, array):
        first, second = make(), make()
        treedef = jax.tree_util.tree_structure(first)
        assert treedef == jax.tree_util.tree_structure(second)
        assert hash(treedef) == hash(jax.tree_util.tree_structure(second))
        traces.clear()
        f(first)
        f(second)
        assert len(traces) == 1, make.__name__


def test_a_prior_of_another_value_is_the_same_treedef_a_different_class_is_not():
    assert jax.tree_util.tree_structure(af.UniformPrior(0.0, 1.0)) == jax.tree_util.tree_structure(
        af.UniformPrior(2.0, 3.0)
    )
    assert jax.tree_util.tree_structure(af.UniformPrior(0.0, 1.0)) != jax.tree_util.tree_structure(
        af.LogUniformPrior(0.1, 1.0)
    )


# 4. A model where an instance belongs ---------------------------------------------


class SmallAnalysis(af.Analysis):
    def log_likelihood_function(self, instance):
        return -instance.centre ** 2


@pytest.mark.parametrize(
    "analysis",
    [af.ex.Analysis(data=np.ones(5), noise_map=np.ones(5)), SmallAnalysis()],
    ids=["af.ex.Analysis", "SmallAnalysis"],
)
def test_a_model_given_to_a_likelihood_is_one_short_error(analysis):
    model = af.Model(af.ex.Gaussian)

    for call in (jax.jit(analysis.log_likelihood_function), analysis.log_likelihood_function):
        with pytest.raises(af.PytreeError) as info:
            call(model)
        message = str(info.value)
        assert isinstance(info.value, TypeError)
        assert "instance_from_prior_medians" in message and "instance_from_vector" in message
        assert len(message) < 400
    with pytest.raises(af.PytreeError):
        analysis.log_likelihood_function(instance=af.Collection(g=model))


def test_a_likelihood_still_takes_an_instance():
    analysis = SmallAnalysis()
    instance = af.Model(af.ex.Gaussian).instance_from_vector([2.0, 1.0, 1.0])

    assert jax.jit(analysis.log_likelihood_function)(instance) == -4.0
    assert analysis.log_likelihood_function(instance=instance) == -4.0


# 5. No registration call ----------------------------------------------------------


def test_models_are_pytrees_in_a_fresh_interpreter_without_importing_jax_first():
    code = textwrap.dedent(
        """
        import sys
        import autofit as af
        model = af.Collection(g=af.Model(af.ex.Gaussian))
        prior = af.GaussianPrior(mean=1.0, sigma=2.0)
        assert "jax" not in sys.modules
        import jax
        assert len(jax.tree_util.tree_leaves(model)) == 6
        assert jax.tree_util.tree_leaves(prior) == [1.0, 2.0]
        print(jax.jit(lambda m: m.g.centre.upper_limit)(model))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("100.0")
