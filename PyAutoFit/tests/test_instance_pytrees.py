"""
Model instances as JAX pytrees (the PyAutoFit series).

An instance a model built is a pytree whose leaves are the model's free parameters.
Each test asserts one behaviour a user relies on, the way JAX itself and its clients
(optax, equinox) use a pytree.
"""
import copy
import dataclasses
import gc
import pickle
import subprocess
import sys
import textwrap
import threading
import weakref

import numpy as np
import pytest

import autofit as af
from autoconf import cached_property
import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from jax.tree_util import keystr, tree_flatten, tree_flatten_with_path, tree_unflatten

from autofit import pytree
from autofit.pytree import origins


# Classes a user might write --------------------------------------------------


class WithDerived:
    """A constructor that derives an attribute from its parameters."""

    def __init__(self, a=1.0, scale=2.0):
        self.a = a
        self.scale = scale
        self.b = scale * a


class Validating:
    """A constructor that refuses values a cotangent or optimiser zero may take."""

    calls = 0

    def __init__(self, centre=0.0, sigma=1.0):
        Validating.calls += 1
        if not sigma > 0:
            raise ValueError("sigma must be positive")
        self.centre = centre
        self.sigma = sigma


class Renamed:
    """Parameters stored under other names: a plain one and one behind a property."""

    def __init__(self, r=2.0, b=3.0):
        self.radius = r
        self._b = b

    @property
    def b(self):
        return self._b


class Shadowed:
    """A parameter kept in __dict__ under the name of a property that reads it scaled."""

    def __init__(self, a=1.0):
        self.__dict__["a"] = a

    @property
    def a(self):
        return self.__dict__["a"] * 10.0


class Slotted:
    __slots__ = ("x", "y", "__weakref__")

    def __init__(self, x=1.0, y=2.0):
        self.x = x
        self.y = y


@dataclasses.dataclass(slots=True)
class SlottedData:
    x: float = 1.0
    y: float = 2.0


class Pair:
    def __init__(self, one=None, two=None):
        self.one = one
        self.two = two


class Identified(af.ModelObject):
    """An object with an identity field (`id`), as galaxies have."""

    def __init__(self, x=1.0):
        super().__init__()
        self.x = x


def gaussian_model():
    return af.Model(af.ex.Gaussian)


def shared_centre_model():
    """Two Gaussians sharing one centre prior: 5 free parameters, 6 attributes."""
    first = af.Model(af.ex.Gaussian)
    second = af.Model(af.ex.Gaussian)
    second.centre = first.centre
    return af.Collection(first=first, second=second)


def tuple_model():
    """Tuple priors, shared by two objects (the MGE basis shares centres this way)."""
    one = af.Model(af.ex.Gaussian)
    model = af.Collection(
        a=af.Model(Pair, one=af.Model(af.ex.Gaussian), two=af.Model(af.ex.Gaussian)),
    )
    model.a.two.centre = model.a.one.centre
    del one
    return model


def vector_of(model, unit=0.4):
    return np.array(model.vector_from_unit_vector([unit] * model.prior_count))


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]  # autofit may log to stdout first


# 1. The leaves are the model's free parameters ----------------------------------


def test_leaves_are_the_free_parameters_in_vector_order_named_as_autofit_names_them():
    model = shared_centre_model()
    instance = model.instance_from_vector(vector_of(model))

    named = tree_flatten_with_path(instance)[0]

    assert len(named) == model.prior_count == 5
    assert [keystr(path) for path, _ in named] == ["." + name for name in model.joined_paths]
    # The shared centre has the one name autofit gives it (model.info, results, samples).
    assert [keystr(path) for path, _ in named].count(".second.centre") == 1


def test_ravel_pytree_gives_back_the_vector_the_instance_was_made_from():
    model = shared_centre_model()
    vector = vector_of(model)

    flat, _ = ravel_pytree(model.instance_from_vector(vector))

    np.testing.assert_array_equal(flat, vector)


def test_unflattening_a_vector_is_instance_from_vector_eagerly_and_in_a_trace():
    model = shared_centre_model()
    treedef = jax.tree_util.tree_structure(model.instance_from_prior_medians())
    vector = vector_of(model, 0.3)

    eager = tree_unflatten(treedef, list(vector))
    assert eager == model.instance_from_vector(vector)
    assert eager.second.centre is eager.first.centre

    @jax.jit
    def from_vector(v):  # a search hands over its vector; named objects inside
        instance = tree_unflatten(treedef, list(v))
        return instance.second.centre + 10 * instance.first.sigma

    expected = vector[0] + 10 * model.instance_from_vector(vector).first.sigma
    assert from_vector(jnp.asarray(vector)) == pytest.approx(expected)


