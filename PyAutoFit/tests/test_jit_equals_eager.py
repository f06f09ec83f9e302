"""
jit(f)(instance) == f(instance), or flatten raises PytreeError naming the place.

Each test is one way an instance used to give a jitted result other than the eager one,
with no error: kept so that it never does again. One jitted reader is shared by every
test, as a user's notebook shares one jitted function across models.
"""
import dataclasses
import functools

import numpy as np
import pytest

import autofit as af
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.tree_util import tree_structure, tree_unflatten

from autofit import pytree


def _numbers(obj, path="", seen=None):
    """Every number an instance holds, read by attribute as a user reads it."""
    seen = set() if seen is None else seen
    if isinstance(obj, (bool, int, float, np.number, np.ndarray, jax.Array)):
        return {path: jnp.asarray(obj)}
    if obj is None or isinstance(obj, (str, type)) or id(obj) in seen:
        return {}
    seen.add(id(obj))
    found = {}
    if isinstance(obj, (tuple, list)):
        for i, item in enumerate(obj):
            found.update(_numbers(item, f"{path}[{i}]", seen))
        return found
    if isinstance(obj, dict):
        for key, item in obj.items():
            found.update(_numbers(item, f"{path}[{key!r}]", seen))
        return found
    for name in getattr(type(obj), "read", ()):
        found.update(_numbers(getattr(obj, name), f"{path}.{name}", seen))
    if isinstance(obj, af.ModelInstance):
        for name, item in obj.dict.items():
            found.update(_numbers(item, f"{path}.{name}", seen))
    return found


jit_numbers = jax.jit(_numbers)


def same(a: dict, b: dict) -> bool:
    return sorted(a) == sorted(b) and all(
        np.array_equal(np.asarray(a[k]), np.asarray(b[k]), equal_nan=True) for k in a
    )


def assert_jit_equals_eager_or_refused(instance):
    try:
        jitted = jit_numbers(instance)
    except pytree.PytreeError:
        return "refused"
    assert same(jitted, _numbers(instance))
    return "equal"


def assert_round_trips(model, vector, other):
    instance = model.instance_from_vector(vector)
    np.testing.assert_array_equal(ravel_pytree(instance)[0], np.asarray(vector, dtype=float))
    made = tree_unflatten(tree_structure(instance), list(other))
    assert same(_numbers(made), _numbers(model.instance_from_vector(other)))


# Classes a user might write ---------------------------------------------------------


class Pair:
    read = ("a", "b")

    def __init__(self, a=1.0, b=2.0):
        self.a = a
        self.b = b


class Derives:
    read = ("a", "scale", "total")

    def __init__(self, a=1.0, scale=2.0):
        self.a = a
        self.scale = scale
        self.total = a * scale


class Transforms:
    read = ("a",)

    def __init__(self, a=1.0):
        self.a = a + 0.0


class Clamps:
    read = ("q",)

    def __init__(self, q=0.5):
        self.q = jnp.minimum(q, 0.95)


class PythonClamp:
    read = ("q",)

    def __init__(self, q=0.5):
        self.q = min(q, 0.95)


class Private:
    """A constant whose state lives behind a property."""

    read = ("scale",)

    def __init__(self, scale=1.0):
        self._scale = scale

    @property
    def scale(self):
        return self._scale


class UsesConstant:
    read = ("a", "fixed")

    def __init__(self, a=1.0, fixed=None):
        self.a = a
        self.fixed = fixed


class Ordered:
    """A constructor that validates its arguments."""

    read = ("lower", "upper")

    def __init__(self, lower=0.0, upper=1.0):
        assert lower < upper
        self.lower = lower
        self.upper = upper


class Parent:
    read = ("a", "child")

    def __init__(self, a=1.0, child=None):
        self.a = a
        self.child = child
        child.parent = self


class Cached:
    read = ("a", "doubled")

    def __init__(self, a=1.0):
        self.a = a

    @functools.cached_property
    def doubled(self):
        return 2 * self.a


