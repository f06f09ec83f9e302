"""
Imaging Util: What The Imaging Profiling Scripts Share
======================================================

`mge.py`, `pixelization.py`, `delaunay.py` and the comparison scripts profile likelihoods of one imaging
dataset, so what they would otherwise write out more than once lives here (how they time and name things is
the ground floor, `../profiling_util.py`):

- the instrument argument and the dataset (simulated on first use by `simulators/imaging.py`), masked and
  over-sampled,
- the MGE lens model, the pixelized-source lens models and the point in parameter space every profile is
  evaluated at,
- the linear algebra of a pixelized source (data vector to log evidence), which `pixelization.py` and
  `delaunay.py` both time step by step,
- the likelihood, as PyAutoLens computes it inside a non-linear search, and its two closures: the
  flat-vector one a `Fitness` object builds today and the pytree one new scripts should use,
- the blocks `mge.py`, `pixelization.py` and `delaunay.py` all end with: the full pipeline checked against
  `FitImaging`, the flat-vector comparison, the vmap batch, the same batch sharded over the devices, its static
  memory and the summary (table, JSON, bar chart), parametrized by a `Reporting`.
"""

import os

# The scripts set this themselves before importing anything; repeating it here keeps the module safe to
# import on its own (a PyAuto import that comes first would otherwise leave JAX in 32-bit mode).
os.environ["JAX_ENABLE_X64"] = "True"

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Sequence

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import autofit as af
import autolens as al

import profiling_util as util
from simulators import imaging as simulator

SCRIPT_DIR = Path(__file__).resolve().parent
RESULTS_DIR = SCRIPT_DIR / "results"

INSTRUMENTS = simulator.INSTRUMENTS
MASK_RADIUS = simulator.MASK_RADIUS

GAUSSIANS_PER_GALAXY = 20


def add_instrument_argument(parser: argparse.ArgumentParser):
    parser.add_argument(
        "--instrument",
        default="hst",
        type=_instrument,
        help=f"the instrument whose dataset is profiled: {', '.join(INSTRUMENTS)} (default hst)",
    )


def _instrument(name: str) -> str:
    if name not in INSTRUMENTS:
        raise argparse.ArgumentTypeError(
            f"unknown instrument '{name}' (choose from {', '.join(INSTRUMENTS)})"
        )
    return name



"""
__Dataset__
"""


def load_dataset(instrument: str, mask_radius: float = MASK_RADIUS) -> al.Imaging:
    """
    The masked, over-sampled imaging dataset of `instrument`, simulated first if it is not on disk.

    The over-sampling of light profiles is the one a real fit uses: 4 x 4 sub-pixels within 0.3" of the lens
    centre, 2 x 2 out to 0.6" and none beyond, which keeps the over-sampled grid only ~20% larger than the
    image. The grid a pixelization traces to the source plane is not over-sampled (one point per image pixel),
    as in upstream's pixelization profiles; the MGE likelihood never uses that grid.
    """
    folder = simulator.ensure(instrument)
    pixel_scale = INSTRUMENTS[instrument]["pixel_scale"]

    dataset = al.Imaging.from_fits(
        data_path=folder / "data.fits",
        noise_map_path=folder / "noise_map.fits",
        psf_path=folder / "psf.fits",
        pixel_scales=pixel_scale,
    )

    mask = al.Mask2D.circular(
        shape_native=dataset.shape_native,
        pixel_scales=dataset.pixel_scales,
        radius=mask_radius,
    )
    dataset = dataset.apply_mask(mask=mask)

    return dataset.apply_over_sampling(
        over_sample_size_lp=al.util.over_sample.over_sample_size_via_radial_bins_from(
            grid=dataset.grid,
            sub_size_list=[4, 2, 1],
            radial_list=[0.3, 0.6],
            centre_list=[(0.0, 0.0)],
        ),
        over_sample_size_pixelization=1,
    )


def configuration_of(dataset: al.Imaging, instrument: str) -> Dict:
    """The numbers that set the likelihood's run time, as the summary JSON reports them."""
    return {
        "pixel_scale_arcsec": INSTRUMENTS[instrument]["pixel_scale"],
        "mask_radius_arcsec": MASK_RADIUS,
        "image_pixels_masked": int(dataset.data.shape[0]),
        "over_sampled_pixels": int(dataset.grids.lp.over_sampled.shape[0]),
    }


"""
__Model__
"""


