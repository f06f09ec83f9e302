"""
Model instances, models and priors as JAX pytrees (the PyAutoFit series).

Each test asserts one behaviour a user relies on when passing an instance straight to
`jax.jit`, `jax.vmap`, `jax.grad` or `jax.tree_util`.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import autofit as af
import jax
import jax.numpy as jnp
from jax.tree_util import keystr, tree_flatten, tree_flatten_with_path, tree_structure


class WithDerived:
    """A constructor that derives an attribute from a parameter."""

    def __init__(self, a=1.0, scale=2.0):
        self.a = a
        self.scale = scale
        self.b = scale * a


class Holder:
    def __init__(self, value=1.0, config=None):
        self.value = value
        self.config = config


class Config:
    """A constant object that compares by value, rebuilt for every instance below."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def __eq__(self, other):
        return isinstance(other, Config) and self.shape == other.shape

    def __hash__(self):
        return hash(self.shape)


class CopiesConfig:
    def __init__(self, value=1.0, shape=(2, 2)):
        self.value = value
        self.config = Config(shape)


def gaussian_model(**kwargs):
    return af.Model(af.ex.Gaussian, **kwargs)


def derived_model():
    return af.Model(WithDerived, a=af.UniformPrior(0.0, 10.0), scale=af.UniformPrior(0.0, 10.0))


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]  # autofit logs to stdout first


# 1. No ceremony -----------------------------------------------------------------


@pytest.mark.parametrize("jax_first", [False, True])
def test_jit_accepts_instances_in_either_import_order(jax_first):
    first, second = ("jax", "autofit as af") if jax_first else ("autofit as af", "jax")
    out = run_python(
        f"""
        import {first}
        import {second}
        model = af.Model(af.ex.Gaussian)
        instance = model.instance_from_vector([1.0, 2.0, 3.0])
        print(float(jax.jit(lambda i: i.centre * i.sigma)(instance)))
        """
    )
    assert float(out) == 3.0


def test_import_autofit_does_not_import_jax():
    out = run_python(
        """
        import sys
        import autofit
        print("jax" in sys.modules)
        """
    )
    assert out.strip() == "False"


def test_jit_vmap_grad_and_tree_util_accept_a_model_instance():
    model = gaussian_model()
    instance = model.instance_from_vector([1.0, 2.0, 3.0])

    assert jax.jit(lambda i: i.centre + i.normalization)(instance) == 3.0

    batch = jax.tree_util.tree_map(lambda x: jnp.array([x, 2 * x]), instance)
    np.testing.assert_allclose(jax.vmap(lambda i: i.sigma)(batch), [3.0, 6.0])

    grad = jax.grad(lambda i: i.centre * i.sigma)(instance)
    assert isinstance(grad, af.ex.Gaussian)
    assert (grad.centre, grad.normalization, grad.sigma) == (3.0, 0.0, 1.0)

    assert jax.tree_util.tree_leaves(instance) == [1.0, 2.0, 3.0]


def test_instances_from_prior_medians_are_pytrees():
    model = af.Collection(gaussian=gaussian_model())
    instance = model.instance_from_prior_medians()
    out = jax.jit(lambda i: i.gaussian)(instance)
    assert isinstance(out, af.ex.Gaussian)
    assert float(out.centre) == float(instance.gaussian.centre)


@pytest.mark.parametrize(
    "make_collection, read",
    [
        (lambda: af.Collection(one=gaussian_model(), two=gaussian_model()), lambda i: i.two.sigma),
        (lambda: af.Collection([gaussian_model(), gaussian_model()]), lambda i: i[1].sigma),
        (lambda: af.Collection(dict(one=gaussian_model(), two=gaussian_model())), lambda i: i["two"].sigma),
        (
            lambda: af.Collection(outer=af.Collection(inner=af.Collection(g=gaussian_model()), two=gaussian_model())),
            lambda i: i.outer.two.sigma,
        ),
    ],
    ids=["attributes", "list-like", "dict-like", "nested"],
)
def test_collections_of_every_shape_cross_jit(make_collection, read):
    model = make_collection()
    vector = [float(v) for v in range(1, model.prior_count + 1)]
    instance = model.instance_from_vector(vector)
    assert jax.jit(read)(instance) == read(instance)
    assert tree_flatten(instance)[0] == vector


