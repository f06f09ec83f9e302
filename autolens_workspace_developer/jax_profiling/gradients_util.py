"""
Gradients, Hessians and 1-sigma errors of a JAX likelihood taken over a model instance, by parameter name.

A model instance is a pytree whose leaves are the model's free parameters (one leaf per prior, in the order of
the flat parameter vector), so:

- `jax.grad(likelihood)(instance)` is an instance-shaped gradient, read by name with `profiling_util.values_by_name`,
- the Hessian is taken over the same leaves laid out as a vector (`jax.hessian` of the likelihood of the
  instance rebuilt from that vector), and its rows and columns are named by the same paths,
- the Fisher matrix is minus the Hessian of the log likelihood, and the 1-sigma errors are the square roots of
  the diagonal of its inverse (where it is positive definite).

The MGE likelihood solves for the Gaussians' intensities with a non-negative inversion. Its derivatives go
through the PyAutoArray series' active-set rule for that solve (`autoarray.inversion.inversion.nnls_active_set`):
a `jax.custom_jvp`, so reverse mode, forward mode and `jax.hessian` (forward over reverse) all work.

Every timing waits for its result (`profiling_util.time_jit`).
"""
import os

os.environ.setdefault("JAX_ENABLE_X64", "True")

from typing import Callable, Dict, List, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

import profiling_util as util


"""
__The Leaves As A Vector__
"""


def vector_function(likelihood: Callable, instance) -> Tuple[Callable, jnp.ndarray]:
    """
    The likelihood as a function of the vector of the instance's leaves, and that vector at `instance`.

    The instance is rebuilt from the vector with its own tree structure (`tree_unflatten`), so this is the
    pytree path, not `instance_from_vector`; it exists only to lay the Hessian out as a matrix.
    """
    leaves, treedef = jax.tree_util.tree_flatten(instance)

    def likelihood_of_vector(vector):
        return likelihood(jax.tree_util.tree_unflatten(treedef, [vector[i] for i in range(len(leaves))]))

    return likelihood_of_vector, jnp.asarray([jnp.asarray(leaf) for leaf in leaves])


"""
__Gradient__
"""


def time_gradient(likelihood: Callable, instance, repeats: int = 10) -> Dict:
    """
    `jax.jit(jax.grad(likelihood))(instance)`, timed as `profiling_util.time_jit` times the likelihood: lower,
    compile, first call and steady state. `"result"` is the instance-shaped gradient.
    """
    return util.time_jit(jax.grad(likelihood), instance, repeats=repeats)


def finite_difference_gradient(
    likelihood: Callable, model, vector: Sequence[float], step: float = 1e-4
) -> Dict[str, float]:
    """
    The gradient by central differences of `likelihood` (a compiled likelihood of an instance, or an eager
    one) on instances built from `vector` with one parameter moved: the fourth-order stencil
    (8 [f(h) - f(-h)] - [f(2h) - f(-2h)]) / 12h, with h = `step` max(1, |value|). Its truncation error is
    O(h^4), so a step large enough to keep rounding error small (~eps |log L| / h) is still accurate.
    """
    vector = np.asarray(vector, dtype=float)

    def value(v):
        return float(likelihood(model.instance_from_vector(vector=list(v))))

    gradient = central_differences(value, vector, step)
    names = util.leaf_names(model.instance_from_vector(vector=list(vector)))
    return dict(zip(names, gradient))


def central_differences(value: Callable, vector: np.ndarray, step: float) -> List:
    """
    d value / d vector[i] for each i by the fourth-order stencil (8 [f(h) - f(-h)] - [f(2h) - f(-2h)]) / 12h,
    h = `step` max(1, |vector[i]|); `value` may return a scalar or an array.
    """
    derivatives = []
    for i in range(vector.size):
        h = step * max(1.0, abs(vector[i]))
        e = np.zeros_like(vector)
        e[i] = h
        derivatives.append(
            (8.0 * (value(vector + e) - value(vector - e)) - (value(vector + 2 * e) - value(vector - 2 * e)))
            / (12.0 * h)
        )
    return derivatives


def relative_errors(gradient: Dict[str, float], reference: Dict[str, float]) -> Dict[str, float]:
    """|gradient - reference| / |reference| per parameter name."""
    return {
        name: abs(gradient[name] - reference[name]) / max(abs(reference[name]), np.finfo(float).tiny)
        for name in reference
    }