def mge_model(mask_radius: float = MASK_RADIUS) -> af.Collection:
    """
    The MGE lens model: 15 free parameters.

    - lens: an `Isothermal` mass (5), `ExternalShear` (2) and a bulge of 20 linear Gaussians whose centre
      and ell_comps are shared by all 20 (4),
    - source: a bulge of 20 linear Gaussians, again sharing one centre and one ell_comps (4).

    The Gaussians' sigmas are fixed and their intensities are solved for linearly, so they are not free
    parameters.
    """
    lens = af.Model(
        al.Galaxy,
        redshift=0.5,
        bulge=al.model_util.mge_model_from(
            mask_radius=mask_radius,
            total_gaussians=GAUSSIANS_PER_GALAXY,
            centre_prior_is_uniform=True,
        ),
        mass=af.Model(al.mp.Isothermal),
        shear=af.Model(al.mp.ExternalShear),
    )

    source = af.Model(
        al.Galaxy,
        redshift=1.0,
        bulge=al.model_util.mge_model_from(
            mask_radius=mask_radius,
            total_gaussians=GAUSSIANS_PER_GALAXY,
            centre_prior_is_uniform=False,
        ),
    )

    return af.Collection(galaxies=af.Collection(lens=lens, source=source))


def pixelized_model(pixelization: al.Pixelization) -> af.Collection:
    """
    The pixelized-source lens model: 14 free parameters.

    - lens: a `Sersic` bulge (7), an `Isothermal` mass (5) and `ExternalShear` (2),
    - source: `pixelization`, given as a fixed object. It has no free parameters: its mesh shape (or vertex
      count) and regularization coefficient are constants, so they are part of the pytree's static structure
      and one compile serves every instance.
    """
    lens = af.Model(
        al.Galaxy,
        redshift=0.5,
        bulge=af.Model(al.lp.Sersic),
        mass=af.Model(al.mp.Isothermal),
        shear=af.Model(al.mp.ExternalShear),
    )
    source = af.Model(al.Galaxy, redshift=1.0, pixelization=pixelization)

    return af.Collection(galaxies=af.Collection(lens=lens, source=source))


RECTANGULAR_MESH_SHAPE = (28, 28)
DELAUNAY_OVERLAY_SHAPE = (26, 26)
DELAUNAY_EDGE_POINTS = 30


def rectangular_model() -> af.Collection:
    """The pixelized-source model of `pixelization.py`: a 28 x 28 `RectangularUniform` mesh, `Constant` regularization."""
    return pixelized_model(
        al.Pixelization(
            mesh=al.mesh.RectangularUniform(shape=RECTANGULAR_MESH_SHAPE),
            regularization=al.reg.Constant(coefficient=1.0),
        )
    )


def delaunay_mesh_grid(dataset: al.Imaging) -> al.Grid2DIrregular:
    """
    The image-plane vertices of `delaunay.py`'s mesh: a 26 x 26 `Overlay` grid over the mask, then 30 points on a
    circle at the mask's edge (the last 30 vertices, whose source pixels are zeroed).
    """
    grid = al.image_mesh.Overlay(shape=DELAUNAY_OVERLAY_SHAPE).image_plane_mesh_grid_from(mask=dataset.mask)
    return al.image_mesh.append_with_circle_edge_points(
        image_plane_mesh_grid=grid,
        centre=(0.0, 0.0),
        radius=MASK_RADIUS,
        n_points=DELAUNAY_EDGE_POINTS,
    )


def delaunay_model(mesh_grid) -> af.Collection:
    """
    The pixelized-source model of `delaunay.py`: a `Delaunay` mesh with one vertex per point of `mesh_grid` (the
    edge points zeroed) and `ConstantSplit` regularization (`Constant` finds neighbours with scipy, which cannot
    run on traced vertices).
    """
    return pixelized_model(
        al.Pixelization(
            mesh=al.mesh.Delaunay(pixels=int(mesh_grid.shape[0]), zeroed_pixels=DELAUNAY_EDGE_POINTS),
            regularization=al.reg.ConstantSplit(coefficient=1.0),
        )
    )


def delaunay_adapt_images(instance, mesh_grid) -> al.AdaptImages:
    """
    The image-plane mesh handed to the analysis as upstream's `delaunay.py` does: keyed by the source galaxy of
    `instance` and by its path in the model. Inside a compiled program the instance is rebuilt from tracers, so
    its source galaxy is a new object; the analysis finds the mesh again through the galaxy's path.
    """
    return al.AdaptImages(
        galaxy_image_plane_mesh_grid_dict={instance.galaxies.source: mesh_grid},
        galaxy_name_image_plane_mesh_grid_dict={"('galaxies', 'source')": mesh_grid},
    )


