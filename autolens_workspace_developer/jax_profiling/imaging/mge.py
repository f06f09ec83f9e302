"""
JAX Profiling: MGE Imaging Likelihood, With Model Instances As Pytrees
======================================================================

Profiles the JAX likelihood of an imaging dataset whose lens light and source light are both modelled with
a multi-Gaussian expansion (MGE): 20 linear Gaussians per galaxy, whose intensities are solved for by a
non-negative linear inversion, plus an `Isothermal` mass and `ExternalShear`. The model has 15 free
parameters.

What is measured:

1. Each step of the likelihood, JIT-compiled and timed on its own (lower, compile, first call, steady state):
   ray-tracing, the mapping matrix, the PSF-blurred mapping matrix, the data vector D, the curvature matrix F,
   the non-negative reconstruction, the mapped reconstructed image and the log likelihood. Compiling one
   step at a time shows which step dominates; XLA fuses across steps when it compiles the whole pipeline, so
   the per-step times are a guide, not a decomposition.
2. The full pipeline compiled as one program, exactly as a non-linear search calls it.
3. A `jax.vmap` batch of different model instances, and the static memory analysis of that batched program.
   The same batch sharded over `--devices` devices, checked against the one-device batch and timed against it
   (per-point times, speed-up and scaling efficiency).
4. A likelihood scan over the Einstein radius: one `jax.vmap` over a single leaf chosen by its name.

__Model Instances Are Pytrees__

Every compiled function here that depends on the model's parameters takes the model instance itself, an
`af.ModelInstance` holding `Galaxy` objects, profiles and `Basis` objects. These are JAX pytrees: their
leaves are the free parameter values and every leaf has a named key path, e.g.

    .galaxies.lens.mass.einstein_radius

so `jax.jit` and `jax.vmap` take an instance directly, and `jax.tree_util` functions map over one. This is
the recommended pattern for new profiling scripts. The older pattern, which `Fitness.call` still uses, passes
a flat parameter vector and calls `model.instance_from_vector(vector, xp=jnp)` inside the trace; this script
compiles it once too, only to assert it gives the same number (`flat_vs_pytree.py` times the two side by side).

Every JAX timing waits for its result with `block_until_ready()`.

__Usage__

    python mge.py --instrument hst --repeats 10 --batch-size 3 --scan-points 21
    python mge.py --devices 2 --repeats 2 --batch-size 4 --scan-points 3

`--devices` defaults to every device JAX sees (one on a CPU); on a CPU, `--devices N` makes N host devices.
The batch size is rounded up to a multiple of the device count.

The dataset is simulated by `simulators/imaging.py` the first time an instrument is profiled. Results go to
`results/mge_likelihood_summary_<instrument>_v<version>.json` with a bar chart beside it, and the Einstein
radius scan to `results/mge_einstein_radius_scan_<instrument>_v<version>.png`.
"""

"""
__64-bit JAX__

This comes before every other import. PyAuto switches JAX to 64-bit only if JAX has not been imported yet, so
a script that imports JAX first (as this one does) would otherwise run in 32-bit and get NaN likelihoods.
"""
import os

os.environ["JAX_ENABLE_X64"] = "True"

import jax

jax.config.update("jax_enable_x64", True)

import argparse
import time

import jax.numpy as jnp
import numpy as np

import autolens as al

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shared profiling_util and gradients_util

import gradients_util as grad_util
import imaging_util
import profiling_util as util

"""
__Command Line__

`--repeats` sets how many calls each steady-state time averages over; the defaults keep a run on a 2-core
laptop around a minute and a half for hst.

`--devices` is acted on as soon as it is parsed: on a CPU the number of host devices can only be set before
JAX's first computation (`profiling_util.use_devices`), and nothing above has run one.
"""
parser = util.OneLineArgumentParser(description=__doc__.split("\n")[1])
imaging_util.add_instrument_argument(parser)
parser.add_argument("--repeats", type=int, default=10, help="steady-state calls timed per program (default 10)")
parser.add_argument("--batch-size", type=int, default=3, help="instances in the vmap batch (default 3)")
parser.add_argument("--scan-points", type=int, default=21, help="Einstein radii in the scan (default 21)")
parser.add_argument(
    "--gradient",
    action=argparse.BooleanOptionalAction,
    default=True,
    help="time jax.grad of the likelihood, the Hessian and the 1-sigma errors by name (default: yes)",
)
parser.add_argument(
    "--hessian",
    action=argparse.BooleanOptionalAction,
    default=False,
    help="also compile jax.hessian of the likelihood and check it against differences of the gradient (default: no)",
)
util.add_devices_argument(parser)
args = parser.parse_args()