class Slotted:
    __slots__ = ("a", "b")
    read = ("a", "b")

    def __init__(self, a=1.0, b=2.0):
        self.a = a
        self.b = b


@dataclasses.dataclass(slots=True)
class SlottedData:
    read = ()
    a: float = 1.0
    b: float = 2.0


class Items(list):
    read = ()

    def __init__(self, a=1.0, b=2.0):
        super().__init__([a, b])


class Flags:
    read = ("n", "above")

    def __init__(self, n=1.0):
        self.n = n
        self.above = n > 9.5


def uniform(lower=0.1, upper=2.0):
    return af.UniformPrior(lower_limit=lower, upper_limit=upper)


# The defects ---------------------------------------------------------------------------


def test_models_linked_by_different_arithmetic_do_not_share_a_compile():
    results = []
    for factor in (2.0, 3.0):
        model = af.Model(Pair, a=uniform(), b=uniform())
        model.b = factor * model.a
        instance = model.instance_from_vector([0.5])
        assert assert_jit_equals_eager_or_refused(instance) == "equal"
        results.append(float(jit_numbers(instance)[".b"]))
    assert results == [1.0, 1.5]


@pytest.mark.parametrize("edit", ["replace a prior", "fix a parameter", "link a parameter"])
def test_a_model_edited_after_its_instance_was_flattened(edit):
    model = af.Collection(one=af.Model(Derives, a=uniform(), scale=uniform()), two=af.Model(Pair, a=uniform(), b=uniform()))
    old = model.instance_from_vector([0.5, 0.6, 0.7, 0.8])
    assert assert_jit_equals_eager_or_refused(old) == "equal"

    if edit == "replace a prior":
        model.one.a = uniform(0.2, 3.0)  # a new prior: last in the vector
    elif edit == "fix a parameter":
        model.one.scale = 0.25
    else:
        model.two.b = model.two.a

    assert assert_jit_equals_eager_or_refused(old) in ("equal", "refused")
    vector = model.vector_from_unit_vector([0.3] * model.prior_count)
    assert_round_trips(model, vector, model.vector_from_unit_vector([0.6] * model.prior_count))
    assert assert_jit_equals_eager_or_refused(model.instance_from_vector(vector)) == "equal"


def test_the_old_instance_of_an_edited_model_is_refused_where_it_differs():
    model = af.Model(Derives, a=uniform(), scale=uniform())
    old = model.instance_from_vector([0.5, 0.6])
    jit_numbers(old)
    model.scale = 0.25  # old.total was made with scale 0.6

    with pytest.raises(pytree.PytreeError, match="scale holds 0.6, but the model fixes it to 0.25"):
        jit_numbers(old)


def test_a_constant_with_private_state_changed_in_place_or_replaced_is_seen():
    fixed = Private(1.0)
    model = af.Model(UsesConstant, a=uniform(), fixed=fixed)
    instance = model.instance_from_vector([0.5])
    assert float(jit_numbers(instance)[".fixed.scale"]) == 1.0

    fixed._scale = 3.0
    assert float(jit_numbers(instance)[".fixed.scale"]) == 3.0

    model.fixed = Private(4.0)  # an edit of the model: the old instance holds the old one
    assert assert_jit_equals_eager_or_refused(instance) == "refused"
    assert float(jit_numbers(model.instance_from_vector([0.5]))[".fixed.scale"]) == 4.0


def test_a_fixed_element_of_an_af_array_changed_on_the_instance_is_refused():
    array = af.Array(shape=(2,), prior=uniform())
    array[1] = np.float64(0.5)  # upstream's Array builds NumPy arrays of NumPy floats
    model = af.Collection(array=array)
    instance = model.instance_from_vector(np.array([1.5]))
    assert float(jit_numbers(instance)[".array"][1]) == 0.5

    instance.array[1] = 7.0

    with pytest.raises(pytree.PytreeError, match=r"array\[1\] holds 7.0, but the model fixes it to 0.5"):
        jit_numbers(instance)