def reference_vector(model: af.Collection) -> np.ndarray:
    """
    The point every profile is evaluated at: the prior medians, except that the lens mass and shear take
    the values the dataset was simulated with, so the fit is a sensible one and an Einstein radius scan
    through it peaks near the truth. A model whose lens light is a `Sersic` (the pixelized-source model) gets
    the simulated Sersic too: at the prior medians its light would swamp the source (log evidence ~ -1.8e9).

    The overrides are addressed by the priors themselves (`model.galaxies.lens.mass.einstein_radius`), never
    by their position in the vector.
    """
    truth = simulator.true_tracer().galaxies[0]
    lens = model.galaxies.lens

    overrides = {
        lens.mass.einstein_radius: truth.mass.einstein_radius,
        lens.mass.ell_comps.ell_comps_0: truth.mass.ell_comps[0],
        lens.mass.ell_comps.ell_comps_1: truth.mass.ell_comps[1],
        lens.shear.gamma_1: truth.shear.gamma_1,
        lens.shear.gamma_2: truth.shear.gamma_2,
    }

    if getattr(lens.bulge, "cls", None) is al.lp.Sersic:
        bulge = truth.bulge
        overrides.update(
            {
                lens.bulge.centre.centre_0: bulge.centre[0],
                lens.bulge.centre.centre_1: bulge.centre[1],
                lens.bulge.ell_comps.ell_comps_0: bulge.ell_comps[0],
                lens.bulge.ell_comps.ell_comps_1: bulge.ell_comps[1],
                lens.bulge.intensity: bulge.intensity,
                lens.bulge.effective_radius: bulge.effective_radius,
                lens.bulge.sersic_index: bulge.sersic_index,
            }
        )

    medians = model.physical_values_from_prior_medians

    return np.array(
        [
            overrides.get(prior, median)
            for prior, median in zip(model.priors_ordered_by_id, medians)
        ]
    )


def linear_gaussian_count(instance) -> int:
    """
    The number of linear Gaussians whose intensities the inversion solves for.

    A `Basis` holds its Gaussians in `profile_list`, so they are counted there (a count of the galaxies'
    direct attributes would see only the `Basis`, and report 0).
    """
    count = 0
    for galaxy in instance.galaxies:
        for value in vars(galaxy).values():
            profiles = (
                value.profile_list if isinstance(value, al.lp_basis.Basis) else [value]
            )
            count += sum(
                isinstance(profile, al.lp_linear.LightProfileLinear)
                for profile in profiles
            )
    return count


"""
__Likelihood__
"""


def likelihood_function(dataset: al.Imaging) -> Callable:
    """
    The log likelihood a non-linear search maximizes, as a function of a model instance.

    This is `AnalysisImaging.log_likelihood_function` itself: with `use_jax=True` it builds the `Tracer`
    from the instance and returns `FitImaging(...).figure_of_merit`, all in `jax.numpy`, so it can be traced.
    """
    analysis = al.AnalysisImaging(dataset=dataset, use_jax=True)
    return analysis.log_likelihood_function


def flat_vector_closure(model: af.Collection, likelihood: Callable) -> Callable:
    """
    The closure `Fitness.call` builds today: it takes the parameter vector and turns it into an instance
    *inside* the trace, so every compile re-runs `instance_from_vector` on tracers.
    """

    def log_likelihood_from_vector(vector):
        return likelihood(model.instance_from_vector(vector, xp=jnp))

    return log_likelihood_from_vector


def pytree_closure(likelihood: Callable) -> Callable:
    """
    The recommended closure: the instance *is* the input. JAX flattens it into its leaves, the model's free
    parameters (a prior shared by the 20 Gaussians of an MGE basis is one leaf), on the way in and rebuilds
    it inside the trace with every shared value put back into each holder, so XLA computes it once.
    """

    def log_likelihood_from_instance(instance):
        return likelihood(instance)

    return log_likelihood_from_instance


"""
__Pixelized Sources__

The linear algebra after the blurred mapping matrix, written out as plain functions of arrays so each step
can be compiled and timed on its own. They compute what `InversionImagingMapping` and `FitImaging` compute
(the same library functions where there is one), with the settings the analysis uses: the positive-only
solver, solving only for the pixels that are not zeroed at the mesh edge.
"""


def data_vector_from(blurred_mapping_matrix, profile_subtracted_image, noise_map):
    """D: what the source pixels are fitted to, the lens-subtracted image weighted by the noise."""
    return al.util.inversion_imaging.data_vector_via_blurred_mapping_matrix_from(
        blurred_mapping_matrix=blurred_mapping_matrix,
        image=profile_subtracted_image,
        noise_map=noise_map,
    )