# 2. Leaves are parameter values; constants stay static ----------------------------


def test_constants_stay_static_so_python_control_flow_works_inside_jit():
    concrete = af.ex.Gaussian(centre=0.0, normalization=1.0, sigma=1.0)
    model = af.Collection(
        gaussian=gaussian_model(sigma=0.5),
        holder=af.Model(Holder, value=af.UniformPrior(0.0, 10.0), config=concrete),
        redshift=0.5,
    )
    instance = model.instance_from_vector([1.0, 2.0, 3.0])

    def f(i):
        assert isinstance(i.holder.config, af.ex.Gaussian)
        if i.redshift > 0.3 and i.gaussian.sigma == 0.5:  # Python control flow
            return i.gaussian.centre + i.holder.value
        return 0.0

    assert jax.jit(f)(instance) == 4.0
    assert tree_flatten(instance)[0] == [1.0, 2.0, 3.0]


def test_every_free_parameter_reaches_a_leaf_tuple_priors_included():
    model = af.Model(af.ex.Gaussian)
    model.centre = af.TuplePrior(centre_0=af.UniformPrior(0.0, 1.0), centre_1=af.UniformPrior(0.0, 1.0))
    instance = model.instance_from_vector([0.1, 0.2, 0.3, 0.4])
    leaves = tree_flatten(instance)[0]
    assert sorted(leaves) == [0.1, 0.2, 0.3, 0.4]
    assert len(leaves) == model.prior_count


# 3. Names -----------------------------------------------------------------------------


def test_leaf_paths_are_named_like_the_model_paths():
    model = af.Collection(galaxies=af.Collection(lens=gaussian_model(sigma=1.0), source=gaussian_model()))
    instance = model.instance_from_vector([float(v) for v in range(model.prior_count)])

    paths = {keystr(path) for path, _ in tree_flatten_with_path(instance)[0]}
    expected = {"." + ".".join(path) for path in model.paths}
    assert paths == expected
    assert ".galaxies.lens.centre" in paths


def test_the_treedef_prints_names_not_object_ids():
    model = af.Collection(lens=gaussian_model(sigma=1.0))
    text = str(tree_structure(model.instance_from_vector([1.0, 2.0])))
    assert "centre" in text and "normalization" in text and "sigma=1.0" in text
    assert "object at 0x" not in text


# 4. One compile per model ---------------------------------------------------------------


def test_one_compile_serves_every_instance_of_a_model():
    model = af.Collection(
        gaussian=gaussian_model(sigma=0.5),
        holder=af.Model(CopiesConfig, value=af.UniformPrior(0.0, 10.0), shape=(3, 3)),
        mask=np.ones((2, 2)),
    )
    f = jax.jit(lambda i: i.gaussian.centre * i.holder.value + i.mask.sum())
    for v in range(5):
        f(model.instance_from_vector([float(v), 1.0, 2.0]))
    assert f._cache_size() == 1


def test_array_constants_are_static_and_compared_by_value():
    f = jax.jit(lambda i: i.centre + i.mask.sum())
    for _ in range(3):
        model = gaussian_model(mask=np.arange(3.0))
        f(model.instance_from_vector([1.0, 2.0, 3.0]))
    assert f._cache_size() == 1
    other = gaussian_model(mask=np.arange(4.0))
    assert f(other.instance_from_vector([1.0, 2.0, 3.0])) == 7.0
    assert f._cache_size() == 2