devices = util.use_devices(args.devices)

instrument = args.instrument
repeats = args.repeats

"""
__Dataset__

The dataset is masked with a 3.5" circle and over-sampled adaptively around the lens centre (see
`imaging_util.load_dataset`). Its size is what sets the run time.
"""
print(f"\n--- Dataset [{instrument}] ---")

dataset = imaging_util.load_dataset(instrument)
configuration = imaging_util.configuration_of(dataset, instrument)

"""
__Model And Its Instance__

The model is built with `af.Model` / `af.Collection`, as in any PyAutoLens fit. The instance every profile is
evaluated at sits at the prior medians, with the lens mass and shear at the values the data was simulated
with (`imaging_util.reference_vector`).
"""
print("\n--- Model ---")

model = imaging_util.mge_model()
vector = imaging_util.reference_vector(model)
instance = model.instance_from_vector(vector=vector)

util.require_pytree(instance)

configuration["linear_gaussians"] = imaging_util.linear_gaussian_count(instance)

print(f"  free parameters:  {model.total_free_parameters}")
print(f"  linear Gaussians: {configuration['linear_gaussians']}")
for key, value in configuration.items():
    print(f"  {key}: {value}")

"""
__The Instance As A Pytree__

`tree_flatten_with_path` shows what JAX sees: one leaf per free parameter, in the order of the flat parameter
vector, named by its model path (`galaxies.lens.mass.einstein_radius`). The 20 Gaussians of each MGE share one
centre and one ell_comps prior, so those are one leaf each, put back into every Gaussian inside the trace.
Constants (the Gaussians' fixed sigmas, the redshifts) are not leaves: they are part of the tree's static
structure.

That structure must not change between instances of the same model, or every new instance would compile
again. Comparing the tree structures of two different instances checks it.
"""
leaf_names, same_structure = util.one_structure_per_model(model, instance, vector)

"""
Inputs to a compiled program are best already on the device, as a search would pass them. `on_device` maps
`jnp.asarray` over the leaves; the result is still a `ModelInstance` of `Galaxy` objects.
"""
instance_jax = util.on_device(instance)

"""
__Eager Reference__

`FitImaging`, evaluated eagerly in NumPy, is the reference every compiled result must reproduce. For a model
without regularization its `figure_of_merit` is the log likelihood.
"""
print("\n--- Eager FitImaging (reference) ---")

start = time.perf_counter()
fit = al.FitImaging(
    dataset=dataset,
    tracer=al.Tracer(galaxies=list(model.instance_from_vector(vector=vector).galaxies)),
)
figure_of_merit = float(fit.figure_of_merit)
print(f"  figure_of_merit = {figure_of_merit}  ({time.perf_counter() - start:.2f} s)")

"""
__Per-Step JIT Profiling__

Each step is a small function, compiled and timed on its own. The first three depend on the model's
parameters, so they take the instance (a pytree) and build the `Tracer` from it inside the trace; the rest
are pure linear algebra on the arrays the step before produced.

The 20 Gaussians of a basis share one centre and one ell_comps prior, and the instance's leaves are the
model's free parameters: one leaf per prior, put back into every Gaussian that shares it. So inside the trace
the copies are one value, as in the flat vector, and XLA transforms the coordinates once.
"""
print("\n" + "=" * 70)
print("PER-STEP JIT PROFILING")
print("=" * 70)

profile_step = util.StepProfiler(repeats, label_width=30)
steps = profile_step.steps