def curvature_matrix_from(blurred_mapping_matrix, noise_map, settings):
    """F = B^T N^-1 B, with every source pixel regularized (no diagonal term is added)."""
    return al.util.inversion.curvature_matrix_via_mapping_matrix_from(
        mapping_matrix=blurred_mapping_matrix,
        noise_map=noise_map,
        settings=settings,
        add_to_curvature_diag=True,
        no_regularization_index_list=[],
        xp=jnp,
    )


def reconstruction_from(data_vector, curvature_matrix, regularization_matrix, ids_to_keep, settings):
    """
    The source pixel fluxes s: the non-negative solution of (F + H) s = D over the pixels in `ids_to_keep`
    (the edge pixels left out stay zero). `ids_to_keep` is a NumPy array, so it is a constant of the program.
    """
    curvature_reg_matrix = curvature_matrix + regularization_matrix
    partial = al.util.inversion.reconstruction_positive_only_from(
        data_vector=data_vector[ids_to_keep],
        curvature_reg_matrix=curvature_reg_matrix[ids_to_keep][:, ids_to_keep],
        settings=settings,
        xp=jnp,
    )
    return jnp.zeros(data_vector.shape[0]).at[ids_to_keep].set(partial)


def mapped_reconstruction_from(blurred_mapping_matrix, reconstruction):
    """The source's image: the blurred mapping matrix applied to the reconstruction."""
    return al.util.inversion.mapped_reconstructed_data_via_mapping_matrix_from(
        mapping_matrix=blurred_mapping_matrix, reconstruction=reconstruction, xp=jnp
    )


def log_evidence_from(
    data, noise_map, lens_image, source_image, reconstruction, curvature_matrix, regularization_matrix
):
    """
    -2 ln(evidence) = chi^2 + s^T H s + ln det(F + H) - ln det(H) + sum ln(2 pi sigma^2)

    The log determinants come from Cholesky factors, as in the inversion.
    """
    chi_squared = jnp.sum(((data - lens_image - source_image) / noise_map) ** 2)
    regularization_term = reconstruction @ regularization_matrix @ reconstruction

    def log_det(matrix):
        return 2.0 * jnp.sum(jnp.log(jnp.diag(jnp.linalg.cholesky(matrix))))

    noise_normalization = jnp.sum(jnp.log(2.0 * jnp.pi * noise_map**2))
    return -0.5 * (
        chi_squared
        + regularization_term
        + log_det(curvature_matrix + regularization_matrix)
        - log_det(regularization_matrix)
        + noise_normalization
    )


"""
__What Every Profile Reports__

`mge.py`, `pixelization.py` and `delaunay.py` end the same way: the full pipeline compiled as one program and
checked against `FitImaging.figure_of_merit`, the same likelihood through the flat vector, a `jax.vmap` batch of
different instances with its static memory, and a summary (table, JSON, bar chart). What differs between them
is what their figure of merit is called, how closely it must match, and whether its times read best in
milliseconds (MGE) or seconds (pixelized sources): a `Reporting`.
"""


@dataclass(frozen=True)
class Reporting:
    """
    How a script names, checks and prints its figure of merit.

    - `quantity`: "log likelihood" (MGE) or "log evidence" (pixelized source), in printed lines and errors,
    - `rtol`: the tolerance against `FitImaging.figure_of_merit`; `quote_rtol` says whether the "matches" line
      quotes it,
    - `milliseconds`: per-call times printed in ms (3 decimals, speed-ups to 1) rather than in s (4 decimals,
      speed-ups to 2),
    - `results_width`: the column the batch and single-call result labels are padded to.
    """

    quantity: str
    rtol: float
    quote_rtol: bool
    milliseconds: bool
    results_width: int

    @property
    def speedup_digits(self) -> int:
        return 1 if self.milliseconds else 2

    def per_call(self, seconds: float) -> str:
        """A steady-state time as the script prints it."""
        return f"{seconds * 1e3:.3f} ms" if self.milliseconds else f"{seconds:.4f} s"

    def chart_time(self, seconds: float) -> str:
        """A time as the bar chart's legend gives it."""
        return f"{seconds * 1e3:.3f} ms" if self.milliseconds else f"{seconds:.3f} s"

    def check(self, value: float, figure_of_merit: float, source: str):
        """Assert `value` (from `source`, e.g. 'step-by-step') matches `FitImaging.figure_of_merit`, and say so."""
        np.testing.assert_allclose(
            value,
            figure_of_merit,
            rtol=self.rtol,
            err_msg=f"{source} {self.quantity} differs from FitImaging.figure_of_merit",
        )
        print(
            "  matches FitImaging.figure_of_merit"
            + (f" (rtol {util.rtol_text(self.rtol)})" if self.quote_rtol else "")
        )