def test_statics_are_decided_per_model_not_per_class():
    fixed_sigma = gaussian_model(sigma=1.0)
    free_sigma = gaussian_model()
    assert len(tree_flatten(fixed_sigma.instance_from_vector([1.0, 2.0]))[0]) == 2
    instance = free_sigma.instance_from_vector([1.0, 2.0, 3.0])
    assert len(tree_flatten(instance)[0]) == 3
    assert jax.grad(lambda i: i.sigma ** 2)(instance).sigma == 6.0


# 5. Round trips -------------------------------------------------------------------------


def roundtrip(obj):
    leaves, treedef = tree_flatten(obj)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def test_unflatten_of_flatten_rebuilds_an_equal_object():
    model = gaussian_model()
    model.extra = 4.0  # an attribute the model sets outside the constructor
    instance = model.instance_from_vector([1.0, 2.0, 3.0])
    instance.set_by_user = 5.0
    new = roundtrip(instance)
    assert type(new) is af.ex.Gaussian
    assert new.__dict__ == instance.__dict__


def test_attributes_derived_by_the_constructor_follow_new_values():
    model = derived_model()
    instance = model.instance_from_vector([1.0, 2.0])
    assert tree_flatten(instance)[0] == [1.0, 2.0]  # b is no leaf: it is derived

    tripled = jax.tree_util.tree_map(lambda x: 3 * x, instance)
    assert tripled.b == tripled.scale * tripled.a == 18.0

    grad = jax.grad(lambda i: i.b)(instance)
    assert (grad.a, grad.scale) == (2.0, 1.0)


def test_no_tracer_is_kept_in_static_data():
    instance = derived_model().instance_from_vector([1.0, 2.0])
    out = jax.jit(lambda i: jax.tree_util.tree_map(lambda x: x + 1, i))(instance)
    assert float(out.b) == 3.0 * 2.0
    # The output treedef equals the input one: nothing traced went into static data.
    assert tree_structure(out) == tree_structure(instance)


def test_hand_built_objects_of_a_model_class_keep_every_attribute():
    derived_model()  # registers the class
    obj = WithDerived(a=2.0)
    obj.note = 7.0
    new = roundtrip(obj)
    assert new.__dict__ == obj.__dict__


# 6. Reading by name -------------------------------------------------------------------------


def test_values_by_path_sums_tied_copies_and_matches_the_flat_vector_gradient():
    centre = af.UniformPrior(-1.0, 1.0)
    gaussians = []
    for sigma in (0.5, 1.0, 2.0):
        gaussian = gaussian_model(sigma=sigma)
        gaussian.centre = centre  # one prior shared by three Gaussians
        gaussians.append(gaussian)
    model = af.Collection(gaussians=af.Collection(gaussians))
    vector = jnp.array([0.3, 1.0, 2.0, 3.0])

    def f(instance):
        return sum(g.normalization * jnp.exp(-g.centre ** 2 / g.sigma) for g in instance.gaussians)

    by_pytree = af.values_by_path(model, jax.grad(f)(model.instance_from_vector(vector)))
    by_vector = jax.grad(lambda v: f(model.instance_from_vector(v, xp=jnp)))(vector)

    assert len(by_pytree) == model.prior_count
    np.testing.assert_allclose(list(by_pytree.values()), by_vector, rtol=1e-12)
    first_paths = [paths[0] for paths in model.all_paths]
    assert list(by_pytree) == first_paths


def test_values_by_path_reads_values_too():
    model = af.Collection(g=gaussian_model(sigma=1.0))
    values = af.values_by_path(model, model.instance_from_vector([4.0, 5.0]))
    assert values == {("g", "centre"): 4.0, ("g", "normalization"): 5.0}


# 7. Priors, models and collections ------------------------------------------------------------


def test_priors_models_and_collections_are_pytrees_with_ids_kept():
    prior = af.GaussianPrior(mean=1.0, sigma=2.0)
    new = roundtrip(prior)
    assert (new.mean, new.sigma, new.id) == (1.0, 2.0, prior.id)

    model = af.Collection(g=gaussian_model())
    new = roundtrip(model)
    assert isinstance(new, af.Collection)
    assert new.g.cls is af.ex.Gaussian
    assert new.g.centre.id == model.g.centre.id


