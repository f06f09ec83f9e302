"""
JAX Profiling: A Pixelized Source On A Delaunay Mesh
====================================================

This script profiles the JAX likelihood of a lens model whose source is reconstructed on a Delaunay mesh: its
vertices are chosen in the image plane, traced to the source plane by the lens at every likelihood call and
triangulated there, so the source pixels follow the lensed source. The lens has a `Sersic` bulge, an `Isothermal`
mass and `ExternalShear` (14 free parameters); the mesh and its `ConstantSplit` regularization are fixed. The figure
of merit is the Bayesian log evidence of the source reconstruction. `pixelization.py` profiles the same lens with a
rectangular mesh; this script dwells on what the Delaunay mesh changes.

What is measured, each number asserted where it can be:

1. The likelihood step by step, at the steps the Delaunay mesh changes.
2. The full likelihood compiled as one program, equal to the eager NumPy `FitImaging`.
3. The same likelihood taking the flat parameter vector a search's `Fitness` passes, against the instance.
4. A `jax.vmap` batch of instances (`--no-vmap` skips it), every lane equal to its single call and to the eager
   likelihood.
5. `jax.grad` by parameter name against central differences, and the log evidence along the Einstein radius, where
   JAX can differentiate the triangulation (see __Gradient__).

__Usage__

    python delaunay.py --instrument hst --repeats 3 --batch-size 3 --scan-points 5

Results go to `results/delaunay_likelihood_summary_<instrument>_v<version>` (`.json` and a bar chart).
"""

"""
__64-bit JAX__

Before every other import, for the reason given in `pixelization.py`.
"""
import os

os.environ["JAX_ENABLE_X64"] = "True"

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import profiling_util as util

import autofit as af
import autolens as al

from simulators import imaging as simulator

results_path = Path(__file__).resolve().parent / "results"

"""
__Command Line__

The shared options, with the defaults of `pixelization.py`, and `--vmap`: upstream's own script skips the batch,
whose compile once took 20 minutes; over instances it compiles in seconds.
"""
parser = util.argument_parser(__doc__.split("\n")[1], repeats=3, batch_size=3, scan_points=5)
parser.add_argument("--instrument", default="hst", choices=list(simulator.INSTRUMENTS), help="the telescope (hst)")
parser.add_argument("--vmap", action=argparse.BooleanOptionalAction, default=True, help="time a vmap batch (yes)")
args = parser.parse_args()

"""
__Dataset__

The simulated lens of `simulators/imaging.py`, masked and over-sampled as in `pixelization.py`.
"""
dataset_path = simulator.ensure(args.instrument)
dataset = al.Imaging.from_fits(
    data_path=dataset_path / "data.fits", noise_map_path=dataset_path / "noise_map.fits",
    psf_path=dataset_path / "psf.fits", pixel_scales=simulator.INSTRUMENTS[args.instrument]["pixel_scale"],
)
dataset = dataset.apply_mask(
    mask=al.Mask2D.circular(
        shape_native=dataset.shape_native, pixel_scales=dataset.pixel_scales, radius=simulator.MASK_RADIUS
    )
)
dataset = dataset.apply_over_sampling(
    over_sample_size_lp=al.util.over_sample.over_sample_size_via_radial_bins_from(
        grid=dataset.grid, sub_size_list=[4, 2, 1], radial_list=[0.3, 0.6], centre_list=[(0.0, 0.0)]
    ),
    over_sample_size_pixelization=1,
)

"""
__Mesh__

The vertices are a 26 x 26 `Overlay` grid over the mask, and 30 points on a circle at the mask's edge, whose source
pixels are zeroed (not solved for), so the reconstruction falls to zero at its border. Their number and the edge
count fix the `Delaunay` mesh's shape, a constant of the model. `ConstantSplit` regularizes through interpolation
weights computed in `jax.numpy` (`Constant` finds each vertex's neighbours with SciPy).
"""
edge_points = 30
mesh_grid = al.image_mesh.Overlay(shape=(26, 26)).image_plane_mesh_grid_from(mask=dataset.mask)
mesh_grid = al.image_mesh.append_with_circle_edge_points(
    image_plane_mesh_grid=mesh_grid, centre=(0.0, 0.0), radius=simulator.MASK_RADIUS, n_points=edge_points
)
vertices = int(mesh_grid.shape[0])
mesh = al.mesh.Delaunay(pixels=vertices, zeroed_pixels=edge_points)

"""
__Model And Instance__

As in `pixelization.py`, the 14 free parameters are the lens's, taken at their simulated values (read by name).
"""
lens = af.Model(al.Galaxy, redshift=0.5, bulge=al.lp.Sersic, mass=al.mp.Isothermal, shear=al.mp.ExternalShear)
pixelization = al.Pixelization(mesh=mesh, regularization=al.reg.ConstantSplit(coefficient=1.0))
source = af.Model(al.Galaxy, redshift=1.0, pixelization=pixelization)
model = af.Collection(galaxies=af.Collection(lens=lens, source=source))

true_lens = simulator.true_tracer().galaxies[0]
instance = model.instance_from_vector(vector=list(af.values_by_path(lens, true_lens).values()))

"""
__Analysis__

The image-plane vertices reach the likelihood as adapt images, keyed by the source galaxy and by its path in the
model: inside a compiled program the instance is rebuilt from its leaves, its source galaxy a new object, and the
analysis finds the vertices again by the path. The eager analysis, without JAX, builds the reference `FitImaging`.
"""
adapt_images = al.AdaptImages(
    galaxy_image_plane_mesh_grid_dict={instance.galaxies.source: mesh_grid},
    galaxy_name_image_plane_mesh_grid_dict={"('galaxies', 'source')": mesh_grid},
)
analysis = al.AnalysisImaging(dataset=dataset, adapt_images=adapt_images, use_jax=True)
likelihood = analysis.log_likelihood_function
eager = al.AnalysisImaging(dataset=dataset, adapt_images=adapt_images, use_jax=False)