def full_pipeline(log_likelihood_from_instance: Callable, instance, figure_of_merit: float, reporting, repeats: int):
    """
    Compile and time the whole likelihood as one program (`time_jit`), print it and check it against
    `FitImaging.figure_of_merit`. Returns the `time_jit` record and the figure of merit it computed.
    """
    print("\n" + "=" * 70)
    print("FULL-PIPELINE JIT")
    print("=" * 70)

    full = util.time_jit(log_likelihood_from_instance, instance, repeats=repeats)
    value = float(full["result"])

    print(
        f"  lower {full['lower_s']:.3f} s | compile {full['compile_s']:.3f} s | "
        f"first {full['first_call_s']:.4f} s | steady {reporting.per_call(full['steady_per_call_s'])}"
    )
    print(f"  {reporting.quantity} = {value}")
    reporting.check(value, figure_of_merit, "full-pipeline")
    return full, value


def compare_with_flat_vector(model, likelihood: Callable, vector, pytree_value: float, reporting, repeats: int):
    """
    Compile and time the same likelihood through the flat-vector closure (`flat_vector_closure`) and assert it
    gives the pytree pipeline's `pytree_value` to rtol 1e-10. Returns the `time_jit` record and its value.
    """
    flat = util.time_jit(flat_vector_closure(model, likelihood), jnp.asarray(vector), repeats=repeats)
    value = float(flat["result"])

    print(
        f"\n  flat-vector pipeline: lower {flat['lower_s']:.3f} s | compile {flat['compile_s']:.3f} s | "
        f"steady {reporting.per_call(flat['steady_per_call_s'])} | {reporting.quantity} = {value}"
    )

    np.testing.assert_allclose(
        pytree_value,
        value,
        rtol=1e-10,
        err_msg="pytree pipeline differs from the flat-vector pipeline",
    )
    print("  pytree pipeline matches the flat-vector pipeline (rtol 1e-10)")
    return flat, value


def vmap_batch(
    log_likelihood_from_instance: Callable,
    instances: Sequence,
    full: Dict,
    reporting,
    repeats: int,
    single_results=None,
) -> Dict:
    """
    Stack `instances` leaf by leaf into one batch and compile and time the `jax.vmap` of the likelihood over it.

    The lanes are compared with single calls of the full pipeline's program (`full`): pass `single_results` if
    the script made (and printed) them already, otherwise they are made and printed here, after the batch.
    Prints the batch's results and timings; the script asserts the agreement it needs. Returns the `time_jit`
    record with `batch` (the stacked instances), `results`, `single_results`, `batch_time`, `per_call` and
    `speedup` (over the single JIT) added.
    """
    batch = util.stack_instances(instances)

    vmapped = util.time_jit(jax.vmap(log_likelihood_from_instance), batch, repeats=repeats)
    vmapped["batch"] = batch
    vmapped["results"] = np.asarray(vmapped["result"])
    vmapped["batch_time"] = vmapped["steady_per_call_s"]
    vmapped["per_call"] = vmapped["batch_time"] / len(instances)
    vmapped["speedup"] = full["steady_per_call_s"] / vmapped["per_call"]

    width = reporting.results_width
    print(f"  {'batch ' + reporting.quantity + 's':<{width}} = {vmapped['results']}")
    if single_results is None:
        single_results = np.array([float(full["jitted"](member)) for member in instances])
        print(f"  {'single-call results':<{width}} = {single_results}")
    vmapped["single_results"] = single_results

    print(
        f"  lower {vmapped['lower_s']:.3f} s | compile {vmapped['compile_s']:.3f} s | "
        f"batch of {len(instances)}: {reporting.per_call(vmapped['batch_time'])} | "
        f"per call {reporting.per_call(vmapped['per_call'])} "
        f"({vmapped['speedup']:.{reporting.speedup_digits}f}x the single JIT)"
    )
    return vmapped