# Classes built by hand ------------------------------------------------------------------------


@af.pytree_node
class Shape:
    __static_fields__ = ("n_sides",)

    def __init__(self, size=1.0, n_sides=4):
        self.size = size
        self.n_sides = n_sides


class Square(Shape):
    pass


def test_hand_built_objects_of_a_pytree_node_class_and_its_subclasses_cross_jit():
    f = jax.jit(lambda s: s.size * s.n_sides if s.n_sides > 3 else 0.0)
    assert f(Shape(size=2.0)) == 8.0
    assert f(Square(size=3.0)) == 12.0
    assert tree_flatten(Square(size=3.0))[0] == [3.0]
    for size in (1.0, 2.0, 3.0):
        f(Square(size=size))
    assert f._cache_size() == 2  # one per class


def test_values_by_path_reads_one_copy_of_a_tied_value_on_request():
    centre = af.UniformPrior(-1.0, 1.0)
    first, second = gaussian_model(sigma=1.0), gaussian_model(sigma=2.0)
    first.centre = second.centre = centre
    model = af.Collection(first=first, second=second)
    instance = model.instance_from_vector([0.3, 1.0, 2.0])
    values = af.values_by_path(model, instance, tied="first")
    assert list(values.values()) == [0.3, 1.0, 2.0]
    assert af.values_by_path(model, instance)[("first", "centre")] == 0.6
    with pytest.raises(ValueError, match="tied must be"):
        af.values_by_path(model, instance, tied="mean")


def test_unflattening_placeholders_keeps_the_treedef():
    # JAX unflattens `object()` placeholders (ahead-of-time lowering, in_axes specs);
    # the constructor is not run on them, and the treedef must survive.
    instance = af.Collection(d=derived_model()).instance_from_vector([1.0, 2.0])
    treedef = tree_structure(instance)
    placeholders = jax.tree_util.tree_unflatten(treedef, [object()] * treedef.num_leaves)
    assert tree_structure(placeholders) == treedef

    f = jax.jit(lambda i: i.d.b)
    compiled = f.lower(instance).compile()
    assert compiled(instance) == 2.0


# Tied copies ------------------------------------------------------------------------------------


def tied_model():
    centre = af.UniformPrior(-1.0, 1.0)
    gaussians = []
    for sigma in (0.5, 1.0, 2.0):
        gaussian = gaussian_model(sigma=sigma)
        gaussian.centre = centre
        gaussians.append(gaussian)
    return af.Collection(gaussians=af.Collection(gaussians))


def test_tie_copies_makes_the_copies_of_a_shared_prior_one_value_inside_the_trace():
    model = tied_model()
    instance = model.instance_from_vector([0.3, 1.0, 2.0, 3.0])

    @jax.jit
    def copies_are_one_tracer(i):
        centres = [g.centre for g in af.tie_copies(model, i).gaussians]
        return all(c is centres[0] for c in centres)  # decided at trace time

    assert copies_are_one_tracer(instance)
    assert not jax.jit(lambda i: all(g.centre is i.gaussians[0].centre for g in i.gaussians))(instance)


def test_tie_copies_leaves_values_and_gradients_read_by_name_unchanged():
    model = tied_model()
    vector = jnp.array([0.3, 1.0, 2.0, 3.0])
    instance = model.instance_from_vector(vector)

    def f(i):
        return sum(g.normalization * jnp.exp(-g.centre ** 2 / g.sigma) for g in i.gaussians)

    assert jax.jit(lambda i: f(af.tie_copies(model, i)))(instance) == pytest.approx(float(f(instance)), rel=1e-14)
    tied_grad = af.values_by_path(model, jax.grad(lambda i: f(af.tie_copies(model, i)))(instance))
    by_vector = jax.grad(lambda v: f(model.instance_from_vector(v, xp=jnp)))(vector)
    np.testing.assert_allclose(list(tied_grad.values()), by_vector, rtol=1e-12)