def test_copies_of_a_shared_prior_are_one_value_under_jit_vmap_and_grad():
    model = shared_centre_model()
    instance = model.instance_from_prior_medians()

    def f(i):
        return i.first.centre * 3.0 + i.second.centre

    grad = jax.grad(f)(instance)
    assert grad.first.centre == grad.second.centre == 4.0
    batch = jax.tree_util.tree_map(lambda x: jnp.stack([x, x + 1.0]), instance)
    out = jax.vmap(jax.jit(f))(batch)
    assert out[1] - out[0] == pytest.approx(4.0)


def test_gradients_by_name_equal_the_flat_vector_gradients():
    model = shared_centre_model()
    model.second.sigma = 2 * model.first.sigma  # a prior linked by arithmetic
    vector = vector_of(model)

    def f(i):
        return i.first.centre**2 + i.second.centre + i.first.sigma * i.second.sigma

    flat = jax.grad(lambda v: f(model.instance_from_vector(v, xp=jnp)))(jnp.asarray(vector))
    by_name = af.values_by_path(model, jax.grad(f)(model.instance_from_vector(vector)))

    assert model.prior_count == 4
    np.testing.assert_allclose(np.array(list(by_name.values())), flat, rtol=1e-12)
    assert list(by_name) == model.joined_paths
    assert list(by_name) == ["second.centre", "first.normalization", "second.sigma.self", "second.normalization"]


def test_a_prior_linked_by_arithmetic_follows_its_leaf():
    model = af.Model(af.ex.Gaussian)
    model.sigma = 2 * model.centre
    instance = model.instance_from_vector([1.0, 5.0])

    grad = jax.grad(lambda i: i.sigma + i.normalization)(instance)

    assert len(jax.tree_util.tree_leaves(instance)) == 2
    assert (grad.centre, grad.normalization) == (2.0, 1.0)
    doubled = jax.tree_util.tree_map(lambda x: 3 * x, instance)
    assert doubled.sigma == 6.0


def test_mutating_one_copy_of_a_shared_prior_is_an_error_that_names_it():
    model = shared_centre_model()
    instance = model.instance_from_prior_medians()
    instance.second.centre = instance.first.centre + 1.0

    with pytest.raises(pytree.PytreeError, match=r"second\.centre.*first\.centre"):
        jax.tree_util.tree_leaves(instance)

    instance.first.centre = instance.second.centre  # every copy set: seen
    assert jax.tree_util.tree_leaves(instance)[0] == instance.second.centre


def siblings_model(count=6):
    """Gaussians sharing centre and normalization, each with its own fixed sigma: the
    shape of an MGE basis, whose siblings flatten checks together."""
    first = af.Model(af.ex.Gaussian, sigma=1.0)
    gaussians = {"g0": first}
    for k in range(1, count):
        gaussians[f"g{k}"] = af.Model(
            af.ex.Gaussian, centre=first.centre, normalization=first.normalization, sigma=1.0 + k
        )
    return af.Collection(**gaussians)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda i: setattr(i.g4, "centre", i.g0.centre + 1.0), r"g4\.centre.*g0\.centre"),
        (lambda i: setattr(i.g5, "normalization", 7.0), r"g5\.normalization.*g0\.normalization"),
        (lambda i: setattr(i, "g2", Pair()), r"g2 is a Pair, but the model built a Gaussian"),
        (lambda i: vars(i.g4).update(centre=i.g0.centre + 1.0), r"g4\.centre.*g0\.centre"),
        (
            lambda i: setattr(i.g4, "__dict__", {**vars(i.g4), "centre": i.g0.centre + 1.0}),
            r"g4\.centre.*g0\.centre",
        ),
    ],
    ids=[
        "shared parameter", "second shared parameter", "swapped object",
        "written into __dict__", "__dict__ replaced",
    ],
)
def test_a_change_to_one_of_many_siblings_is_refused_by_name(change, message):
    model = siblings_model()
    instance = model.instance_from_prior_medians()
    f = jax.jit(lambda i: i.g0.centre)
    f(instance)  # a change after a jitted call is seen too
    assert len(jax.tree_util.tree_leaves(instance)) == model.prior_count == 2

    change(instance)

    with pytest.raises(pytree.PytreeError, match=message):
        jax.tree_util.tree_leaves(instance)


def test_instances_made_any_way_share_one_treedef_and_one_compile():
    model = shared_centre_model()
    made = [
        model.instance_from_prior_medians(),
        model.instance_from_vector(list(map(float, vector_of(model)))),
        model.instance_from_vector(vector_of(model, 0.2)),  # NumPy floats
        model.instance_from_unit_vector([0.7] * model.prior_count),
        model.random_instance(),
    ]
    f = jax.jit(lambda i: i.first.centre + i.second.sigma)
    for instance in made:
        f(instance)

    assert len({jax.tree_util.tree_structure(i) for i in made}) == 1
    assert f._cache_size() == 1