def linear_light_profile_funcs(instance):
    """The linear light profiles of every galaxy, grouped per `Basis` and ray-traced to their plane."""
    tracer = al.Tracer(galaxies=list(instance.galaxies))
    to_inversion = al.TracerToInversion(dataset=dataset, tracer=tracer, xp=jnp)
    return list(to_inversion.lp_linear_func_list_galaxy_dict.keys())


"""
__Step 1: Ray-Tracing__

The over-sampled image-plane grid is traced to the source plane by the lens mass and shear.
"""


def ray_trace(instance):
    tracer = al.Tracer(galaxies=list(instance.galaxies))
    traced = tracer.traced_grid_2d_list_from(grid=dataset.grids.lp, xp=jnp)
    return jnp.stack([grid.array for grid in traced])


traced_grids = profile_step("Ray-trace grids", ray_trace, instance_jax)

"""
__Step 2: Mapping Matrix__

One column per linear Gaussian: its image, evaluated on the (traced) grid, before the PSF.
"""


def mapping_matrix(instance):
    return jnp.hstack([func.mapping_matrix for func in linear_light_profile_funcs(instance)])


profile_step("Mapping matrix", mapping_matrix, instance_jax)

"""
__Step 3: Blurred Mapping Matrix__

The same columns convolved with the PSF, including light from just outside the mask that the PSF blurs
into it. This, not the mapping matrix of step 2, is what the inversion uses; step 3 recomputes the images
rather than reusing step 2's, as the likelihood itself does.
"""


def blurred_mapping_matrix(instance):
    return jnp.hstack(
        [
            func.operated_mapping_matrix_override
            for func in linear_light_profile_funcs(instance)
        ]
    )


blurred = profile_step("Blurred mapping matrix", blurred_mapping_matrix, instance_jax)

data = jnp.asarray(dataset.data.array)
noise_map = jnp.asarray(dataset.noise_map.array)
total_linear = blurred.shape[1]

"""
__Step 4: Data Vector (D)__
"""


def data_vector_from(blurred, data, noise_map):
    return al.util.inversion_imaging.data_vector_via_blurred_mapping_matrix_from(
        blurred_mapping_matrix=blurred, image=data, noise_map=noise_map
    )


data_vector = profile_step("Data vector (D)", data_vector_from, blurred, data, noise_map)

"""
__Step 5: Curvature Matrix (F)__

No Gaussian is regularized, so every index is in `no_regularization_index_list` and the diagonal gets the
small stabilizing term the inversion adds to unregularized parameters.
"""


def curvature_matrix_from(blurred, noise_map):
    return al.util.inversion.curvature_matrix_via_mapping_matrix_from(
        mapping_matrix=blurred,
        noise_map=noise_map,
        add_to_curvature_diag=True,
        no_regularization_index_list=list(range(total_linear)),
        xp=jnp,
    )


curvature_matrix = profile_step(
    "Curvature matrix (F)", curvature_matrix_from, blurred, noise_map
)

"""
__Step 6: Reconstruction (Positive-Only NNLS)__

The Gaussians' intensities: the non-negative solution of F s = D.
"""


def reconstruction_from(data_vector, curvature_matrix):
    return al.util.inversion.reconstruction_positive_only_from(
        data_vector=data_vector, curvature_reg_matrix=curvature_matrix, xp=jnp
    )


reconstruction = profile_step(
    "Reconstruction (NNLS)", reconstruction_from, data_vector, curvature_matrix
)

"""
__Step 7: Mapped Reconstructed Image__
"""


def mapped_reconstruction_from(blurred, reconstruction):
    return al.util.inversion.mapped_reconstructed_data_via_mapping_matrix_from(
        mapping_matrix=blurred, reconstruction=reconstruction, xp=jnp
    )


model_image = profile_step(
    "Mapped reconstructed image", mapped_reconstruction_from, blurred, reconstruction
)

"""
__Step 8: Chi-Squared And Log Likelihood__
"""


def log_likelihood_from(data, noise_map, model_image):
    chi_squared = jnp.sum(((data - model_image) / noise_map) ** 2)
    noise_normalization = jnp.sum(jnp.log(2.0 * jnp.pi * noise_map**2))
    return -0.5 * (chi_squared + noise_normalization)


step_log_likelihood = float(
    profile_step(
        "Chi-squared & log likelihood", log_likelihood_from, data, noise_map, model_image
    )
)

