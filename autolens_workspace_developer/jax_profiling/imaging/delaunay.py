"""
JAX Profiling: Pixelized-Source Imaging Likelihood (Delaunay Mesh), With Model Instances As Pytrees
=================================================================================================

Profiles the JAX likelihood of an imaging dataset whose source is reconstructed on a `Delaunay` mesh with
`ConstantSplit` regularization, behind a lens with a `Sersic` bulge, an `Isothermal` mass and `ExternalShear`
(14 free parameters). The figure of merit is the Bayesian log evidence of the source reconstruction.

The mesh's vertices are chosen in the image plane: a 26 x 26 `Overlay` grid over the mask, plus 30 points on a
circle at the mask's edge, whose source pixels are zeroed (not solved for). Those image-plane vertices reach the
likelihood through `AdaptImages`, keyed both by the source galaxy and by its path `('galaxies', 'source')`; each
likelihood call traces them to the source plane and triangulates them there.

`ConstantSplit` rather than `Constant`: `Constant` finds each vertex's neighbours with scipy, which cannot run
on traced vertices; `ConstantSplit` regularizes through the interpolation weights, in `jax.numpy`.

What is measured:

1. Each step of the likelihood, JIT-compiled and timed on its own (lower, compile, first call, steady state):
   ray-tracing of the data grid and of the mesh vertices, the lens light's blurred image, the profile-subtracted image, the mapper and its mapping
   matrix, the blurred mapping matrix, the data vector D, the curvature matrix F, the regularization matrix H,
   the regularized reconstruction, the mapped reconstruction and the log evidence. XLA fuses across steps when
   it compiles the whole pipeline, so the per-step times are a guide to which step dominates, not a
   decomposition.
2. The full pipeline compiled as one program, exactly as a non-linear search calls it, and the same likelihood
   through the flat parameter vector, which must give the same number.
3. A `jax.vmap` batch of different model instances, and the static memory analysis of that batched program.
   The same batch sharded over `--devices` devices, checked against the one-device batch and timed against it
   (per-point times, speed-up and scaling efficiency).

__Model Instances Are Pytrees__

As in `mge.py`, every compiled function that depends on the model's parameters takes the model instance itself
(an `af.ModelInstance` of `Galaxy` objects), whose leaves are the free parameters with named key paths such as
`.galaxies.lens.bulge.effective_radius`. The source's `Pixelization` is a fixed object of the model: its mesh
shape and regularization coefficient are static parts of the tree, so every instance has the same structure and
one compile serves them all (asserted below).

Every JAX timing waits for its result with `block_until_ready()`.

__Usage__

    python delaunay.py --instrument hst --repeats 3
    python delaunay.py --instrument hst --no-vmap
    python delaunay.py --devices 2 --repeats 2 --batch-size 2

`--devices` defaults to every device JAX sees (one on a CPU); on a CPU, `--devices N` makes N host devices.
The batch size is rounded up to a multiple of the device count.

Upstream's flat-vector script skips the vmap batch by default, its compile having taken over 20 minutes on a
CPU. Over instances it compiles in seconds here (hst, 2 CPU cores: lower 1.8 s, compile 3.0 s, and 0.72 s per
instance in a batch of 3 against 0.80 s for a single call), so it runs by default; `--no-vmap` skips it, and the
summary's vmap block then says so (and so does its sharding block: the sharded batch is skipped with it).

Results go to `results/delaunay_likelihood_summary_<instrument>_v<version>.json` with a bar chart beside it.
"""

"""
__64-bit JAX__

Before any other import, for the reason given in `mge.py`.
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

import imaging_util
import profiling_util as util

"""
__Command Line__

One likelihood call costs of order a second on a 2-core CPU, so the default `--repeats` is small.

`--devices` is acted on as soon as it is parsed, before JAX's first computation, as in `mge.py`.
"""
parser = util.OneLineArgumentParser(description=__doc__.split("\n")[1])
imaging_util.add_instrument_argument(parser)
parser.add_argument("--repeats", type=int, default=3, help="steady-state calls timed per program (default 3)")
parser.add_argument("--batch-size", type=int, default=3, help="instances in the vmap batch (default 3)")
parser.add_argument(
    "--vmap", action=argparse.BooleanOptionalAction, default=True, help="time the vmap batch (default: yes)"
)
util.add_devices_argument(parser)
args = parser.parse_args()

devices = util.use_devices(args.devices)

instrument = args.instrument
repeats = args.repeats

"""
__Dataset__