def test_tuple_priors_are_one_leaf_per_element_shared_by_every_holder():
    model = tuple_model()
    instance = model.instance_from_prior_medians()

    names = [keystr(p) for p, _ in tree_flatten_with_path(instance)[0]]

    assert len(names) == model.prior_count
    assert ".a.two.centre" in names and ".a.one.centre" not in names  # autofit's name
    rebuilt = jax.tree_util.tree_map(lambda x: x + 1.0, instance)
    assert rebuilt.a.two.centre is rebuilt.a.one.centre


def test_a_derived_bool_is_not_taken_for_a_constant():
    class Threshold:
        def __init__(self, n=1.0):
            self.n = n
            self.above = n > 3.0  # True at the medians, a cached object: not a constant

    model = af.Model(Threshold, n=af.UniformPrior(0.0, 10.0))
    instance = model.instance_from_vector([5.0])

    low = jax.tree_util.tree_map(lambda _: 1.0, instance)

    assert low.above is False
    assert jax.tree_util.tree_leaves(low) == [1.0]


def test_the_elements_of_an_af_array_are_leaves_read_by_name():
    model = af.Collection(
        array=af.Array(shape=(2,), prior=af.UniformPrior(0.0, 1.0)),
        gaussian=af.Model(af.ex.Gaussian),
    )
    instance = model.instance_from_vector([0.1, 0.2, 1.0, 2.0, 3.0])

    grad = jax.grad(lambda i: (i.array**2).sum() + i.gaussian.sigma)(instance)
    by_name = af.values_by_path(model, grad)
    in_axes = jax.tree_util.tree_map(lambda _: 0, instance)
    batch = jax.tree_util.tree_map(lambda x: jnp.stack([x, x + 1.0]), instance)

    assert jax.tree_util.tree_leaves(instance) == [0.1, 0.2, 1.0, 2.0, 3.0]
    assert by_name["array.prior_0"] == pytest.approx(0.2)
    assert by_name["array.prior_1"] == pytest.approx(0.4)
    assert by_name["gaussian.sigma"] == 1.0
    np.testing.assert_allclose(jax.vmap(lambda i: i.array.sum(), in_axes=(in_axes,))(batch), [0.3, 2.3])


# 2. Unflatten runs no user code on values that are not parameters ------------------


def test_jax_hessian_by_name():
    model = af.Model(WithDerived, a=af.UniformPrior(0.0, 10.0), scale=af.UniformPrior(0.0, 10.0))
    instance = model.instance_from_vector([2.0, 3.0])

    hessian = jax.hessian(lambda i: i.b**2)(instance)  # b = scale * a

    assert hessian.a.a == pytest.approx(2 * 3.0**2)
    assert hessian.a.scale == pytest.approx(4 * 2.0 * 3.0)


def test_vmap_with_an_in_axes_tree_of_the_instance():
    model = af.Model(Validating, centre=af.UniformPrior(0.0, 1.0), sigma=af.UniformPrior(1.0, 2.0))
    instance = model.instance_from_prior_medians()
    in_axes = jax.tree_util.tree_map(lambda _: 0, instance)
    in_axes.sigma = None  # broadcast sigma, batch centre
    batch = jax.tree_util.tree_map(lambda x: x, instance)
    batch.centre = jnp.array([0.1, 0.2, 0.3])

    out = jax.vmap(lambda i: i.centre * i.sigma, in_axes=(in_axes,))(batch)

    np.testing.assert_allclose(out, np.array([0.1, 0.2, 0.3]) * instance.sigma)


def test_grad_of_a_validating_constructor_and_placeholders_run_no_constructor():
    model = af.Model(Validating, centre=af.UniformPrior(0.0, 1.0), sigma=af.UniformPrior(1.0, 2.0))
    instance = model.instance_from_prior_medians()
    jax.tree_util.tree_leaves(instance)
    calls = Validating.calls

    grad = jax.grad(lambda i: i.centre * 0.0)(instance)  # d/d sigma is 0: no valid sigma
    jax.tree_util.tree_map(lambda _: None, instance)
    jax.tree_util.tree_map(lambda _: object(), instance)
    jax.tree_util.tree_map(lambda x: x > 0, instance)
    jax.eval_shape(lambda i: i.centre * i.sigma, instance)

    assert grad.sigma == 0.0
    assert Validating.calls == calls


def test_equinox_partition_combine_and_tree_at():
    model = shared_centre_model()
    instance = model.instance_from_prior_medians()

    dynamic, static = eqx.partition(instance, eqx.is_inexact_array_like)
    again = eqx.combine(dynamic, static)
    moved = eqx.tree_at(lambda i: i.first.sigma, instance, 7.0)

    assert again == instance
    assert moved.first.sigma == 7.0 and instance.first.sigma != 7.0