print(f"\n  step-by-step log likelihood = {step_log_likelihood}")

reporting = imaging_util.Reporting(
    quantity="log likelihood", rtol=1e-8, quote_rtol=False, milliseconds=True, results_width=22
)
reporting.check(step_log_likelihood, figure_of_merit, "step-by-step")

"""
__Full Pipeline JIT__

The whole likelihood as one program: `AnalysisImaging.log_likelihood_function`, the function a non-linear
search calls, wrapped in a closure that takes the instance. `jax.jit` is applied to that closure directly;
no `Fitness` object and no parameter vector are involved.

This is the pattern to copy into new profiling scripts: write the closure over the instance, pass instances
(or `tree_map`-built batches of them) to `jax.jit` / `jax.vmap`, and pick out parameters by their key paths.
Nothing in the script then depends on the order of the parameter vector.
"""
likelihood = imaging_util.likelihood_function(dataset)
log_likelihood_from_instance = imaging_util.pytree_closure(likelihood)

full, full_log_likelihood = imaging_util.full_pipeline(
    log_likelihood_from_instance, instance_jax, figure_of_merit, reporting, repeats
)

"""
__Pytree Versus Flat Vector__

The same likelihood through the flat-vector closure (`instance_from_vector` inside the trace, as `Fitness.call`
does) must give the same number to rounding error: both build the same objects from the same values.
"""
flat, flat_log_likelihood = imaging_util.compare_with_flat_vector(
    model, likelihood, vector, full_log_likelihood, reporting, repeats
)

"""
__vmap Batch__

A batch is a single instance whose every leaf holds the batch's values: `tree_map` stacks several instances
leaf by leaf. This works because instances of one model share a tree structure. The instances here are small
random offsets from the reference, so each lane computes a different likelihood, and each must equal the
single-instance program's result.

The batch is split evenly over the devices below, so its size is rounded up to a multiple of their number.
"""
print("\n--- vmap batch ---")

batch_size = imaging_util.batch_size_for(args.batch_size, devices)
batch_instances = util.different_instances(model, vector, batch_size)

vmapped = imaging_util.vmap_batch(log_likelihood_from_instance, batch_instances, full, reporting, repeats)

np.testing.assert_allclose(
    vmapped["results"], vmapped["single_results"], rtol=1e-10, err_msg="vmap differs from single calls"
)
print("  vmap matches single calls")

"""
__Sharded Batch__

The same batch spread over the devices: every leaf of the stacked instance is placed with a `NamedSharding` that
splits its batch axis over a one-axis mesh of the devices, and the vmapped likelihood, mapped over those shards
with `jax.shard_map` and jitted, is called on it: each device computes its own lanes, with no communication
between devices (`imaging_util.sharded_likelihood` says why not the jitted vmap alone). The lanes must equal
the one-device batch's (rtol 1e-10), and the one-device and sharded programs are timed call by call in turn.
"""
sharding = imaging_util.sharded_vmap_batch(
    log_likelihood_from_instance, vmapped, devices, reporting, repeats, rtol=1e-10
)

"""
__Static Memory Analysis__

XLA's own account of the batched program's buffers, read from the program compiled above.
"""
memory_mb = imaging_util.static_memory(vmapped["compiled"])

"""
__Einstein Radius Scan__

A one-dimensional likelihood scan: vary the Einstein radius, hold every other parameter at the reference.

With a flat vector this needs the Einstein radius's index in the vector, which changes whenever the model
does. With a pytree it is found by name. `tree_map_with_path` visits every leaf with its key path; the one
whose path ends in `einstein_radius` becomes the array of scan values and gets `in_axes` 0, every other leaf
keeps its value and gets `in_axes` None, so JAX broadcasts it instead of copying it into a batch. (XLA can then
also compute the parts of the likelihood that do not depend on the Einstein radius, like the lens light's
mapping matrix, once for the whole scan.)
"""
print("\n--- Einstein radius scan ---")

scanned_name = "einstein_radius"
scanned = util.leaf_named(instance_jax, scanned_name)
scanned_leaf_name = [name for name, hit in zip(util.leaf_names(instance_jax), jax.tree_util.tree_leaves(scanned)) if hit][0]

