"""
Strategies and harness for the property "jit of an instance reads what the instance reads".

Shared by `test_property_jit_equals_eager.py` (a short CI run) and
`benchmarks/property_long_run.py` (10,000+ examples). Read top to bottom:

1. the palette: classes a user might write, each listing in `_read` the attributes a
   user reads (no `__dict__` is looked at: inside jit an object may compute them late);
2. `read_everything`: every number an instance shows by attribute access, and
   `jit_read`, ONE jitted copy of it shared by every example of the run;
3. strategies, one per concern: prior limits, fixed values, arguments, models, links,
   vectors, changes;
4. the harness: `run_example` draws a model and a sequence of changes and checks the
   invariant after each, counting outcomes in a `Tally`.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import inspect
import math
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

import autofit as af
import jax
import jax.numpy as jnp
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree
from jax.tree_util import tree_structure, tree_unflatten

try:
    import astropy.units as u
except ImportError:  # astropy is optional
    u = None


# 1. The palette: classes a user might write ------------------------------------------
# Each takes 1-3 float parameters. `_read`: what a user reads; `_private`: state a user
# may set by hand; `_limits`: the prior range of a parameter, where the default
# (0.1, 2.0) does not suit it.


class Plain:
    """Stores its parameters as given."""

    _read = ("a", "b")

    def __init__(self, a=1.0, b=2.0):
        self.a = a
        self.b = b


class Renamed:
    """A parameter behind a read-only property."""

    _read = ("a", "b")
    _private = ("_a",)

    def __init__(self, a=1.0, b=2.0):
        self._a = a
        self.b = b

    @property
    def a(self):
        return self._a


class Transformed:
    """Stores what it computes from its parameters (a new float, not the one given)."""

    _read = ("a", "b")

    def __init__(self, a=1.0, b=2.0):
        self.a = a + 0.0
        self.b = b * 1.0


class AsArray:
    """Stores a parameter as a JAX array."""

    _read = ("a", "b")

    def __init__(self, a=1.0, b=2.0):
        self.a = jnp.asarray(a)
        self.b = b


class ClampPython:
    """Clamps with Python's min: cannot be traced (an error, never a wrong number)."""

    _read = ("q", "a")
    _limits = {"q": (0.5, 1.2)}

    def __init__(self, q=0.5, a=1.0):
        self.q = min(q, 0.95)
        self.a = a


class ClampJax:
    """Clamps with jnp.minimum: traceable."""

    _read = ("q", "a")
    _limits = {"q": (0.5, 1.2)}

    def __init__(self, q=0.5, a=1.0):
        self.q = jnp.minimum(q, 0.95)
        self.a = a


class Derives:
    """Derives an attribute from its parameters."""

    _read = ("a", "scale", "total")

    def __init__(self, a=1.0, scale=2.0):
        self.a = a
        self.scale = scale
        self.total = a * scale


class Validates:
    """Refuses a non-positive sigma."""

    _read = ("centre", "sigma")
    _limits = {"sigma": (-0.5, 2.0)}

    def __init__(self, centre=0.0, sigma=1.0):
        if not sigma > 0:
            raise ValueError("sigma must be positive")
        self.centre = centre
        self.sigma = sigma


class Asserts:
    """Asserts an order between its parameters."""

    _read = ("lower", "upper")
    _limits = {"lower": (0.1, 1.0), "upper": (1.0, 2.0)}

    def __init__(self, lower=0.0, upper=1.0):
        assert lower < upper
        self.lower = lower
        self.upper = upper


class Child:
    _read = ("v", "parent")

    def __init__(self, v):
        self.v = v


class WithChild:
    """Makes a child object that refers back to it (a cycle)."""

    _read = ("a", "child")

    def __init__(self, a=1.0):
        self.a = a
        self.child = Child(a)
        self.child.parent = self


class Slotted:
    __slots__ = ("a", "b", "__weakref__")
    _read = ("a", "b")

    def __init__(self, a=1.0, b=2.0):
        self.a = a
        self.b = b