def test_equinox_filters_see_every_parameter_as_an_array():
    model = shared_centre_model()
    instance = model.instance_from_prior_medians()  # Python floats and JAX scalars inside

    def f(i):
        return i.first.centre * i.second.sigma + i.first.normalization

    filtered = eqx.filter_grad(f)(instance)
    plain = jax.grad(f)(instance)

    assert all(eqx.is_inexact_array_like(leaf) for leaf in jax.tree_util.tree_leaves(instance))
    assert jax.tree_util.tree_leaves(filtered) == jax.tree_util.tree_leaves(plain)
    assert eqx.filter_jit(f)(instance) == f(instance)


def test_optax_lbfgs_minimises_over_an_instance():
    model = af.Model(WithDerived, a=af.UniformPrior(0.0, 10.0), scale=af.UniformPrior(0.0, 10.0))
    instance = model.instance_from_vector([1.0, 3.0])
    optimiser = optax.lbfgs()
    state = optimiser.init(instance)

    def loss(i):
        return (i.a - 2.0) ** 2 + (i.scale - 4.0) ** 2

    value_and_grad = optax.value_and_grad_from_state(loss)
    for _ in range(10):
        value, grad = value_and_grad(instance, state=state)
        updates, state = optimiser.update(grad, state, instance, value=value, grad=grad, value_fn=loss)
        instance = optax.apply_updates(instance, updates)

    assert (instance.a, instance.scale) == (pytest.approx(2.0, abs=1e-6), pytest.approx(4.0, abs=1e-6))
    assert instance.b == pytest.approx(8.0, abs=1e-5)


def test_optax_adam_fits_an_instance_with_derived_attributes():
    model = af.Model(WithDerived, a=af.UniformPrior(0.0, 10.0), scale=af.UniformPrior(0.0, 10.0))
    instance = model.instance_from_vector([1.0, 1.0])
    optimiser = optax.adam(0.1)
    state = optimiser.init(instance)  # zeros: no constructor runs on them

    @jax.jit
    def step(instance, state):
        loss, grads = jax.value_and_grad(lambda i: (i.b - 6.0) ** 2)(instance)
        updates, state = optimiser.update(grads, state)
        return optax.apply_updates(instance, updates), state, loss

    for _ in range(300):
        instance, state, loss = step(instance, state)

    assert instance.b == pytest.approx(6.0, abs=1e-3)
    assert instance.b == pytest.approx(instance.a * instance.scale)


def test_derived_attributes_follow_their_parameters_under_jit_grad_and_vmap():
    model = af.Model(WithDerived, a=af.UniformPrior(0.0, 10.0), scale=af.UniformPrior(0.0, 10.0))
    instance = model.instance_from_vector([2.0, 3.0])

    assert jax.jit(lambda i: i.b)(instance) == 6.0
    assert jax.grad(lambda i: i.b)(instance).a == 3.0
    batch = jax.tree_util.tree_map(lambda x: jnp.array([x, 2 * x]), instance)
    np.testing.assert_allclose(jax.vmap(lambda i: i.b)(batch), [6.0, 24.0])


# 3. No regressions without JAX -----------------------------------------------------


def test_models_of_builtins_slotted_classes_and_slotted_dataclasses_build():
    collection = af.Collection(
        n=af.Model(int),
        slotted=af.Model(Slotted, x=af.UniformPrior(0.0, 1.0), y=af.UniformPrior(0.0, 1.0)),
        data=af.Model(SlottedData, x=af.UniformPrior(0.0, 1.0), y=af.UniformPrior(0.0, 1.0)),
    )
    instance = collection.instance_from_prior_medians()

    assert isinstance(instance.n, int)
    assert isinstance(instance.slotted, Slotted)
    assert isinstance(instance.data, SlottedData)


def test_slotted_instances_are_pytrees_of_their_parameters():
    model = af.Model(Slotted, x=af.UniformPrior(0.0, 10.0), y=af.UniformPrior(0.0, 10.0))
    instance = model.instance_from_vector([3.0, 4.0])

    doubled = jax.jit(lambda i: jax.tree_util.tree_map(lambda x: 2 * x, i))(instance)

    assert (doubled.x, doubled.y) == (6.0, 8.0)


def test_parameters_stored_under_other_names_keep_their_values_in_jit():
    model = af.Model(Renamed, r=af.UniformPrior(0.0, 10.0), b=af.UniformPrior(0.0, 10.0))
    instance = model.instance_from_vector([7.0, 5.0])

    assert jax.jit(lambda i: i.radius)(instance) == 7.0
    assert jax.jit(lambda i: i.b)(instance) == 5.0
    assert [keystr(p) for p, _ in tree_flatten_with_path(instance)[0]] == [".r", ".b"]


def test_a_parameter_shadowed_by_a_property_is_read_from_the_objects_dict():
    # Attributes are read as such (`o.a`) only where that gives what __dict__ holds.
    model = af.Collection(s=af.Model(Shadowed, a=af.UniformPrior(0.0, 10.0)))
    instance = model.instance_from_vector([2.0])

    assert tree_flatten(instance)[0] == [2.0]
    assert jax.jit(lambda i: i.s.a)(instance) == 20.0