def eager_log_evidence_of(instance):
    """Its `figure_of_merit`: the eager `log_likelihood_function` returns `log_likelihood`, without regularization."""
    return float(eager.fit_from(instance=instance).figure_of_merit)


eager_log_evidence = eager_log_evidence_of(instance)
print(f"\n  {vertices} vertices; FitImaging: log evidence {eager_log_evidence}")

"""
__The Likelihood Step By Step__

Where the rectangular mesh's steps are the same (the lens light, D and F), they cost here what they cost there.
These are the ones the Delaunay mesh changes, each timed as the likelihood up to and including it: the vertices
traced to the source plane; the triangulation (SciPy, called from the program through a host callback) and each
image pixel's barycentric weights in its triangle, the mapping matrix; the regularization matrix, which depends on
the triangulation; the solution and the log evidence.
"""
steps = util.profile_fit_steps(
    analysis,
    instance,
    {
        "Ray-trace mesh vertices": lambda fit: fit.tracer.traced_grid_2d_list_from(
            grid=al.Grid2DIrregular(values=mesh_grid), xp=jnp
        )[-1].array,
        "Triangulation & mapping matrix": lambda fit: fit.inversion.mapping_matrix,
        "Blurred mapping matrix": lambda fit: fit.inversion.operated_mapping_matrix,
        "Regularization matrix (H)": lambda fit: fit.inversion.regularization_matrix,
        "Reconstruction (NNLS)": lambda fit: fit.inversion.reconstruction,
        "Log evidence": lambda fit: fit.figure_of_merit,
    },
    args.repeats,
)

"""
__One Program, Two Inputs__

The whole likelihood compiled once and checked against the eager `FitImaging`; then the same likelihood of the flat
vector, with the instance built inside the trace, timed in turn against it.
"""
full = util.full_pipeline(likelihood, instance, eager_log_evidence, "FitImaging", args.repeats)
flat_vector = util.flat_vector_ratio(likelihood, model, instance, args.repeats)

"""
__vmap__

The triangulation's callback runs once per lane, in turn, inside the batched program.
"""
vmap = None
if args.vmap:
    vmap = util.vmap_batch(
        likelihood, model, instance, args.batch_size, full, args.repeats, eager_likelihood=eager_log_evidence_of
    )

"""
__Gradient And Einstein Radius Scan__

The triangulation runs in SciPy, called from the program through `jax.pure_callback`, which has no derivative: JAX
refuses `jax.grad` of this likelihood as it traces it (`jax.eval_shape` traces without computing). Where JAX accepts
it the gradient is checked by name as in `pixelization.py`; where not, its refusal is recorded. The scan is then of
the log evidence alone, at Einstein radii within 10% of the simulated one: one `jax.vmap` of a function of that one
leaf, every other leaf held.
"""
gradient = None
if args.gradient:
    try:
        jax.eval_shape(jax.grad(likelihood), instance)
    except ValueError as error:
        gradient = {"error": str(error)}
        print(f"\n  jax.grad: {error}")
    else:
        simulated = af.values_by_path(model, instance).values()
        moved = model.instance_from_vector(vector=[value + 0.005 for value in simulated])
        gradient = util.gradient_check(likelihood, model, moved, (1e-7,), rtol=1e-5, repeats=args.repeats)

leaves, treedef = jax.tree_util.tree_flatten(instance)
position = list(af.values_by_path(model, instance)).index("galaxies.lens.mass.einstein_radius")


def log_evidence_at(einstein_radius):
    return likelihood(treedef.unflatten(leaves[:position] + [einstein_radius] + leaves[position + 1 :]))


values = np.linspace(0.9, 1.1, args.scan_points) * true_lens.mass.einstein_radius
timing = util.time_jit(jax.vmap(log_evidence_at), values, repeats=0)
scan = {
    "parameter": "galaxies.lens.mass.einstein_radius",
    "values": values,
    "log_likelihood": timing["result"],
    "best": float(values[np.argmax(timing["result"])]),
    "simulated": true_lens.mass.einstein_radius,
    **{key: timing[key] for key in ("lower_s", "compile_s", "first_call_s")},
}
print(f"\n  scan of {args.scan_points}: compile {timing['compile_s']:.2f} s, first call {timing['first_call_s']:.2f} s")
print(f"  best Einstein radius {scan['best']:.4f} (simulated {scan['simulated']})")

"""
__Summary__

In the JSON's shared names, `log_likelihood` is the log evidence, and `gradient` holds JAX's refusal where it
refuses.
"""
version = al.__version__
configuration = dict(instrument=args.instrument, image_pixels_masked=int(dataset.data.shape[0]), vertices=vertices)
configuration.update(overlay_shape=[26, 26], edge_points=edge_points, free_parameters=model.total_free_parameters)
log_likelihood = {"eager": eager_log_evidence, "jit": float(full["result"])}
summary = dict(autolens_version=version, configuration=configuration, log_likelihood=log_likelihood)
summary.update(steps=steps, full_pipeline=full, flat_vector=flat_vector, vmap=vmap, repeats=args.repeats)
summary.update(gradient=gradient, einstein_radius_scan=scan)
util.write_summary(
    summary,
    results_path,
    f"delaunay_likelihood_summary_{args.instrument}_v{version}",
    title=f"Pixelized source (Delaunay, {vertices} vertices) - {args.instrument.upper()}",
    subtitle=f"autolens v{version} | {args.instrument} | {configuration['image_pixels_masked']} pixels | "
    f"{vertices} source pixels | 14 free parameters",
)