class SlottedNoWeakref:
    __slots__ = ("a", "b")
    _read = ("a", "b")

    def __init__(self, a=1.0, b=2.0):
        self.a = a
        self.b = b


@dataclasses.dataclass
class Data:
    a: float = 1.0
    b: float = 2.0
    _read = ("a", "b")


@dataclasses.dataclass(frozen=True)
class FrozenData:
    a: float = 1.0
    b: float = 2.0
    _read = ("a", "b")


@dataclasses.dataclass(slots=True)
class SlotsData:
    a: float = 1.0
    b: float = 2.0
    _read = ("a", "b")


class ParamList(list):
    """A list subclass holding its parameters as items."""

    _read = ()

    def __init__(self, a=1.0, b=2.0):
        super().__init__([a, b])


class ParamDict(dict):
    """A dict subclass holding its parameters as items."""

    _read = ()

    def __init__(self, a=1.0, b=2.0):
        super().__init__(a=a, b=b)


class Cached:
    """A functools.cached_property computed from a parameter."""

    _read = ("a", "double")

    def __init__(self, a=1.0):
        self.a = a

    @functools.cached_property
    def double(self):
        return self.a * 2.0


class Located:
    """A tuple parameter (a centre)."""

    _read = ("centre", "r")

    def __init__(self, centre=(0.0, 0.0), r=1.0):
        self.centre = centre
        self.r = r


class Holder:
    """Takes another object (built by a sub-model, or given fixed)."""

    _read = ("inner", "x")

    def __init__(self, inner=None, x=1.0):
        self.inner = inner
        self.x = x


class Scaled:
    """Private state behind a property: given to models as a fixed value."""

    _read = ("scale",)
    _private = ("_scale",)

    def __init__(self, scale=2.0):
        self._scale = scale

    @property
    def scale(self):
        return self._scale


LEAF_CLASSES = (
    Plain, Renamed, Transformed, AsArray, ClampPython, ClampJax, Derives, Validates,
    Asserts, WithChild, Slotted, SlottedNoWeakref, Data, FrozenData, SlotsData,
    ParamList, ParamDict, Cached, Located,
)


def parameter_names(cls) -> Tuple[str, ...]:
    return tuple(inspect.signature(cls.__init__).parameters)[1:]


def limits_of(cls, name) -> Tuple[float, float]:
    return getattr(cls, "_limits", {}).get(name, (0.1, 2.0))


def hand_built(cls):
    """An object of a palette class built by hand (not by a model)."""
    if cls is Located:
        return Located((0.3, 0.4), 0.5)
    if cls is Holder:
        return Holder(Plain(0.3, 0.4), 0.5)
    return cls(*[0.3 + 0.4 * k for k in range(len(parameter_names(cls)))])


# 2. Reading an instance as a user would -------------------------------------------------


def _is_quantity(obj) -> bool:
    return u is not None and isinstance(obj, u.Quantity)


def read_everything(obj) -> dict:
    """{path: jnp array} of every number `obj` shows by attribute access."""
    out = {}
    _read_into(out, obj, "", ())
    return out


def _read_into(out: dict, obj, path: str, ancestors: tuple) -> None:
    if obj is None or isinstance(obj, (str, bytes, type)):
        return
    if _is_quantity(obj):  # its unit is part of what it reads
        out[f"{path}[{obj.unit}]"] = jnp.asarray(obj.value)
        return
    if isinstance(obj, (bool, int, float, complex, np.number, np.bool_, np.ndarray, jax.Array)):
        out[path] = jnp.asarray(obj)
        return
    if id(obj) in ancestors:  # a back-reference
        return
    ancestors = ancestors + (id(obj),)
    if isinstance(obj, af.ModelInstance):
        for key, value in obj.dict.items():
            _read_into(out, value, f"{path}.{key}", ancestors)
        return
    if isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _read_into(out, value, f"{path}[{i}]", ancestors)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _read_into(out, value, f"{path}[{key!r}]", ancestors)
    for name in getattr(type(obj), "_read", ()):
        try:
            value = getattr(obj, name)
        except AttributeError:  # deleted by a change: nothing to read
            continue
        _read_into(out, value, f"{path}.{name}", ancestors)