def test_a_users_own_registration_made_first_is_kept():
    class Mine:
        def __init__(self, x=1.0):
            self.x = x

    jax.tree_util.register_pytree_node(
        Mine, lambda m: ((m.x * 10,), None), lambda _, c: Mine(c[0])
    )
    mine = af.Model(Mine, x=af.UniformPrior()).instance_from_vector([1.0])

    assert jax.tree_util.tree_leaves(mine) == [10.0]


def test_without_jax_instances_build_copy_and_pickle():
    out = run_python(
        """
        import sys
        sys.modules["jax"] = None  # no JAX at all
        import copy, pickle
        import autofit as af
        model = af.Collection(g=af.Model(af.ex.Gaussian), n=af.Model(int))
        instance = model.instance_from_vector([1.0, 2.0, 3.0])
        again = pickle.loads(pickle.dumps(copy.deepcopy(instance)))
        print(again.g.centre == instance.g.centre, type(again.n).__name__)
        """
    )
    assert out == "True int"


# 4. Knowledge travels, nothing leaks ----------------------------------------------


@pytest.mark.parametrize(
    "copied",
    [copy.copy, copy.deepcopy, lambda i: pickle.loads(pickle.dumps(i)), lambda i: i.copy()],
    ids=["copy", "deepcopy", "pickle", "instance.copy"],
)
def test_copies_and_pickles_keep_the_tree_and_its_one_compile(copied):
    model = af.Collection(gaussian=af.Model(af.ex.Gaussian), constant=np.arange(3.0))
    instance = model.instance_from_prior_medians()
    f = jax.jit(lambda i: i.gaussian.centre + i.constant.sum())
    f(instance)

    again = copied(instance)

    assert jax.tree_util.tree_structure(again) == jax.tree_util.tree_structure(instance)
    assert f(again) == f(instance)
    assert f._cache_size() == 1
    assert jax.grad(lambda i: i.gaussian.sigma)(again).gaussian.sigma == 1.0


def test_dropped_instances_and_models_are_freed():
    model = af.Collection(gaussian=af.Model(af.ex.Gaussian))
    array = np.ones(1000)
    instance = model.instance_from_vector([1.0, 2.0, 3.0])
    instance.gaussian.normalization = array  # an array leaf
    assert jax.jit(lambda i: i.gaussian.normalization.sum())(instance) == 1000.0
    jax.tree_util.tree_unflatten(*reversed(jax.tree_util.tree_flatten(instance)))
    reference = weakref.ref(instance)
    holder_reference = weakref.ref(instance.gaussian)
    before = len(origins._records)

    del instance
    gc.collect()

    assert reference() is None and holder_reference() is None
    assert len(origins._records) < before
    burst = [model.instance_from_prior_medians() for _ in range(500)]
    del burst
    gc.collect()
    assert len(origins._records) < before + 10
    # A model no jitted call has seen is freed with its instances (JAX's own caches
    # keep the treedefs of jitted calls, and with them the model's blueprint).
    unseen = af.Collection(gaussian=af.Model(af.ex.Gaussian))
    jax.tree_util.tree_leaves(unseen.instance_from_prior_medians())
    model_reference = weakref.ref(unseen)
    del unseen
    gc.collect()
    assert model_reference() is None


def errors_in_threads(work, count):
    """Run `work(k)` in `count` threads started together; the exceptions they raised."""
    barrier = threading.Barrier(count)
    errors = []

    def run(k):
        barrier.wait()
        try:
            work(k)
        except Exception as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_flatten_and_unflatten_are_thread_safe():
    model = shared_centre_model()
    instances = [model.instance_from_vector(vector_of(model, u)) for u in np.linspace(0.1, 0.9, 400)]

    def work(_):  # the blueprint is made by whichever thread comes first
        for instance in instances:
            leaves, treedef = tree_flatten(instance)
            assert tree_unflatten(treedef, leaves) == instance

    assert errors_in_threads(work, 4) == []


def test_identity_fields_come_back_as_the_instances_own():
    model = af.Collection(a=af.Model(Identified, x=af.UniformPrior()))
    first, second = model.instance_from_prior_medians(), model.instance_from_prior_medians()
    assert first.a.id != second.a.id

    for instance in (first, second):
        leaves, treedef = tree_flatten(instance)
        assert tree_unflatten(treedef, leaves).a.id == instance.a.id
    assert tree_flatten(first)[1] == tree_flatten(second)[1]  # one compile