def batch_size_for(requested: int, devices: Sequence) -> int:
    """
    `requested` rounded up to a multiple of the number of `devices`, so a sharded batch splits evenly; a line
    says so when it had to be rounded.
    """
    count = len(devices)
    batch_size = -(-requested // count) * count
    if batch_size != requested:
        print(f"  batch size {requested} rounded up to {batch_size}, a multiple of the {count} devices")
    return batch_size


BATCH_AXIS = "batch"


def batch_mesh(devices: Sequence) -> jax.sharding.Mesh:
    """A 1-D mesh of `devices` whose one axis, "batch", a batch of instances is split along."""
    return jax.sharding.Mesh(np.array(devices), (BATCH_AXIS,))


def shard_batch(batch, mesh: jax.sharding.Mesh):
    """
    `batch` (stacked instances: every leaf has a leading batch axis) placed leaf by leaf over `mesh`, each leaf's
    leading axis split along the mesh's "batch" axis: of B lanes, device i of N holds lanes
    [i * B / N, (i + 1) * B / N) of every leaf.
    """
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(BATCH_AXIS))
    return jax.tree_util.tree_map(lambda leaf: jax.device_put(leaf, sharding), batch)


def sharded_likelihood(log_likelihood_from_instance: Callable, mesh: jax.sharding.Mesh) -> Callable:
    """
    The vmapped likelihood run by every device of `mesh` on its own lanes of a batch sharded by `shard_batch`:
    `jax.shard_map` of the `jax.vmap`, its input and output split along "batch".

    Calling the jitted vmap itself on the sharded batch also works (XLA partitions it by the inputs' shardings)
    and gives the same numbers, but the partitioner does not split every operation along the batch: it gathers
    the batch onto every device for the PSF convolutions' FFTs, so each device computes them for all lanes,
    and it adds a cross-device all-reduce to every iteration of the non-negative solver's loop (a batched loop
    runs until its last lane has converged, so the devices must agree on when to stop). On a CPU, XLA aborts the
    process when a device waits more than 10 s at such an all-reduce, which a Delaunay batch on a loaded 2-core
    machine did. Mapped by shard, the program has no cross-device communication at all (`check_vma=False`: the
    solver's loop carries values that differ by device).
    """
    spec = jax.sharding.PartitionSpec(BATCH_AXIS)
    return jax.shard_map(
        jax.vmap(log_likelihood_from_instance),
        mesh=mesh,
        in_specs=(spec,),
        out_specs=spec,
        check_vma=False,
    )


def sharded_vmap_batch(
    log_likelihood_from_instance: Callable,
    vmapped: Dict,
    devices: Sequence,
    reporting,
    repeats: int,
    rtol: float,
) -> Dict:
    """
    The vmap batch of `vmap_batch` (its record `vmapped`) again, sharded over `devices`: the stacked instances
    placed leaf by leaf over a 1-D mesh of the devices (`shard_batch`) and the vmapped likelihood jitted and
    called on them, each device computing its own lanes (`sharded_likelihood`).

    Its lanes are asserted to equal the one-device batch's to `rtol`, and the result is asserted to live on
    every device. Then the one-device program and the sharded one are timed in turn, one call each, `repeats`
    times (alternating which goes first), so a machine whose speed drifts slows both alike; the scaling
    efficiency is the one-device time per point over the sharded time per point, over the number of devices
    (1.0: perfect scaling).

    With one device there is nothing to shard: the block gives the vmap batch's time for both and says so.
    Returns the summary JSON's `sharding` block (`sharding_summary`).
    """
    print(f"\n--- vmap batch sharded over {len(devices)} device(s) ---")

    batch = vmapped["batch"]
    batch_size = len(vmapped["results"])

    if len(devices) == 1:
        note = "one device: nothing to shard; both times are the vmap batch's"
        print(f"  {note}")
        return sharding_summary(
            devices,
            batch_size,
            per_point_1_device=vmapped["per_call"],
            per_point_n_devices=vmapped["per_call"],
            max_relative_difference=0.0,
            note=note,
        )

    mesh = batch_mesh(devices)
    sharded_batch = shard_batch(batch, mesh)
    sharded = util.time_jit(sharded_likelihood(log_likelihood_from_instance, mesh), sharded_batch, repeats=0)
    results = np.asarray(sharded["result"])
    result_devices = len(sharded["result"].sharding.device_set)

    width = reporting.results_width
    print(f"  {'sharded ' + reporting.quantity + 's':<{width}} = {results}")
    print(
        f"  lower {sharded['lower_s']:.3f} s | compile {sharded['compile_s']:.3f} s | "
        f"first {sharded['first_call_s']:.4f} s | result on {result_devices} devices"
    )

    assert result_devices == len(devices), (
        f"the sharded batch's result lives on {result_devices} devices, not {len(devices)}"
    )
    np.testing.assert_allclose(
        results,
        vmapped["results"],
        rtol=rtol,
        err_msg="the sharded batch differs from the one-device batch",
    )
    max_relative_difference = float(np.max(np.abs(results / vmapped["results"] - 1.0)))
    print(
        f"  sharded batch matches the one-device batch (rtol {util.rtol_text(rtol)}; "
        f"max relative difference {max_relative_difference:.1e})"
    )

    per_call = util.time_interleaved(
        {
            "1_device": (vmapped["jitted"], batch),
            "n_devices": (sharded["jitted"], sharded_batch),
        },
        repeats=repeats,
    )
    block = sharding_summary(
        devices,
        batch_size,
        per_point_1_device=None if per_call["1_device"] is None else per_call["1_device"] / batch_size,
        per_point_n_devices=None if per_call["n_devices"] is None else per_call["n_devices"] / batch_size,
        max_relative_difference=max_relative_difference,
        partitioning="shard_map of the vmap, no cross-device communication",
        lower_s=sharded["lower_s"],
        compile_s=sharded["compile_s"],
    )
    if block["speedup"] is not None:
        print(
            f"  per point: 1 device {reporting.per_call(block['per_point_s_1_device'])} | "
            f"{len(devices)} devices {reporting.per_call(block['per_point_s_n_devices'])} | "
            f"speedup {block['speedup']:.2f}x | efficiency {block['efficiency']:.2f}"
        )
    return block