# ONE jitted reader for the whole run, as a notebook shares one jitted likelihood: a jit
# cache that aliases two models shows only this way.
jit_read = jax.jit(read_everything)


# XLA may reorder the arithmetic of a traced function (3 * (3 * x) becomes 9 * x), which
# changes a computed value in its last bits: jit of a flat-vector function does the same.
ROUNDING_ULPS = 4


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal, NaN to NaN, -0.0 only to -0.0, or apart by XLA's rounding of a computed value."""
    if np.array_equal(a, b, equal_nan=True):
        return np.array_equal(np.signbit(a.real), np.signbit(b.real))
    if a.dtype.kind not in "fc" or b.dtype.kind not in "fc":
        return False
    scale = np.maximum(np.abs(a), np.abs(b))
    close = np.abs(a - b) <= ROUNDING_ULPS * np.finfo(np.float64).eps * scale
    return bool(np.all(close | (np.isnan(a) & np.isnan(b))))


def differences(got: dict, expected: dict) -> List[str]:
    """What differs between two readings: keys, shapes, values (see `_equal`)."""
    if sorted(got) != sorted(expected):  # jit gives its dict back with sorted keys
        return [f"keys {sorted(got)} != {sorted(expected)}"]
    found = []
    for key in expected:
        a, b = np.asarray(got[key]), np.asarray(expected[key])
        if a.shape != b.shape:
            found.append(f"{key}: shape {a.shape} != {b.shape}")
        elif not _equal(a, b):
            found.append(f"{key}: {a!r} != {b!r}")
    return found


# 3. Strategies ---------------------------------------------------------------------------


def prior_limits(cls, name):
    """The prior range of parameter `name`: the class's own, or one over zero."""
    return st.sampled_from([limits_of(cls, name), (-1.0, 1.0)])


def _quantity():
    return 3.0 * u.kpc


FIXED_VALUE_MAKERS = {
    "float": lambda: 0.7,
    "nan": lambda: float("nan"),
    "minus zero": lambda: -0.0,
    "array": lambda: np.array([1.0, 2.0]),
    "object with private state": lambda: Scaled(2.0),
    "hand-built object": lambda: Plain(0.3, 0.4),
}
if u is not None:
    FIXED_VALUE_MAKERS["quantity"] = _quantity


def fixed_values():
    """A value a model is given fixed (made anew per draw: it may be changed in place)."""
    return st.sampled_from(sorted(FIXED_VALUE_MAKERS)).map(lambda kind: FIXED_VALUE_MAKERS[kind]())


@dataclasses.dataclass
class Slot:
    """A place in a model holding a prior: `setattr(holder, name, ...)` edits it."""

    holder: Any
    name: str

    def get(self):
        return getattr(self.holder, self.name)

    def set(self, value):
        setattr(self.holder, self.name, value)


@dataclasses.dataclass
class Built:
    """A drawn model, the slots holding its priors, and how it was drawn (for shrinks)."""

    model: Any
    slots: List[Slot]
    recipe: str


@st.composite
def argument(draw, cls, name, slots: List[Slot], holder_ref: list):
    """A constructor argument: a prior (most often) or a fixed value."""
    if draw(st.integers(0, 4)) == 0:
        return draw(fixed_values()), "fixed"
    if cls is Located and name == "centre":
        lower, upper = draw(prior_limits(cls, name))
        tuple_prior = af.TuplePrior(
            centre_0=af.UniformPrior(lower, upper), centre_1=af.UniformPrior(lower, upper)
        )
        slots += [Slot(tuple_prior, "centre_0"), Slot(tuple_prior, "centre_1")]
        return tuple_prior, "tuple prior"
    lower, upper = draw(prior_limits(cls, name))
    holder_ref.append(name)
    return af.UniformPrior(lower, upper), f"U({lower}, {upper})"