@pytest.mark.parametrize("calls_before", [1, 3], ids=["once", "again unchanged"])
def test_a_constant_array_is_read_only_once_its_instance_crossed_jax(calls_before):
    # Its key is read once, not copied at every call: NumPy refuses an in-place change.
    model = af.Collection(gaussian=af.Model(af.ex.Gaussian), constant=np.arange(3.0))
    instance = model.instance_from_prior_medians()
    f = jax.jit(lambda i: i.constant.sum())
    for _ in range(calls_before):
        assert f(instance) == 3.0

    with pytest.raises(ValueError, match="read-only"):
        instance.constant[0] = 10.0
    assert f(instance) == 3.0

    instance.constant.flags.writeable = True  # made writable again on purpose
    instance.constant[0] = 10.0  # the model's array too: a new static value

    assert f(instance) == 13.0
    assert f(model.instance_from_prior_medians()) == 13.0
    assert f._cache_size() == 2


def test_a_constant_view_mutated_in_place_is_seen():
    # A view's base can be written: it stays writable and is keyed at every flatten.
    base = np.arange(6.0)
    model = af.Collection(gaussian=af.Model(af.ex.Gaussian), constant=base[:3])
    instance = model.instance_from_prior_medians()
    f = jax.jit(lambda i: i.constant.sum())
    assert f(instance) == 3.0

    base[0] = 10.0

    assert f(instance) == 13.0
    assert f._cache_size() == 2


def test_a_constant_replaced_on_the_instance_is_refused_and_on_the_model_seen():
    model = af.Collection(gaussian=af.Model(af.ex.Gaussian, sigma=1.0))
    instance = model.instance_from_prior_medians()
    f = jax.jit(lambda i: i.gaussian.sigma * 2.0)
    assert f(instance) == 2.0

    instance.gaussian.sigma = 2.0  # the model fixes it: under jit it would be 1.0 again
    with pytest.raises(pytree.PytreeError, match=r"gaussian\.sigma holds 2\.0, but the model fixes it to 1\.0.*set it on the model"):
        f(instance)

    model.gaussian.sigma = 2.0  # an edit of the model: a new constant, a new compile
    assert f(model.instance_from_prior_medians()) == 4.0
    assert f._cache_size() == 2


def test_a_concrete_object_given_to_a_model_changed_in_place_is_seen():
    fixed = af.ex.Gaussian(centre=0.0, normalization=1.0, sigma=1.0)
    model = af.Collection(free=af.Model(af.ex.Gaussian), fixed=fixed)
    f = jax.jit(lambda i: i.fixed.sigma + i.free.sigma)
    instance = model.instance_from_prior_medians()
    before = f(instance)

    fixed.sigma = 5.0  # the model's object, held by every instance

    assert f(instance) == before + 4.0
    assert f(model.instance_from_prior_medians()) == before + 4.0
    assert jax.tree_util.tree_leaves(instance) == jax.tree_util.tree_leaves(
        model.instance_from_prior_medians()
    )


def test_an_attribute_added_to_an_instance_is_refused_by_name():
    model = af.Collection(gaussian=af.Model(af.ex.Gaussian))
    instance = model.instance_from_prior_medians()
    instance.data = np.ones(3)
    instance.gaussian.note = "x"

    with pytest.raises(pytree.PytreeError, match=r"^data was added after the model built"):
        jax.jit(lambda i: i.data.sum())(instance)
    del instance.data
    with pytest.raises(pytree.PytreeError, match=r"^gaussian\.note was added"):
        jax.tree_util.tree_leaves(instance)


# 5. Models, collections and priors ---------------------------------------------
# They are pytrees of their priors' hyperparameters: see test_model_pytrees.py.


@pytest.mark.parametrize(
    "model",
    [
        af.Collection(),
        af.Model(af.ex.Gaussian, centre=1.0, normalization=2.0, sigma=3.0),
        af.Collection(outer=af.Collection(inner=af.Model(af.ex.Gaussian))),
    ],
    ids=["empty collection", "no free parameter", "only nested models"],
)
def test_instances_of_models_of_any_shape_round_trip(model):
    instance = model.instance_from_prior_medians()

    leaves, treedef = tree_flatten(instance)
    again = jax.jit(lambda i: i)(instance)

    assert len(leaves) == model.prior_count
    assert tree_unflatten(treedef, leaves) == instance
    assert jax.tree_util.tree_structure(again) == treedef


# 6. Clear errors ----------------------------------------------------------------


def test_a_parameter_the_constructor_does_not_keep_is_read_from_what_it_was_built_with():
    class Rounds:
        def __init__(self, n=1.0):
            self.n = round(n)  # the parameter itself is not kept

    model = af.Model(Rounds, n=af.UniformPrior(0.0, 10.0))
    instance = model.instance_from_vector([3.4])

    assert jax.tree_util.tree_leaves(instance) == [3.4]
    assert jax.tree_util.tree_map(lambda x: x + 1.0, instance).n == 4  # computed on read
    again = copy.deepcopy(af.Collection(r=model).instance_from_vector([2.6]))
    assert jax.tree_util.tree_leaves(again) == [2.6]
    # A copy of an object taken out of an instance flattens by its attributes.
    assert jax.tree_util.tree_leaves(copy.deepcopy(again.r)) == [3]  # its id is no leaf