"""
__Hessian And Errors__
"""


def time_hessian(likelihood: Callable, instance, repeats: int = 1) -> Dict:
    """
    The Hessian of `likelihood` over the instance's leaves, `jax.jit(jax.hessian(...))` (forward over reverse),
    timed as `profiling_util.time_jit` times the likelihood. `"result"` is the (n, n) matrix, in the order of
    `profiling_util.leaf_names`.

    `hessian_from_gradient_differences` is its cross-check, and needs no further compile.
    """
    likelihood_of_vector, vector = vector_function(likelihood, instance)
    return util.time_jit(jax.hessian(likelihood_of_vector), vector, repeats=repeats)


def hessian_from_gradient_differences(
    gradient: Callable, model, vector: Sequence[float], step: float = 1e-4
) -> np.ndarray:
    """
    The Hessian by fourth-order central differences of a compiled gradient (`time_gradient(...)["jitted"]`),
    one column per parameter, h = `step` max(1, |value|): 4 n gradient calls and no further compile. A
    cross-check of `time_hessian`, and the cheaper choice when compiling `jax.hessian` of a large likelihood
    takes longer than the calls. Not symmetrized, so its asymmetry measures the differencing error.
    """
    vector = np.asarray(vector, dtype=float)

    def value(v):
        tree = gradient(model.instance_from_vector(vector=list(v)))
        return np.array(list(util.values_by_name(tree).values()))

    return np.array(central_differences(value, vector, step)).T