Masked with a 3.5" circle; the lens light is over-sampled adaptively, the pixelization's grid is not (see
`imaging_util.load_dataset`).
"""
print(f"\n--- Dataset [{instrument}] ---")

dataset = imaging_util.load_dataset(instrument)
configuration = imaging_util.configuration_of(dataset, instrument)

"""
__Model And Its Instance__

The image-plane mesh comes first: its vertex count and the number of edge points fix the `Delaunay` mesh's
shape, static parts of the model. The pixelization is built by hand and given to the model as a fixed object (`imaging_util.delaunay_mesh_grid`
and `delaunay_model`, which `flat_vs_pytree.py` uses too).
The instance sits at the prior medians, with the lens mass and shear at the simulated values
(`imaging_util.reference_vector`).
"""
print("\n--- Model ---")

overlay_shape = imaging_util.DELAUNAY_OVERLAY_SHAPE
edge_points = imaging_util.DELAUNAY_EDGE_POINTS

image_plane_mesh_grid = imaging_util.delaunay_mesh_grid(dataset)
vertices = int(image_plane_mesh_grid.shape[0])

model = imaging_util.delaunay_model(image_plane_mesh_grid)
vector = imaging_util.reference_vector(model)
instance = model.instance_from_vector(vector=vector)

util.require_pytree(instance)

configuration["overlay_shape"] = list(overlay_shape)
configuration["edge_points"] = edge_points
configuration["source_pixels"] = vertices

print(f"  free parameters: {model.total_free_parameters}")
for key, value in configuration.items():
    print(f"  {key}: {value}")

"""
__The Instance As A Pytree__

One leaf per free parameter: the pixelization contributes none, its mesh shape and coefficient being static.
Two different instances must share one tree structure, or each would compile again.
"""
leaf_names, same_structure = util.one_structure_per_model(model, instance, vector)

instance_jax = util.on_device(instance)

"""
__Adapt Images__

The image-plane mesh is handed to the analysis as upstream's `delaunay.py` does: keyed by the source galaxy
object and by its path in the model. Inside a compiled program the instance is rebuilt from tracers, so its
source galaxy is a new object; the analysis finds the mesh again through the galaxy's path.
"""
adapt_images = imaging_util.delaunay_adapt_images(instance, image_plane_mesh_grid)

"""
__Eager Reference__

`FitImaging`, evaluated eagerly in NumPy with the settings and adapt images the analysis uses, is the
reference. With an inversion, its `figure_of_merit` is the log evidence.
"""
print("\n--- Eager FitImaging (reference) ---")

analysis = al.AnalysisImaging(dataset=dataset, adapt_images=adapt_images, use_jax=True)
settings = analysis.settings

start = time.perf_counter()
fit = al.FitImaging(
    dataset=dataset,
    tracer=al.Tracer(galaxies=list(instance.galaxies)),
    adapt_images=adapt_images,
    settings=settings,
)
figure_of_merit = float(fit.figure_of_merit)
print(f"  figure_of_merit (log evidence) = {figure_of_merit}  ({time.perf_counter() - start:.2f} s)")

"""
The linear-algebra steps below reproduce the inversion with its own settings: the positive-only solver over
the pixels not zeroed at the mesh edge, and every source pixel regularized (so the reduced matrices of the log
evidence are the full ones). The indices kept are read from the eager inversion; they depend only on the mesh,
so they are constants of every compiled program.
"""
assert settings.use_positive_only_solver, "the steps below assume the positive-only solver"
assert fit.inversion.all_linear_obj_have_regularization

ids_to_keep = np.asarray(
    fit.inversion.zeroed_ids_to_keep
    if settings.use_edge_zeroed_pixels
    else np.arange(configuration["source_pixels"])
)

"""
__Per-Step JIT Profiling__