def test_values_by_path_of_a_tree_of_another_shape_says_what_to_do():
    with pytest.raises(pytree.PytreeError, match="dict has no centre.*an object of the model's shape"):
        af.values_by_path(gaussian_model(), {"centre": 1.0})


def test_values_by_path_reads_a_hand_built_object_by_the_models_names():
    truth = af.ex.Gaussian(centre=1.0, normalization=2.0, sigma=3.0)

    assert af.values_by_path(gaussian_model(), truth) == {"centre": 1.0, "normalization": 2.0, "sigma": 3.0}


# Objects built by hand -------------------------------------------------------------


@af.pytree_node
class HandBuilt:
    __static_fields__ = ("label",)

    def __init__(self, value, label="a"):
        self.value = value
        self.label = label


def test_hand_built_objects_of_a_pytree_node_class_cross_jit_without_their_constructor():
    obj = HandBuilt(jnp.arange(3.0), label="x")

    out = jax.jit(lambda o: HandBuilt(o.value * 2, o.label))(obj)

    assert out.label == "x"
    np.testing.assert_array_equal(out.value, [0.0, 2.0, 4.0])
    assert jax.tree_util.tree_map(lambda _: None, obj).label == "x"


def test_subclasses_of_a_pytree_node_class_are_nodes_whenever_they_are_defined():
    """No `__init_subclass__` to copy: `af.pytree_node` registers every later subclass, and
    a class's own `__init_subclass__` still runs."""
    defined = []

    @af.pytree_node
    class Base:
        def __init__(self, value):
            self.value = value

    class Hooked(Base):
        def __init_subclass__(cls, **kwargs):
            super().__init_subclass__(**kwargs)
            defined.append(cls.__name__)

    class Child(Hooked):
        pass

    class GrandChild(Child):
        pass

    assert defined == ["Child", "GrandChild"]
    for cls in (Base, Hooked, Child, GrandChild):
        out = jax.jit(lambda o: o)(cls(jnp.float64(2.0)))
        assert type(out) is cls and float(out.value) == 2.0
        assert jax.tree_util.tree_leaves(cls(1.0)) == [1.0]


@af.pytree_node
class Fitted:
    """A fit in miniature: a child held under two names, a computed field, a cache."""

    __static_fields__ = ("data",)
    __computed_fields__ = ("chi_squared",)

    def __init__(self, model_obj, data):
        self.model_obj = model_obj
        self.profile = model_obj  # the same object under the name its fit gives it
        self.data = data

    @cached_property
    def residuals(self):
        return self.data - self.model_obj.value

    @cached_property
    def chi_squared(self):
        return jnp.sum(self.residuals**2)


def test_a_computed_field_is_computed_by_the_compiled_program_and_returned_with_the_object():
    data = np.array([1.0, 2.0, 3.0])

    fit = jax.jit(lambda value: Fitted(HandBuilt(value), data))(jnp.array([0.0, 1.0, 1.0]))

    assert vars(fit)["chi_squared"] is fit.chi_squared  # stored: reading it computes nothing
    assert isinstance(fit.chi_squared, jax.Array) and float(fit.chi_squared) == 6.0
    assert "residuals" not in vars(fit)  # a cache: computed again when read
    np.testing.assert_array_equal(fit.residuals, [1.0, 1.0, 2.0])


def test_a_cached_value_read_or_not_does_not_change_the_tree():
    read, unread = Fitted(HandBuilt(np.zeros(3)), np.ones(3)), Fitted(HandBuilt(np.zeros(3)), np.ones(3))
    read.residuals

    assert jax.tree_util.tree_structure(read) == jax.tree_util.tree_structure(unread)
    assert [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(read)] == [
        ".model_obj.value",
        ".chi_squared",
    ]


def test_an_object_held_under_two_names_is_one_child_and_one_object_after_unflatten():
    fit = Fitted(HandBuilt(np.arange(3.0)), np.ones(3))

    leaves, treedef = jax.tree_util.tree_flatten(fit)
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    out = jax.jit(lambda f: f)(fit)

    assert len(leaves) == 2  # the profile's value once, the chi-squared
    for obj in (rebuilt, out):
        assert obj.profile is obj.model_obj
    np.testing.assert_array_equal(out.profile.value, [0.0, 1.0, 2.0])


def test_import_autofit_does_not_import_jax():
    out = run_python(
        """
        import sys
        import autofit
        print("jax" in sys.modules)
        """
    )
    assert out == "False"


@pytest.mark.parametrize("jax_first", [False, True])
def test_jit_accepts_instances_in_either_import_order(jax_first):
    first, second = ("jax", "autofit as af") if jax_first else ("autofit as af", "jax")
    out = run_python(
        f"""
        import {first}
        import {second}
        instance = af.Model(af.ex.Gaussian).instance_from_prior_medians()
        print(float(jax.jit(lambda i: i.centre + i.sigma)(instance)))
        """
    )
    assert float(out) == pytest.approx(50.0 + 12.5)