@st.composite
def leaf_models(draw, slots: List[Slot]):
    """af.Model of one palette class."""
    cls = draw(st.sampled_from(LEAF_CLASSES))
    kwargs, recipe, prior_names = {}, [], []
    for name in parameter_names(cls):
        kwargs[name], how = draw(argument(cls, name, slots, prior_names))
        recipe.append(f"{name}={how}")
    model = af.Model(cls, **kwargs)
    slots += [Slot(model, name) for name in prior_names]
    return model, f"Model({cls.__name__}, {', '.join(recipe)})"


@st.composite
def nested_models(draw, slots: List[Slot]):
    """af.Model(Holder, inner=<a sub-model or a hand-built object>, x=...)."""
    if draw(st.booleans()):
        inner, inner_recipe = draw(leaf_models(slots))
    else:
        cls = draw(st.sampled_from(LEAF_CLASSES))
        inner, inner_recipe = hand_built(cls), f"hand-built {cls.__name__}"
    names = []
    x, how = draw(argument(Holder, "x", slots, names))
    model = af.Model(Holder, inner=inner, x=x)
    slots += [Slot(model, name) for name in names]
    return model, f"Model(Holder, inner={inner_recipe}, x={how})"


@st.composite
def array_models(draw, slots: List[Slot]):
    """af.Array(shape=(2,)) of uniform priors, sometimes with one element fixed."""
    array = af.Array(shape=(2,), prior=af.UniformPrior(0.0, 1.0))
    fixed = draw(st.booleans())
    if fixed:
        array[0] = 0.5
    return array, f"Array((2,), fixed first={fixed})"


def components(slots: List[Slot]):
    """One component of a model."""
    return st.one_of(leaf_models(slots), nested_models(slots), array_models(slots))


@st.composite
def collection_models(draw, slots: List[Slot]):
    """af.Collection of 1-3 components, and sometimes a fixed value."""
    items, recipe = {}, []
    for k in range(draw(st.integers(1, 3))):
        items[f"c{k}"], how = draw(components(slots))
        recipe.append(f"c{k}={how}")
    if draw(st.booleans()):
        kind = draw(st.sampled_from(sorted(FIXED_VALUE_MAKERS)))
        items["fixed"] = FIXED_VALUE_MAKERS[kind]()
        recipe.append(f"fixed={kind}")
    return af.Collection(**items), f"Collection({', '.join(recipe)})"


LINKS = {
    "shared": lambda prior: prior,
    "2 *": lambda prior: 2 * prior,
    "3 *": lambda prior: 3 * prior,
    "+ 1.0": lambda prior: prior + 1.0,
}


@st.composite
def links(draw, slots: List[Slot]):
    """0-2 slots made to follow another: shared (m2.x = m1.x) or by arithmetic."""
    done = []
    for _ in range(draw(st.integers(0, 2))):
        if len(slots) < 2:
            break
        source, target = draw(st.lists(st.sampled_from(range(len(slots))), min_size=2, max_size=2, unique=True))
        kind = draw(st.sampled_from(sorted(LINKS)))
        slots[target].set(LINKS[kind](slots[source].get()))
        done.append(f"{slots[target].name} = {kind} {slots[source].name}")
    return done


@st.composite
def models(draw):
    """A model: one component or a collection, with links between its priors."""
    slots: List[Slot] = []
    model, recipe = draw(st.one_of(components(slots), collection_models(slots)))
    done = draw(links(slots))
    if done:
        recipe += "; " + "; ".join(done)
    return Built(model, slots, recipe)


def free_priors(model) -> list:
    return [t.prior for t in model.prior_tuples_ordered_by_id]


@st.composite
def vectors(draw, model, outside=True):
    """A physical vector for `model`: inside the prior limits, or (`outside`) some way outside."""
    units = draw(st.lists(
        st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.62, 0.9, 1.0]) | st.floats(-0.5 if outside else 0.0, 1.5 if outside else 1.0),
        min_size=model.prior_count, max_size=model.prior_count,
    ))
    vector = []
    for prior, unit in zip(free_priors(model), units):
        lower, upper = prior.lower_limit, prior.upper_limit
        vector.append(float(lower + unit * (upper - lower)))
    return np.array(vector, dtype=float)