reference_einstein_radius = float(instance.galaxies.lens.mass.einstein_radius)
truth_einstein_radius = float(imaging_util.simulator.true_tracer().galaxies[0].mass.einstein_radius)

scan_values = jnp.linspace(
    0.9 * reference_einstein_radius, 1.1 * reference_einstein_radius, args.scan_points
)


scan_instance = jax.tree_util.tree_map(lambda hit, leaf: scan_values if hit else leaf, scanned, instance_jax)
scan_in_axes = jax.tree_util.tree_map(lambda hit: 0 if hit else None, scanned)

scan = util.time_jit(
    jax.vmap(log_likelihood_from_instance, in_axes=(scan_in_axes,)),
    scan_instance,
    repeats=1,
)
scan_log_likelihoods = np.asarray(scan["result"])
best_einstein_radius = float(scan_values[int(np.argmax(scan_log_likelihoods))])

print(f"  scanned leaf: {scanned_leaf_name} over {args.scan_points} values")
print(
    f"  lower {scan['lower_s']:.3f} s | compile {scan['compile_s']:.3f} s | "
    f"scan of {args.scan_points}: {scan['steady_per_call_s']:.3f} s"
)
print(f"  best Einstein radius on the grid: {best_einstein_radius:.4f} (simulated: {truth_einstein_radius})")

middle = args.scan_points // 2
if args.scan_points % 2 == 1:
    np.testing.assert_allclose(
        scan_log_likelihoods[middle],
        full_log_likelihood,
        rtol=1e-10,
        err_msg="the scan's middle point differs from the single-instance likelihood",
    )
    print("  the scan's middle point matches the single-instance likelihood")

"""
__Gradient, Hessian And Errors By Name__

`jax.jit(jax.grad(...))` of the same closure over the instance: one instance-shaped gradient, read by name, checked
against fourth-order central differences of the jitted likelihood. The non-negative inversion is differentiated on
its active set (the PyAutoArray series), so every component is finite. The instance is moved a little off the
reference point (whose Gaussians' ell_comps are exactly 0, where the likelihood has a term |e| e that central
differences see as an error of the order of their step). The Hessian is finite differences of the compiled
gradient: 4 n gradient calls, no further compile. `--hessian` also compiles `jax.hessian` (forward over reverse)
of the likelihood and asserts it equals that Hessian; the 1-sigma errors are the square roots of the diagonal of
the inverse Fisher matrix (-Hessian).
"""
gradient_summary = None
gradient_plot_path = None
if args.gradient:
    print("\n--- Gradient, Hessian and errors by name ---")
    gradient_vector = util.jittered_vectors(vector, 2, scale=0.01, seed=1)[1]
    gradient_instance = util.on_device(model.instance_from_vector(vector=list(gradient_vector)))

    likelihood_at = util.time_jit(log_likelihood_from_instance, gradient_instance, repeats=repeats)
    gradient_at = grad_util.time_gradient(log_likelihood_from_instance, gradient_instance, repeats=repeats)
    gradient_by_name = util.values_by_name(gradient_at["result"])
    finite_differences = grad_util.finite_difference_gradient(
        likelihood_at["jitted"], model, gradient_vector, step=2e-5
    )
    names = util.leaf_names(gradient_instance)
    # Steps of 1e-4 can straddle a change of the non-negative solve's active set (at euclid they did, by 0.1% of
    # the largest entry); at 1e-5 the differences equal jax.hessian to ~1e-11 of it.
    hessian = grad_util.hessian_from_gradient_differences(
        gradient_at["jitted"], model, gradient_vector, step=1e-5
    )
    errors = grad_util.errors_from_hessian(hessian, names)

    hessian_at = None
    if args.hessian:
        hessian_at = grad_util.time_hessian(log_likelihood_from_instance, gradient_instance)
        largest_difference = float(np.max(np.abs(np.asarray(hessian_at["result"]) - hessian)))
        print(
            f"  jax.hessian: lower {hessian_at['lower_s']:.2f} s | compile {hessian_at['compile_s']:.2f} s | "
            f"first call {hessian_at['first_call_s']:.2f} s | largest difference from the gradient differences' "
            f"{largest_difference / np.max(np.abs(hessian)):.1e} of its largest entry"
        )
        np.testing.assert_allclose(
            np.asarray(hessian_at["result"]),
            hessian,
            rtol=1e-4,
            atol=1e-6 * np.max(np.abs(hessian)),
            err_msg="jax.hessian differs from differences of the gradient",
        )

    gradient_summary = grad_util.gradient_summary(
        likelihood_at, gradient_at, gradient_by_name, finite_differences, hessian_at, errors
    )
    grad_util.print_gradient_summary(gradient_summary)
    assert gradient_summary["gradient_finite"], "the gradient has NaN / inf leaves"

    scan_log_likelihood, scan_gradient, _ = grad_util.gradient_scan(
        log_likelihood_from_instance, instance_jax, scanned_name, scan_values
    )
    gradient_plot_path = imaging_util.RESULTS_DIR / f"mge_einstein_radius_gradient_{instrument}_v{al.__version__}.png"
    grad_util.plot_scan_with_gradient(
        scan_values,
        scan_log_likelihood,
        scan_gradient,
        gradient_plot_path,
        truth=truth_einstein_radius,
        title=f"log likelihood and jax.grad along {scanned_leaf_name} - {instrument.upper()}",
    )