def hessian_by_name(hessian, names: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """{row name: {column name: value}}."""
    hessian = np.asarray(hessian)
    return {
        row: {column: float(hessian[i, j]) for j, column in enumerate(names)}
        for i, row in enumerate(names)
    }


def errors_from_hessian(hessian, names: Sequence[str]) -> Dict:
    """
    The 1-sigma errors from the Fisher matrix F = -H of the log likelihood: sqrt(diag(F^-1)) by name.

    They are Gaussian (Laplace) errors, valid only where F is positive definite, i.e. at (or near) a maximum
    of the likelihood. Away from one the errors are None. Returned with F's eigenvalues and the largest
    relative asymmetry of H (a check: a Hessian of a smooth function is symmetric).
    """
    hessian = np.asarray(hessian)
    asymmetry = float(np.max(np.abs(hessian - hessian.T)) / np.max(np.abs(hessian)))
    fisher = -0.5 * (hessian + hessian.T)
    eigenvalues = np.linalg.eigvalsh(fisher)
    positive_definite = bool(eigenvalues[0] > 0.0)
    errors = None
    if positive_definite:
        covariance = np.linalg.inv(fisher)
        errors = dict(zip(names, (float(value) for value in np.sqrt(np.diag(covariance)))))
    return {
        "finite": bool(np.all(np.isfinite(hessian))),
        "relative_asymmetry": asymmetry,
        "fisher_positive_definite": positive_definite,
        "fisher_eigenvalues": [float(value) for value in eigenvalues],
        "errors": errors,
    }


"""
__Gradient Along A Scan__
"""


def gradient_scan(likelihood: Callable, instance, name: str, values) -> Tuple[np.ndarray, np.ndarray, Dict]:
    """
    The log likelihood and its derivative with respect to the leaf called `name` (e.g. 'einstein_radius'),
    at each of `values`, every other leaf held at `instance`: one `jax.vmap` of `jax.value_and_grad` over that
    leaf alone (the others are broadcast, `in_axes` None). Returns (log likelihoods, derivatives, timing).
    """

    scanned = util.leaf_named(instance, name)
    values = jnp.asarray(values)
    scan_instance = jax.tree_util.tree_map(lambda hit, leaf: values if hit else leaf, scanned, instance)
    in_axes = jax.tree_util.tree_map(lambda hit: 0 if hit else None, scanned)

    def value_and_derivative(instance):
        value, gradient = jax.value_and_grad(likelihood)(instance)
        derivative = [leaf for hit, leaf in zip(jax.tree_util.tree_leaves(scanned), jax.tree_util.tree_leaves(gradient)) if hit]
        return value, derivative[0]

    timing = util.time_jit(jax.vmap(value_and_derivative, in_axes=(in_axes,)), scan_instance, repeats=1)
    log_likelihoods, derivatives = timing["result"]
    return np.asarray(log_likelihoods), np.asarray(derivatives), timing


def plot_scan_with_gradient(
    values, log_likelihoods, derivatives, path, truth: float = None, label: str = "Einstein radius (arcsec)", title: str = ""
):
    """
    Two panels sharing the x axis: the log likelihood along the scan, and below it its derivative from
    `jax.grad` (points) against the centred differences of the scanned log likelihoods (line), which it should
    follow where the scan is fine enough. The derivative crosses zero at the maximum.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(values)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True)

    top.plot(values, log_likelihoods, "o-", color="#4C72B0", markersize=4)
    top.set_ylabel("log likelihood")
    if title:
        top.set_title(title, fontsize=10)

    bottom.axhline(0.0, color="grey", linewidth=0.8)
    bottom.plot(
        values, np.gradient(np.asarray(log_likelihoods), values), "-", color="#8C8C8C",
        label="differences of the scan",
    )
    bottom.plot(values, derivatives, "o", color="#DD8452", markersize=4, label="jax.grad")
    bottom.set_ylabel("d log likelihood / d parameter")
    bottom.set_xlabel(label)

    for axis in (top, bottom):
        if truth is not None:
            axis.axvline(truth, color="#C44E52", linestyle="--", label=f"simulated: {truth}" if axis is top else None)
    top.legend()
    bottom.legend()

    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)
    return path


"""
__Summary__
"""


def gradient_summary(
    likelihood_timing: Dict,
    gradient_timing: Dict,
    gradient: Dict[str, float],
    finite_differences: Dict[str, float] = None,
    hessian_timing: Dict = None,
    errors: Dict = None,
) -> Dict:
    """The numbers to print and write to JSON: times, the gradient/likelihood ratio, errors by name."""
    summary = {
        "likelihood": util.timings_only(likelihood_timing),
        "gradient": util.timings_only(gradient_timing),
        "gradient_over_likelihood_steady": gradient_timing["steady_per_call_s"]
        / likelihood_timing["steady_per_call_s"],
        "gradient_by_name": gradient,
        "gradient_finite": bool(np.all(np.isfinite(list(gradient.values())))),
    }
    if finite_differences is not None:
        relative = relative_errors(gradient, finite_differences)
        summary["finite_difference_gradient"] = finite_differences
        summary["relative_error_vs_finite_differences"] = relative
        summary["max_relative_error"] = max(relative.values())
    if hessian_timing is not None:
        summary["hessian"] = util.timings_only(hessian_timing)
    if errors is not None:
        summary["hessian_check"] = {key: value for key, value in errors.items() if key != "errors"}
        summary["one_sigma_errors"] = errors["errors"]
    return summary


def print_gradient_summary(summary: Dict):
    gradient = summary["gradient"]
    width = max(len("parameter"), *map(len, summary["gradient_by_name"]))
    print(
        f"  grad: lower {gradient['lower_s']:.2f} s | compile {gradient['compile_s']:.2f} s | "
        f"steady {1e3 * gradient['steady_per_call_s']:.2f} ms "
        f"({summary['gradient_over_likelihood_steady']:.2f} x the likelihood)"
    )
    relative = summary.get("relative_error_vs_finite_differences", {})
    sigmas = summary.get("one_sigma_errors") or {}
    print(f"  {'parameter':<{width}} {'d logL / d p':>14} {'rel. err vs FD':>15} {'1-sigma':>11}")
    for name, value in summary["gradient_by_name"].items():
        error = f"{relative[name]:.1e}" if name in relative else "-"
        sigma = f"{sigmas[name]:.3g}" if name in sigmas else "-"
        print(f"  {name:<{width}} {value:>14.6g} {error:>15} {sigma:>11}")
    if "max_relative_error" in summary:
        print(f"  largest relative error vs central differences: {summary['max_relative_error']:.2e}")
    if "hessian_check" in summary:
        check = summary["hessian_check"]
        print(
            f"  Hessian: finite {check['finite']}, relative asymmetry {check['relative_asymmetry']:.1e}, "
            f"Fisher positive definite {check['fisher_positive_definite']}"
        )