def test_a_parameter_stored_transformed_and_a_derived_attribute_set_by_hand():
    model = af.Collection(t=af.Model(Transforms, a=uniform()), d=af.Model(Derives, a=uniform(), scale=uniform()))
    instance = model.instance_from_vector([0.5, 0.6, 0.7])
    assert assert_jit_equals_eager_or_refused(instance) == "equal"
    assert_round_trips(model, [0.5, 0.6, 0.7], [1.5, 1.6, 1.7])

    instance.d.total = 5.0  # under jit it would be a * scale again
    with pytest.raises(pytree.PytreeError, match=r"d\.total is not what the model builds"):
        jit_numbers(instance)

    instance = model.instance_from_vector([0.5, 0.6, 0.7])
    instance.d.a = 1.0  # a parameter set, its derived total left as it was
    with pytest.raises(pytree.PytreeError, match=r"d\.total is not what the model builds"):
        jit_numbers(instance)

    instance = model.instance_from_vector([0.5, 0.6, 0.7])
    instance.t.a = 1.25  # not the parameter as given: under jit it would be 0.5 + 0.0
    with pytest.raises(pytree.PytreeError, match=r"t\.a is not what the model builds"):
        jit_numbers(instance)


@pytest.mark.parametrize("cls", [Slotted, SlottedData])
def test_slotted_classes_without_weakref_are_parameters_inside_a_collection(cls):
    model = af.Collection(s=af.Model(cls, a=uniform(), b=uniform()), p=af.Model(Pair, a=uniform(), b=0.3))
    assert_round_trips(model, [0.5, 0.6, 0.7], [1.5, 1.6, 1.7])
    instance = model.instance_from_vector([0.5, 0.6, 0.7])

    instance.s.a = 1.9

    assert assert_jit_equals_eager_or_refused(instance) == "equal"
    assert jax.jit(lambda i: i.s.a)(instance) == 1.9


def test_the_same_model_code_with_a_hand_built_constant_shares_one_compile():
    def build():
        return af.Model(UsesConstant, a=uniform(), fixed=Pair(1.0, 2.0))  # labelled by the model

    f = jax.jit(lambda i: i.a + i.fixed.b)
    instances = [build().instance_from_vector([0.5]) for _ in range(3)]
    for instance in instances:
        f(instance)

    assert f._cache_size() == 1
    batch = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *instances)
    np.testing.assert_allclose(jax.vmap(f)(batch), [2.5, 2.5, 2.5])


def test_a_validating_constructor_flattens_at_any_valid_values():
    model = af.Model(Ordered, lower=uniform(0.0, 1.0), upper=uniform(0.5, 3.0))
    instance = model.instance_from_vector([0.9, 0.95])  # lower < upper here, not at every unit

    assert assert_jit_equals_eager_or_refused(instance) == "equal"


def test_a_cached_property_read_eagerly_keeps_the_instance_jittable():
    model = af.Model(Cached, a=uniform())
    instance = model.instance_from_vector([0.5])
    assert instance.doubled == 1.0

    assert jax.jit(lambda i: i.doubled)(instance) == 1.0


def test_an_unflattened_instance_with_derived_attributes_equals_instance_from_vector():
    model = af.Model(Derives, a=uniform(), scale=uniform())
    treedef = tree_structure(model.instance_from_vector([0.5, 0.6]))

    made = tree_unflatten(treedef, [1.5, 1.2])

    assert vars(made) == vars(model.instance_from_vector([1.5, 1.2]))
    assert made.total == 1.5 * 1.2


@pytest.mark.parametrize("cls", [Clamps, PythonClamp])
def test_a_clamp_in_a_constructor(cls):
    model = af.Model(cls, q=uniform(0.1, 2.0))  # clamped above 0.95: within the prior
    for q in (0.5, 1.5):
        assert assert_jit_equals_eager_or_refused(model.instance_from_vector([q])) in ("equal", "refused")
    treedef = tree_structure(model.instance_from_vector([0.5]))
    for q in (0.5, 1.5):
        made = tree_unflatten(treedef, [q])
        try:
            assert same(_numbers(made), _numbers(model.instance_from_vector([q])))
        except pytree.PytreeError:
            pass