def sharded_per_call(sharding: Dict) -> float:
    """The sharded batch's time per point from a `sharding` block, None where nothing was sharded or timed."""
    if sharding is None or sharding["devices"] == 1:
        return None
    return sharding["per_point_s_n_devices"]


def sharding_summary(
    devices: Sequence,
    batch_size: int,
    per_point_1_device: float = None,
    per_point_n_devices: float = None,
    max_relative_difference: float = None,
    note: str = None,
    **details,
) -> Dict:
    """
    The summary JSON's `sharding` block: the per-point steady times on one device and on all of `devices`, the
    speed-up and the scaling efficiency (speed-up / devices), the largest relative difference of a lane, and
    `details` (how the program was partitioned, its lower and compile times). Times not measured are None
    (`note` says why).
    """
    measured = per_point_1_device is not None and per_point_n_devices is not None
    speedup = per_point_1_device / per_point_n_devices if measured else None
    summary = {
        "devices": len(devices),
        "platform": devices[0].platform,
        "batch_size": batch_size,
        "per_point_s_1_device": per_point_1_device,
        "per_point_s_n_devices": per_point_n_devices,
        "speedup": speedup,
        "efficiency": None if speedup is None else speedup / len(devices),
        "max_relative_difference_sharded_vs_unsharded": max_relative_difference,
        **details,
    }
    if note is not None:
        summary["note"] = note
    return summary


def static_memory(compiled) -> Dict:
    """Print `memory_mb` of a compiled vmap batch, one buffer kind a line, and return it."""
    print("\n--- Static memory analysis (vmap batch) ---")

    sizes = util.memory_mb(compiled)
    if sizes is None:
        print("  not available on this backend")
    else:
        for key, value in sizes.items():
            print(f"  {key:<15} {value:10.3f} MB")
    return sizes


def vmap_summary(batch_size: int, vmapped: Dict, memory: Dict, reporting, note: str = None) -> Dict:
    """
    The summary JSON's `vmap` block; `vmapped` is `vmap_batch`'s record, or None where the batch was skipped
    (`note` then says why, and is included whenever given).
    """
    vmapped = vmapped or {}
    speedup = vmapped.get("speedup")
    summary = {
        "batch_size": batch_size,
        "batch_time": vmapped.get("batch_time"),
        "per_call": vmapped.get("per_call"),
        "speedup_vs_single_jit": None if speedup is None else round(speedup, reporting.speedup_digits),
        "lower_s": vmapped.get("lower_s"),
        "compile_s": vmapped.get("compile_s"),
        "memory_mb": memory,
    }
    if note is not None:
        summary["note"] = note
    return summary


