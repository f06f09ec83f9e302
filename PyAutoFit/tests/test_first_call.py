"""
Every JAX transform and client works on an instance as the first JAX operation of a
fresh interpreter, whatever way the instance was made.

Each case runs in a subprocess of its own: state that warms up (module caches, lazy
registration, a model's blueprint) must not depend on where it was first needed, and
only a fresh interpreter shows that.
"""
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    '''
    import sys
    way, transform = sys.argv[1], sys.argv[2]

    import numpy as np
    import autofit as af


    class WithDerived:
        def __init__(self, a=1.0, scale=2.0):
            self.a = a
            self.scale = scale
            self.b = scale * a  # derived: computed on read from the parameters


    first = af.Model(af.ex.Gaussian)
    second = af.Model(af.ex.Gaussian)
    second.centre = first.centre  # a shared parameter: one leaf
    model = af.Collection(
        first=first,
        second=second,
        derived=af.Model(WithDerived, a=af.UniformPrior(0.5, 2.0), scale=af.UniformPrior(1.0, 3.0)),
    )
    # the instance's parameters: the prior medians for Python floats, else these
    units = [0.5 if way == "python floats" else 0.4] * model.prior_count
    vector = np.array(model.vector_from_unit_vector(units))
    if way == "numpy vector":
        instance = model.instance_from_vector(vector)
    elif way == "python floats":
        instance = model.instance_from_prior_medians()
    else:  # JAX scalars
        import jax.numpy as jnp

        instance = model.instance_from_vector([jnp.asarray(v) for v in vector])

    import jax
    import jax.numpy as jnp


    def f(i):
        return i.first.centre ** 2 * i.second.sigma + i.first.normalization * i.derived.b


    def expected_gradient():
        # d f / d centre, by central differences of the flat path (no JAX)
        h = 1e-6
        up, down = vector.copy(), vector.copy()
        up[0] += h
        down[0] -= h
        return (f(model.instance_from_vector(up)) - f(model.instance_from_vector(down))) / (2 * h)


    def close(value, expected):
        assert abs(float(value) - float(expected)) <= 1e-5 * abs(float(expected)), (value, expected)


    if transform == "jit(grad)":
        close(jax.jit(jax.grad(f))(instance).first.centre, expected_gradient())
    elif transform == "jit(value_and_grad)":
        value, grad = jax.jit(jax.value_and_grad(f))(instance)
        close(value, f(instance))
        close(grad.first.centre, expected_gradient())
    elif transform == "jit(jacfwd)":
        close(jax.jit(jax.jacfwd(f))(instance).first.centre, expected_gradient())
    elif transform == "hessian":
        hessian = jax.hessian(f)(instance)
        close(hessian.first.centre.first.centre, 2 * instance.second.sigma)
    elif transform == "vmap(grad)":
        batch = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), instance)
        grads = jax.vmap(jax.grad(f))(batch)
        close(grads.first.centre[1], expected_gradient())
    elif transform == "jit(grad(checkpoint))":
        close(jax.jit(jax.grad(jax.checkpoint(f)))(instance).first.centre, expected_gradient())
    elif transform == "jit(lambda: grad)":
        close(jax.jit(lambda i: jax.grad(f)(i))(instance).first.centre, expected_gradient())
    elif transform == "scan with the instance as carry":
        def step(carry, _):
            return jax.tree_util.tree_map(lambda x: x * 1.0, carry), f(carry)

        carry, values = jax.lax.scan(step, instance, None, length=3)
        close(values[2], f(instance))
        close(carry.derived.b, instance.derived.b)
    elif transform == "eval_shape":
        assert jax.eval_shape(f, instance).shape == ()
    elif transform == "tree_unflatten inside jit":
        treedef = jax.tree_util.tree_structure(instance)
        close(jax.jit(lambda v: f(jax.tree_util.tree_unflatten(treedef, list(v))))(jnp.asarray(vector)), f(instance))
    elif transform == "a model first used inside jit":
        built = jax.jit(lambda v: model.instance_from_vector(v, xp=jnp))(jnp.asarray(vector))
        close(built.derived.b, model.instance_from_vector(vector).derived.b)
    elif transform == "optax init":
        import optax

        state = optax.adam(1e-2).init(instance)
        assert float(state[0].mu.first.centre) == 0.0
    else:
        raise ValueError(transform)
    print("ok")
    '''
)

TRANSFORMS = [
    "jit(grad)",
    "jit(value_and_grad)",
    "jit(jacfwd)",
    "hessian",
    "vmap(grad)",
    "jit(grad(checkpoint))",
    "jit(lambda: grad)",
    "scan with the instance as carry",
    "eval_shape",
    "tree_unflatten inside jit",
    "a model first used inside jit",
    "optax init",
]
WAYS = ["numpy vector", "python floats", "jax scalars"]


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_the_first_jax_call_of_a_fresh_interpreter(transform, way):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, way, transform],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "ok"