# Changes: each is (description, function of the harness state) --------------------------


@dataclasses.dataclass
class Spot:
    """Where a value sits in an instance: `steps` from the root, the last one here."""

    steps: tuple  # (("attr", name) | ("item", key), ...)
    parent: Any
    value: Any

    @property
    def last(self):
        return self.steps[-1]

    def set(self, value):
        kind, key = self.last
        if kind == "attr":
            setattr(self.parent, key, value)
        else:
            self.parent[key] = value

    def delete(self):
        kind, key = self.last
        if kind == "attr":
            delattr(self.parent, key)
        else:
            del self.parent[key]

    def __str__(self):
        return "".join(f".{k}" if kind == "attr" else f"[{k!r}]" for kind, k in self.steps)


def spots(root) -> List[Spot]:
    """Every value the reader reaches in `root` (objects, numbers, private state)."""
    found = []

    def walk(obj, steps, ancestors):
        if id(obj) in ancestors or isinstance(obj, (str, bytes, type)) or obj is None:
            return
        if _is_quantity(obj) or isinstance(obj, (int, float, complex, np.number, np.ndarray, jax.Array)):
            return
        ancestors = ancestors | {id(obj)}
        children = []
        if isinstance(obj, af.ModelInstance):
            children = [(("attr", k), v) for k, v in obj.dict.items()]
        else:
            if isinstance(obj, (list, dict)):  # tuples cannot be changed in place
                keys = obj.keys() if isinstance(obj, dict) else range(len(obj))
                children = [(("item", k), obj[k]) for k in keys]
            for name in getattr(type(obj), "_read", ()) + getattr(type(obj), "_private", ()):
                try:
                    children.append((("attr", name), getattr(obj, name)))
                except AttributeError:
                    pass
        for step, value in children:
            found.append(Spot(steps + (step,), obj, value))
            walk(value, steps + (step,), ancestors)

    walk(root, (), frozenset())
    return found


def resolve(root, steps):
    """The value at `steps` in another instance of the model, or None."""
    obj = root
    try:
        for kind, key in steps:
            obj = getattr(obj, key) if kind == "attr" else obj[key]
    except (AttributeError, KeyError, IndexError, TypeError):
        return None
    return obj


def _is_number(value) -> bool:
    return isinstance(value, (float, int, np.floating)) or (
        isinstance(value, jax.Array) and value.ndim == 0
    )


def _is_palette_object(value) -> bool:
    return type(value) in LEAF_CLASSES + (Holder, Scaled, Child)


numbers = st.sampled_from([1.3, 0.0, -0.0, float("nan"), 0.99]) | st.floats(-3.0, 3.0)


@st.composite
def instance_changes(draw, state):
    """A change to the current instance: (description, what it does)."""
    all_spots = spots(state.instance)
    by_kind = {
        "set a number": [s for s in all_spots if _is_number(s.value)],
        "change an array in place": [
            # A constant array is made read-only once its instance crossed JAX: made
            # writable again on purpose, as a user may.
            s for s in all_spots if isinstance(s.value, np.ndarray) and s.value.size
            and (s.value.flags.writeable or s.value.base is None)
        ],
        "replace a value": all_spots,
        "replace an object": [s for s in all_spots if _is_palette_object(s.value)],
        "add an attribute": [s for s in all_spots if _is_palette_object(s.value) or isinstance(s.value, af.ModelInstance)],
        "delete an attribute": [s for s in all_spots if s.last[0] == "attr"],
    }
    kinds = [k for k, found in by_kind.items() if found]
    if not kinds:
        return None
    kind = draw(st.sampled_from(kinds))
    spot = draw(st.sampled_from(by_kind[kind]))
    if kind == "set a number":
        value = draw(numbers)
        return f"{spot} = {value!r}", lambda: spot.set(value)
    if kind == "change an array in place":
        value = draw(numbers)

        def change():
            spot.value.flags.writeable = True
            spot.value[0] = value

        return f"{spot}[0] = {value!r} (in place)", change
    if kind == "replace a value":
        value = draw(fixed_values())
        return f"{spot} = {value!r}", lambda: spot.set(value)
    if kind == "replace an object":
        how = draw(st.sampled_from(["built by the model", "hand-built, same class", "hand-built, other class"]))
        if how == "built by the model":
            try:
                fresh = state.built.model.instance_from_vector(draw(vectors(state.built.model)))
            except Exception:  # noqa: BLE001 - a constructor refused the vector
                return None
            value = resolve(fresh, spot.steps)
        elif how == "hand-built, same class":
            value = hand_built(type(spot.value))
        else:
            value = hand_built(draw(st.sampled_from(LEAF_CLASSES)))
        return f"{spot} = {how} {type(value).__name__}", lambda: spot.set(value)
    if kind == "add an attribute":
        return f"{spot}.extra = 1.5", lambda: setattr(spot.value, "extra", 1.5)
    return f"del {spot}", spot.delete