def test_a_clamp_seen_only_at_an_instance_is_learned_from_it():
    model = af.Model(Clamps, q=uniform(0.1, 1.0))  # units 0.1, 0.9 do not reach the clamp
    assert assert_jit_equals_eager_or_refused(model.instance_from_vector([0.5])) == "equal"

    clamped = model.instance_from_vector([0.99])

    assert assert_jit_equals_eager_or_refused(clamped) == "equal"
    np.testing.assert_array_equal(ravel_pytree(clamped)[0], [0.99])


def test_a_back_reference_set_by_a_constructor():
    model = af.Model(Parent, a=uniform(), child=af.Model(Pair, a=uniform(), b=uniform()))
    instance = model.instance_from_vector([0.5, 0.6, 0.7])

    made = jax.jit(lambda i: i)(instance)

    assert made.child.parent is made
    assert assert_jit_equals_eager_or_refused(instance) == "equal"
    assert_round_trips(model, [0.5, 0.6, 0.7], [1.5, 1.6, 1.7])


def test_models_of_list_and_dict_subclasses_survive_unflatten():
    model = af.Collection(items=af.Model(Items, a=uniform(), b=uniform()))
    instance = model.instance_from_vector([0.5, 0.6])

    made = jax.tree_util.tree_map(lambda x: x * 2, instance)

    assert list(made.items) == [1.0, 1.2] and type(made.items) is Items
    assert_round_trips(model, [0.5, 0.6], [1.5, 1.6])


def test_a_quantity_constant():
    units = pytest.importorskip("astropy.units")
    model = af.Model(UsesConstant, a=uniform(), fixed=3.0 * units.kpc)
    instance = model.instance_from_vector([0.5])

    assert jax.jit(lambda i: i.a * 2)(instance) == 1.0
    assert tree_structure(instance) == tree_structure(model.instance_from_vector([0.7]))


def test_a_nan_constant_shares_one_compile_across_rebuilds():
    f = jax.jit(lambda i: i.a * 2)
    for _ in range(3):
        f(af.Model(UsesConstant, a=uniform(), fixed=float("nan")).instance_from_vector([0.5]))

    assert f._cache_size() == 1


def test_a_sub_object_replaced_by_a_hand_built_one_of_its_class():
    model = af.Collection(d=af.Model(Derives, a=uniform(), scale=uniform()), p=af.Model(Pair, a=uniform(), b=uniform()))
    instance = model.instance_from_vector([0.5, 0.6, 0.7, 0.8])

    instance.d = Derives(1.0, 2.0)  # what the model builds from a = 1, scale = 2
    assert assert_jit_equals_eager_or_refused(instance) == "equal"
    assert list(ravel_pytree(instance)[0]) == [1.0, 2.0, 0.7, 0.8]

    instance.d = Derives(1.0, 2.0)
    instance.d.total = 9.0  # not what the model builds: refused, naming the place
    with pytest.raises(pytree.PytreeError, match=r"^d\.total is not what the model builds"):
        jit_numbers(instance)


def test_a_flag_that_varies_only_where_the_probe_did_not_build_is_learned():
    model = af.Model(Flags, n=uniform(0.0, 10.0))  # units 0.1, 0.9: n = 1, 9; the flag flips at 9.5
    low = model.instance_from_vector([1.0])
    assert assert_jit_equals_eager_or_refused(low) == "equal"

    high = model.instance_from_vector([9.8])

    assert assert_jit_equals_eager_or_refused(high) == "equal"
    assert jax.jit(lambda i: i.above)(high)


def test_a_slotted_object_without_weakref_as_the_root_is_refused_with_advice():
    instance = af.Model(SlottedData, a=uniform(), b=uniform()).instance_from_vector([0.5, 0.6])

    with pytest.raises(pytree.PytreeError, match="weakref_slot=True"):
        jit_numbers(instance)