def likelihood_summary(
    instrument: str,
    configuration: Dict,
    steps: Dict,
    full: Dict,
    flat: Dict,
    vmap: Dict,
    figure_of_merit: float,
    step_by_step: float,
    pytree: Dict,
    repeats: int,
    reporting,
    batch_size: int,
    sharding: Dict = None,
    extra: Dict = None,
) -> Dict:
    """
    Print the summary table (each step's steady-state time, their total, the full pipeline, the vmap per-call
    time and, where measured, the sharded batch's) and return the summary JSON: `vmap` is `vmap_summary`'s
    block, the figure of merit is stored by where it came from (`FitImaging`, `step_by_step`, the `full` and
    `flat` programs) under e.g. `log_evidence`, `pytree` is `profiling_util.pytree_summary`'s block, `sharding`
    `sharded_vmap_batch`'s and `extra` any blocks only this script has.
    """
    version = al.__version__
    full_per_call = full["steady_per_call_s"]
    step_per_call = {label: timing["steady_per_call_s"] for label, timing in steps.items()}
    step_total = sum(step_per_call.values())
    vmap_per_call = vmap["per_call"]

    sharded_per_point = sharded_per_call(sharding)
    sharded_label = "" if sharded_per_point is None else f"vmap on {sharding['devices']} devices (per call)"

    print("\n" + "=" * 70)
    print(f"JAX LIKELIHOOD FUNCTION SUMMARY - {instrument.upper()} - v{version}")
    print("=" * 70)
    width = max(len(label) for label in [*step_per_call, sharded_label])
    for number, (label, per_call) in enumerate(step_per_call.items(), 1):
        print(f"  {number:>2}. {label:<{width}}  {per_call:>12.6f} s")
    print("-" * 70)
    print(f"      {'TOTAL (step-by-step)':<{width}}  {step_total:>12.6f} s")
    print(f"      {'Full pipeline (single JIT)':<{width}}  {full_per_call:>12.6f} s")
    if vmap_per_call is not None:
        print(f"      {f'vmap batch={batch_size} (per call)':<{width}}  {vmap_per_call:>12.6f} s")
    if sharded_per_point is not None:
        print(
            f"      {sharded_label:<{width}}  {sharded_per_point:>12.6f} s  "
            f"(efficiency {sharding['efficiency']:.2f})"
        )
    print(f"      {'Full pipeline lower / compile':<{width}}  {full['lower_s']:.3f} s / {full['compile_s']:.3f} s")
    print("=" * 70)

    return {
        "autolens_version": version,
        "instrument": instrument,
        "configuration": configuration,
        "steps": step_per_call,
        "step_timings": {label: util.timings_only(timing) for label, timing in steps.items()},
        "total_step_by_step": step_total,
        "full_pipeline_single_jit": full_per_call,
        "full_pipeline_lower_s": full["lower_s"],
        "full_pipeline_compile_s": full["compile_s"],
        "full_pipeline_first_call_s": full["first_call_s"],
        "flat_vector_pipeline": util.timings_only(flat),
        "vmap": vmap,
        **({} if sharding is None else {"sharding": sharding}),
        reporting.quantity.replace(" ", "_"): {
            "fit_imaging_figure_of_merit": figure_of_merit,
            "step_by_step": step_by_step,
            "full_pipeline_pytree": float(full["result"]),
            "full_pipeline_flat_vector": float(flat["result"]),
        },
        "pytree": pytree,
        **(extra or {}),
        "repeats": repeats,
    }


def write_summary(summary: Dict, stem: str, reporting, title: str, subtitle: str, **chart) -> Path:
    """
    Write `summary` to `results/<stem>.json` and its bar chart (`bar_chart`, with the full pipeline and, where
    measured, the vmap and sharded per-call times as lines; `chart` passes on its size) to `results/<stem>.png`.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)

    summary_path = RESULTS_DIR / f"{stem}.json"
    summary_path.write_text(json.dumps(summary, indent=2))
    print(f"\n  summary: {summary_path}")

    full_per_call = summary["full_pipeline_single_jit"]
    vmap = summary["vmap"]
    lines = [
        (
            full_per_call,
            f"full pipeline (single JIT): {reporting.chart_time(full_per_call)} "
            f"(lower {summary['full_pipeline_lower_s']:.1f} s, compile {summary['full_pipeline_compile_s']:.1f} s)",
            "#C44E52",
        ),
    ]
    if vmap["per_call"] is not None:
        lines.append(
            (
                vmap["per_call"],
                f"vmap batch of {vmap['batch_size']}, per call: {reporting.chart_time(vmap['per_call'])}",
                "#55A868",
            )
        )

    sharding = summary.get("sharding")
    sharded_per_point = sharded_per_call(sharding)
    if sharded_per_point is not None:
        lines.append(
            (
                sharded_per_point,
                f"vmap batch sharded over {sharding['devices']} devices, per call: "
                f"{reporting.chart_time(sharded_per_point)} (efficiency {sharding['efficiency']:.2f})",
                "#8172B2",
            )
        )

    chart_path = RESULTS_DIR / f"{stem}.png"
    util.bar_chart(chart_path, summary["steps"], lines=lines, title=title, subtitle=subtitle, **chart)
    print(f"  bar chart: {chart_path}")
    return chart_path