@st.composite
def model_edits(draw, state):
    """An edit of the model after instances exist: a prior replaced, fixed, or linked."""
    slots = state.built.slots
    if not slots:
        return None
    index = draw(st.sampled_from(range(len(slots))))
    slot = slots[index]
    kind = draw(st.sampled_from(["replace the prior", "fix", "link"]))
    if kind == "replace the prior":
        return f"model {slot.name} = U(0.2, 3.0)", lambda: slot.set(af.UniformPrior(0.2, 3.0))
    if kind == "fix":
        return f"model {slot.name} = 0.5", lambda: slot.set(0.5)
    source = slots[draw(st.sampled_from(range(len(slots))))]
    return f"model {slot.name} = 2 * {source.name}", lambda: slot.set(2 * source.get())


# 4. The harness ------------------------------------------------------------------------------

REFUSAL_KINDS = {
    "copy of the parameter": "shared copy changed",
    "but the model built a": "object swapped",
    "was added after the model": "attribute added",
    "is gone, but the model built it": "attribute missing",
    "does not hold the parameter": "parameter not kept",
    "__slots__ and its constructor derives": "derived on slots",
    "static data of the pytree": "traced static value",
    "holds none of its parameters": "no parameter held",
}


def refusal_kind(error) -> str:
    text = str(error)
    for fragment, kind in REFUSAL_KINDS.items():
        if fragment in text:
            return kind
    return "other: " + text[:60]


class Mismatch(AssertionError):
    """jit and eager disagree, or the leaves are not the vector: a wrong number."""


@dataclasses.dataclass
class Tally:
    """Outcomes of a run. `strict`: raise at the first mismatch (the CI test does)."""

    strict: bool = True
    examples: int = 0
    changes: int = 0
    checks: int = 0
    refusals: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    errors: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    error_messages: dict = dataclasses.field(default_factory=dict)  # kind -> first message
    mismatches: int = 0
    mismatch_examples: list = dataclasses.field(default_factory=list)
    keep_mismatches: int = 20

    def refused(self, error):
        self.refusals[refusal_kind(error)] += 1

    def errored(self, where: str, error, state: Optional["State"] = None):
        kind = f"{where}: {type(error).__name__}"
        self.errors[kind] += 1
        if kind not in self.error_messages:
            text = str(error)[:300]
            self.error_messages[kind] = text if state is None else _describe(state, text, [])

    def mismatch(self, text: str):
        self.mismatches += 1
        if len(self.mismatch_examples) < self.keep_mismatches:
            self.mismatch_examples.append(text)
        if self.strict:
            raise Mismatch(text)

    def as_dict(self) -> dict:
        return {
            "examples": self.examples,
            "changes_applied": self.changes,
            "checks": self.checks,
            "refusals": dict(self.refusals.most_common()),
            "other_errors": dict(self.errors.most_common()),
            "other_error_messages": self.error_messages,
            "mismatches": self.mismatches,
            "mismatch_examples": self.mismatch_examples,
        }


@dataclasses.dataclass
class State:
    built: Built
    instance: Any
    history: list