"""
__Summary__
"""
version = al.__version__

summary = imaging_util.likelihood_summary(
    instrument,
    configuration,
    steps,
    full,
    flat,
    vmap=imaging_util.vmap_summary(batch_size, vmapped, memory_mb, reporting),
    figure_of_merit=figure_of_merit,
    step_by_step=step_log_likelihood,
    pytree=util.pytree_summary(leaf_names, model, same_structure),
    repeats=repeats,
    reporting=reporting,
    batch_size=batch_size,
    sharding=sharding,
    extra={
        "einstein_radius_scan": {
            "leaf_path": scanned_leaf_name,
            "einstein_radius": [float(value) for value in scan_values],
            "log_likelihood": [float(value) for value in scan_log_likelihoods],
            "best_einstein_radius": best_einstein_radius,
            "simulated_einstein_radius": truth_einstein_radius,
            "lower_s": scan["lower_s"],
            "compile_s": scan["compile_s"],
            "scan_time_s": scan["steady_per_call_s"],
        },
        "gradient": gradient_summary,
    },
)

"""
__Plots__

The bar chart shows each step's steady-state time, with the full pipeline and the vmap per-call time as
lines; the scan plot shows the log likelihood against the Einstein radius.
"""
imaging_util.write_summary(
    summary,
    f"mge_likelihood_summary_{instrument}_v{version}",
    reporting,
    title=f"MGE imaging likelihood, pytree inputs - {instrument.upper()}",
    subtitle=(
        f"autolens v{version} | {configuration['pixel_scale_arcsec']}\"/px | "
        f"{configuration['image_pixels_masked']} pixels | {configuration['over_sampled_pixels']} over-sampled | "
        f"{configuration['linear_gaussians']} Gaussians | {model.total_free_parameters} free parameters"
    ),
    height=5,
    legend_offset=-0.14,
)

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

figure, axis = plt.subplots(figsize=(7, 4.5))
axis.plot(scan_values, scan_log_likelihoods, "o-", color="#4C72B0", markersize=4)
axis.axvline(
    truth_einstein_radius, color="#C44E52", linestyle="--", label=f"simulated: {truth_einstein_radius}"
)
axis.set_xlabel("Einstein radius (arcsec)")
axis.set_ylabel("log likelihood")
axis.set_title(
    f"One jax.vmap over the leaf {scanned_leaf_name}\n"
    f"{args.scan_points} values, every other leaf broadcast - {instrument.upper()}",
    fontsize=10,
)
axis.legend()
figure.tight_layout()

scan_path = imaging_util.RESULTS_DIR / f"mge_einstein_radius_scan_{instrument}_v{version}.png"
figure.savefig(scan_path, dpi=150)
plt.close(figure)
print(f"  Einstein radius scan: {scan_path}")