The steps that depend on the model's parameters take the instance, tie it, and build the analysis's own
`FitImaging` from it inside the trace (`analysis.fit_from`, with `xp=jnp`). A `FitImaging` computes lazily, so
returning one of its properties compiles only the part of the likelihood that property needs. The other steps
are linear algebra on the arrays the steps before produced (`imaging_util`'s pixelized-source functions).
"""
print("\n" + "=" * 70)
print("PER-STEP JIT PROFILING")
print("=" * 70)

profile_step = util.StepProfiler(repeats)


def fit_of(instance):
    return analysis.fit_from(instance=instance)


"""
__Step 1: Ray-Tracing__

The pixelization's image-plane grid traced to the source plane by the lens mass and shear.
"""


def ray_trace(instance):
    tracer = al.Tracer(galaxies=list(instance.galaxies))
    return tracer.traced_grid_2d_list_from(grid=dataset.grids.pixelization, xp=jnp)[-1].array


profile_step("Ray-trace data grid", ray_trace, instance_jax)

"""
__Step 1b: Ray-Tracing The Mesh__

The Delaunay vertices, chosen in the image plane, traced to the source plane where they are triangulated.
"""
mesh_grid = al.Grid2DIrregular(values=image_plane_mesh_grid)


def ray_trace_mesh(instance):
    tracer = al.Tracer(galaxies=list(instance.galaxies))
    return tracer.traced_grid_2d_list_from(grid=mesh_grid, xp=jnp)[-1].array


profile_step("Ray-trace mesh grid", ray_trace_mesh, instance_jax)

"""
__Step 2: Lens Light, Blurred__

The lens's `Sersic` on the over-sampled grid (and the blurring grid just outside the mask), convolved with the PSF.
"""


def lens_light_image(instance):
    return fit_of(instance).blurred_image.array


lens_image = profile_step("Lens light blurred image", lens_light_image, instance_jax)

data = jnp.asarray(dataset.data.array)
noise_map = jnp.asarray(dataset.noise_map.array)

"""
__Step 3: Profile-Subtracted Image__

What the source reconstruction fits: the data minus the lens light.
"""


def profile_subtracted_from(data, lens_image):
    return data - lens_image


profile_subtracted = profile_step(
    "Profile-subtracted image", profile_subtracted_from, data, lens_image
)

"""
__Step 4: Mapper And Mapping Matrix__

Ray-tracing again (the steps are independent programs), the Delaunay triangulation of the traced vertices,
each image pixel's interpolation weights in its triangle, and the mapping matrix: one column per vertex.
"""


def mapping_matrix(instance):
    return fit_of(instance).inversion.mapping_matrix


profile_step("Mapper & mapping matrix", mapping_matrix, instance_jax)

"""
__Step 5: Blurred Mapping Matrix__

The mapping matrix's columns convolved with the PSF: what the inversion fits with.
"""


def blurred_mapping_matrix(instance):
    return fit_of(instance).inversion.operated_mapping_matrix


blurred = profile_step("Blurred mapping matrix", blurred_mapping_matrix, instance_jax)

"""
__Steps 6 And 7: Data Vector (D) And Curvature Matrix (F)__
"""
data_vector = profile_step(
    "Data vector (D)", imaging_util.data_vector_from, blurred, profile_subtracted, noise_map
)


def curvature_matrix_from(blurred, noise_map):
    return imaging_util.curvature_matrix_from(blurred, noise_map, settings)


curvature_matrix = profile_step(
    "Curvature matrix (F)", curvature_matrix_from, blurred, noise_map
)

"""
__Step 8: Regularization Matrix (H)__

`ConstantSplit` regularization: gradients of the reconstruction estimated by interpolating it at points a small
step from each vertex, in four directions. It depends on the triangulation, so on the instance.
"""


def regularization_matrix(instance):
    return fit_of(instance).inversion.regularization_matrix


regularization = profile_step(
    "Regularization matrix (H)", regularization_matrix, instance_jax
)

"""
__Step 9: Regularized Reconstruction__

The non-negative solution of (F + H) s = D.
"""


def reconstruction_from(data_vector, curvature_matrix, regularization):
    return imaging_util.reconstruction_from(
        data_vector, curvature_matrix, regularization, ids_to_keep, settings
    )


reconstruction = profile_step(
    "Regularized reconstruction", reconstruction_from, data_vector, curvature_matrix, regularization
)

"""
__Steps 10 And 11: Mapped Reconstruction And Log Evidence__
"""
source_image = profile_step(
    "Mapped reconstruction", imaging_util.mapped_reconstruction_from, blurred, reconstruction
)

step_log_evidence = float(
    profile_step(
        "Log evidence",
        imaging_util.log_evidence_from,
        data,
        noise_map,
        lens_image,
        source_image,
        reconstruction,
        curvature_matrix,
        regularization,
    )
)

print(f"\n  step-by-step log evidence = {step_log_evidence}")

reporting = imaging_util.Reporting(
    quantity="log evidence", rtol=1e-6, quote_rtol=True, milliseconds=False, results_width=19
)
reporting.check(step_log_evidence, figure_of_merit, "step-by-step")

steps = profile_step.steps

"""
__Full Pipeline JIT__

`AnalysisImaging.log_likelihood_function` as one program, through the closure that takes the instance
(`imaging_util.pytree_closure`).
"""
likelihood = analysis.log_likelihood_function
log_likelihood_from_instance = imaging_util.pytree_closure(likelihood)

full, full_log_likelihood = imaging_util.full_pipeline(
    log_likelihood_from_instance, instance_jax, figure_of_merit, reporting, repeats
)

"""
__Pytree Versus Flat Vector__

The same likelihood through `instance_from_vector` inside the trace, as `Fitness.call` does: the same objects
from the same values, so the same number to rounding error.
"""
flat, flat_log_likelihood = imaging_util.compare_with_flat_vector(
    model, likelihood, vector, full_log_likelihood, reporting, repeats
)

"""
__One Compile For Every Instance__

Single calls on instances the program has not seen: each gives a finite log evidence and none compiles again,
so the jit cache holds one program afterwards. These instances are the vmap batch's below, so their number is
rounded up to a multiple of the number of devices the batch is split over.
"""
print("\n--- Different instances, one compile ---")

batch_size = imaging_util.batch_size_for(args.batch_size, devices)
batch_instances = util.different_instances(model, vector, batch_size)
single_results = np.array([float(full["jitted"](member)) for member in batch_instances])
compiles = full["jitted"]._cache_size()

print(f"  single-call results = {single_results}")
print(f"  programs compiled for {batch_size} different instances: {compiles}")

assert np.all(np.isfinite(single_results)), "a single-instance log evidence is not finite"
assert compiles == 1, f"the single-instance likelihood compiled {compiles} times"

"""
__vmap Batch__

The same instances stacked leaf by leaf with `tree_map` into one batch instance; each lane must equal the
single call above. Then the same batch sharded over the devices (as in `mge.py`): its lanes must equal the
one-device batch's (rtol 1e-8, the tolerance of the vmap check), and the two programs are timed call by call
in turn. With `--no-vmap` the vmap and sharding numbers are `None` and the summary says so.
"""
vmapped = memory_mb = None
vmap_note = "skipped (--no-vmap)"
sharding = imaging_util.sharding_summary(devices, batch_size, note=vmap_note)

if args.vmap:
    print("\n--- vmap batch ---")
    vmap_start = time.perf_counter()

    vmapped = imaging_util.vmap_batch(
        log_likelihood_from_instance, batch_instances, full, reporting, repeats, single_results=single_results
    )
    np.testing.assert_allclose(
        vmapped["results"], single_results, rtol=1e-8, err_msg="vmap differs from single calls"
    )
    print("  vmap matches single calls")

    memory_mb = util.memory_mb(vmapped["compiled"])
    print(f"  static memory analysis (MB): {memory_mb}")
    vmap_note = f"measured; the attempt took {time.perf_counter() - vmap_start:.0f} s in all"

    sharding = imaging_util.sharded_vmap_batch(
        log_likelihood_from_instance, vmapped, devices, reporting, repeats, rtol=1e-8
    )
else:
    print(f"\n--- vmap batch: {vmap_note} ---")

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
    vmap=imaging_util.vmap_summary(batch_size, vmapped, memory_mb, reporting, note=vmap_note),
    figure_of_merit=figure_of_merit,
    step_by_step=step_log_evidence,
    pytree=util.pytree_summary(leaf_names, model, same_structure, compiles),
    repeats=repeats,
    reporting=reporting,
    batch_size=batch_size,
    sharding=sharding,
)

imaging_util.write_summary(
    summary,
    f"delaunay_likelihood_summary_{instrument}_v{version}",
    reporting,
    title=f"Pixelized source (Delaunay, {vertices} vertices), pytree inputs - {instrument.upper()}",
    subtitle=(
        f"autolens v{version} | {configuration['pixel_scale_arcsec']}\"/px | "
        f"{configuration['image_pixels_masked']} pixels | {configuration['over_sampled_pixels']} over-sampled | "
        f"{configuration['source_pixels']} source pixels | {model.total_free_parameters} free parameters"
    ),
)