def check_jit_equals_eager(state: State, tally: Tally) -> None:
    """Invariant 2: the shared jitted reader reads what the instance reads, or a refusal."""
    tally.checks += 1
    try:
        jax.tree_util.tree_leaves(state.instance)
    except af.PytreeError as e:
        tally.refused(e)
        return
    except Exception as e:  # noqa: BLE001 - counted: an error is not a wrong number
        tally.errored("flatten", e, state)
        return
    try:
        eager = read_everything(state.instance)
    except Exception as e:  # noqa: BLE001
        tally.errored("eager read", e, state)
        return
    try:
        jitted = jit_read(state.instance)
    except af.PytreeError as e:
        tally.refused(e)
        return
    except Exception as e:  # noqa: BLE001
        tally.errored("jit read", e, state)
        return
    found = differences(jitted, eager)
    if found:
        tally.mismatch(_describe(state, "jit_read(instance) != read_everything(instance)", found))


def check_fresh_instance(state: State, vector, other, tally: Tally) -> None:
    """Invariant 1: the leaves are the vector; unflattening another vector is that instance."""
    tally.checks += 1
    model = state.built.model
    try:
        flat, _ = ravel_pytree(state.instance)
    except af.PytreeError as e:
        tally.refused(e)
        return
    except Exception as e:  # noqa: BLE001
        tally.errored("ravel", e, state)
        return
    if flat.shape != vector.shape or not np.array_equal(flat, vector, equal_nan=True):
        tally.mismatch(_describe(state, f"ravel_pytree(instance) {np.asarray(flat)!r} != vector {vector!r}", []))
        return
    try:
        expected = read_everything(model.instance_from_vector(other))
    except Exception:  # noqa: BLE001 - the model itself refuses that vector
        return
    treedef = tree_structure(state.instance)
    if jax.tree_util.treedef_is_leaf(treedef):
        return  # an af.Array at the root builds an array: its own single leaf
    try:
        made = tree_unflatten(treedef, list(other))
        got = read_everything(made)
    except Exception as e:  # noqa: BLE001
        tally.errored("unflatten", e, state)
        return
    found = differences(got, expected)
    if found:
        tally.mismatch(_describe(state, f"tree_unflatten(treedef, {list(other)}) != instance_from_vector", found))


def _describe(state: State, what: str, found: List[str]) -> str:
    lines = [what, f"model: {state.built.recipe}", *[f"  after: {h}" for h in state.history], *found[:6]]
    return "\n".join(lines)


def fresh_instance(draw, built: Built, tally: Tally, history: list) -> Optional[State]:
    """A new instance of the model, checked by both invariants; None if it cannot be built."""
    model = built.model
    vector = draw(vectors(model), label="vector")
    # Unflattened inside the priors only: what a constructor does outside them is seen when
    # an instance built there is flattened, not by unflattening a vector there (README).
    other = draw(vectors(model, outside=False), label="other vector")
    try:
        instance = model.instance_from_vector(vector)
    except Exception:  # noqa: BLE001 - a constructor refused the vector (validation)
        return None
    state = State(built, instance, history + [f"instance_from_vector({list(vector)})"])
    check_fresh_instance(state, vector, other, tally)
    check_jit_equals_eager(state, tally)
    return state


def run_example(draw, tally: Tally, max_changes: int = 4) -> None:
    """Draw a model and a sequence of changes; check the invariants after each."""
    built = draw(models(), label="model")
    tally.examples += 1
    state = fresh_instance(draw, built, tally, [])
    if state is None:
        return
    for _ in range(draw(st.integers(0, max_changes), label="number of changes")):
        if draw(st.integers(0, 4), label="edit the model?") == 0:
            change = draw(model_edits(state), label="model edit")
        else:
            change = draw(instance_changes(state), label="instance change")
        if change is None:
            continue
        description, apply = change
        try:
            apply()
        except Exception:  # noqa: BLE001 - a change the object does not allow (frozen, slots)
            continue
        tally.changes += 1
        state.history.append(description)
        check_jit_equals_eager(state, tally)  # the old instance, after the change
        if description.startswith("model "):
            new = fresh_instance(draw, built, tally, state.history)
            if new is None:
                return
            state = new