@pytest.mark.parametrize("jax_first", [False, True])
def test_a_subclass_defined_later_crosses_jit_as_the_first_jax_call_in_either_import_order(jax_first):
    """Registration of a later subclass by `af.pytree_node` in a fresh interpreter, JAX
    imported before autofit or after the classes are defined."""
    first, second = ("jax", "autofit as af") if jax_first else ("autofit as af", "jax")
    out = run_python(
        f"""
        import {first}

        import autofit as af

        @af.pytree_node
        class Base:
            def __init__(self, value):
                self.value = value

        class Later(Base):
            pass

        import {second}
        print(float(jax.jit(lambda o: o.value * 2)(Later(1.5))))
        """
    )
    assert float(out) == 3.0


# 7. What users see: arrays stay on their device, one compile, names, prints ----------


def test_jax_array_leaves_stay_jax_arrays_and_share_the_compile():
    model = shared_centre_model()
    instance = model.instance_from_prior_medians()  # Python floats: NumPy floats as leaves
    traces = []

    @jax.jit
    def f(i):
        traces.append(1)
        return jax.tree_util.tree_map(lambda x: x * 2.0, i)

    out = f(instance)
    on_device = jax.tree_util.tree_map(jnp.asarray, instance)

    assert all(type(leaf) is np.float64 for leaf in jax.tree_util.tree_leaves(instance))
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree_util.tree_leaves(out))
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree_util.tree_leaves(on_device))
    f(out), f(on_device)
    assert len(traces) == 1


def test_models_built_twice_by_the_same_code_share_one_treedef_and_compile():
    # A notebook cell run again, or a model loaded from its JSON: another model object
    # with other priors, the same structure.
    def build():
        return siblings_model()

    first, second = build(), build()
    loaded = af.Model.from_dict(first.dict())
    f = jax.jit(lambda i: i.g0.centre + i.g3.sigma)
    instances = [m.instance_from_prior_medians() for m in (first, second, loaded)]
    for instance in instances:
        f(instance)

    assert len({jax.tree_util.tree_structure(i) for i in instances}) == 1
    assert f._cache_size() == 1


def test_an_instance_returned_from_jit_with_derived_attributes_pickles():
    model = af.Collection(
        d=af.Model(WithDerived, a=af.UniformPrior(0.0, 10.0), scale=af.UniformPrior(0.0, 10.0))
    )
    out = jax.jit(lambda i: i)(model.instance_from_vector([2.0, 3.0]))

    again = pickle.loads(pickle.dumps(out))

    assert again.d.b == 6.0  # computed on read, after the round trip
    assert out.d.b == 6.0
    assert jax.tree_util.tree_structure(again) == jax.tree_util.tree_structure(out)


def test_derived_attributes_read_in_many_threads_at_once():
    model = af.Collection(
        d=af.Model(WithDerived, a=af.UniformPrior(0.0, 10.0), scale=af.UniformPrior(0.0, 10.0))
    )
    treedef = jax.tree_util.tree_structure(model.instance_from_prior_medians())
    made = [tree_unflatten(treedef, [a, 2.0]) for a in np.linspace(1.0, 9.0, 64)]

    def work(k):
        for instance in made[k::8] + made:
            assert instance.d.b == 2.0 * instance.d.a

    assert errors_in_threads(work, 8) == []


def test_one_name_per_parameter_in_key_paths_values_by_path_and_errors():
    model = tuple_model()
    instance = model.instance_from_prior_medians()
    name = "a.two.centre"  # the name autofit gives the shared centre

    key_names = [keystr(path) for path, _ in tree_flatten_with_path(instance)[0]]
    by_name = af.values_by_path(model, jax.grad(lambda i: i.a.one.centre * 2.0)(instance))
    instance.a.two.centre = instance.a.one.centre + 1.0

    assert key_names[0] == "." + name
    assert list(by_name)[0] == name and by_name[name] == 2.0
    with pytest.raises(pytree.PytreeError, match=rf"^a\.two\.centre holds .* parameter {name}, which is .* at a\.one\.centre"):
        jax.tree_util.tree_leaves(instance)


def test_print_of_an_instance_shows_its_parameters_by_name():
    model = af.Collection(gaussian=af.Model(af.ex.Gaussian))
    instance = model.instance_from_vector([1.0, 2.0, 3.0])

    text = repr(instance)

    assert text.splitlines() == [
        "ModelInstance(",
        "    gaussian.centre = 1.0",
        "    gaussian.normalization = 2.0",
        "    gaussian.sigma = 3.0",
        ")",
    ]
    assert "object at 0x" in repr(af.ModelInstance())  # built by hand: as before
