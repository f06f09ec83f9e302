"""
JAX Profiling: A Basis Of Profiles, One By One Versus Vectorised
================================================================

The MGE likelihood of `mge.py` solves for the intensities of 40 linear Gaussians (20 in the lens light, 20 in the
source). Traced one by one, as upstream does, each Gaussian adds its own copy of the image, blurring and convolution
code to the compiled program, and a new convolution state (the PSF's FFT and index arrays) for every image it
convolves. The PyAutoGalaxy series evaluates the linear profiles of one class as one `jax.vmap` over their stacked
parameters, and the PyAutoArray series convolves every image on the dataset's mask with the dataset's one
convolution state.

This script builds the same likelihood both ways in one process and reports, side by side:

- `jaxpr_equations` and `constants` (how many arrays the program embeds, their bytes, and how many repeat another's
  content): the size of the program JAX hands to XLA, and `stablehlo_bytes`, the lowered program's text,
- `lower_s` / `compile_s` / `steady_s` of the likelihood and of `jax.jit(jax.grad(likelihood))`, the steady calls of
  the two sides called in turn,

and checks that both give the same likelihood (1e-10) and the same gradient by name (1e-8). `--model pixelization`
profiles the rectangular pixelized source of `pixelization.py`, which has no basis: only the convolution state
differs there.

__Usage__

    python basis_loop_vs_vectorised.py --instrument hst
    python basis_loop_vs_vectorised.py --instrument euclid --model pixelization --no-gradient

Results go to `results/basis_loop_vs_vectorised_<model>_<instrument>.json`.
"""
import os

os.environ["JAX_ENABLE_X64"] = "True"

import json
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import profiling_util as util

import autofit as af
import autolens as al
from autoarray.operators.convolver import ConvolverState
import autogalaxy.profiles.light.linear.abstract as linear_profiles

from simulators import imaging as simulator

parser = util.argument_parser(__doc__.split("\n")[1], repeats=10)
parser.add_argument("--model", default="mge", choices=["mge", "pixelization"], help="the lens model (mge)")
parser.add_argument("--instrument", default="hst", choices=list(simulator.INSTRUMENTS), help="the telescope (hst)")
args = parser.parse_args()

"""
__Dataset, Model, Instance__

The dataset, models and instances of `mge.py` and `pixelization.py`, written compactly: the simulated lens masked
with a 3.5" circle and over-sampled near its centre, and the lens mass and shear (with a pixelized source, the whole
lens) at their simulated values, every value then moved by 0.005, where both scripts check their gradients (at the
simulated values a pixelized source's gradient is NaN in the mass centre, which sits on an image pixel).
"""
folder, pixel_scale = simulator.ensure(args.instrument), simulator.INSTRUMENTS[args.instrument]["pixel_scale"]
dataset = al.Imaging.from_fits(
    data_path=folder / "data.fits", noise_map_path=folder / "noise_map.fits", psf_path=folder / "psf.fits",
    pixel_scales=pixel_scale,
)
mask = al.Mask2D.circular(shape_native=dataset.shape_native, radius=simulator.MASK_RADIUS, pixel_scales=pixel_scale)
dataset = dataset.apply_mask(mask=mask)
over_sample_size_lp = al.util.over_sample.over_sample_size_via_radial_bins_from(
    grid=dataset.grid, sub_size_list=[4, 2, 1], radial_list=[0.3, 0.6], centre_list=[(0.0, 0.0)]
)
dataset = dataset.apply_over_sampling(over_sample_size_lp=over_sample_size_lp, over_sample_size_pixelization=1)

if args.model == "mge":
    def basis(uniform):
        return al.model_util.mge_model_from(simulator.MASK_RADIUS, total_gaussians=20, centre_prior_is_uniform=uniform)

    lens = af.Model(al.Galaxy, redshift=0.5, bulge=basis(True), mass=al.mp.Isothermal, shear=al.mp.ExternalShear)
    source = af.Model(al.Galaxy, redshift=1.0, bulge=basis(False))
    simulated = ("mass", "shear")
else:
    pixelization = al.Pixelization(mesh=al.mesh.RectangularUniform(shape=(28, 28)), regularization=al.reg.Constant())
    lens = af.Model(al.Galaxy, redshift=0.5, bulge=al.lp.Sersic, mass=al.mp.Isothermal, shear=al.mp.ExternalShear)
    source = af.Model(al.Galaxy, redshift=1.0, pixelization=pixelization)
    simulated = ("bulge", "mass", "shear")
model = af.Collection(galaxies=af.Collection(lens=lens, source=source))

true_lens = simulator.true_tracer().galaxies[0]
parameters = dict(zip(model.joined_paths, model.physical_values_from_prior_medians))
for part in simulated:
    truth = af.values_by_path(getattr(lens, part), getattr(true_lens, part))
    parameters.update({f"galaxies.lens.{part}.{name}": value for name, value in truth.items()})
instance = model.instance_from_vector(vector=[value + 0.005 for value in parameters.values()])
likelihood = al.AnalysisImaging(dataset=dataset, use_jax=True).log_likelihood_function

"""
__The Two Sides__

`stacked_from` is what the series uses to stack a basis; returning None makes every basis fall back to the loop, as
for a basis of mixed classes. The loop side also makes a new convolution state for every image it convolves, as
upstream does; the series makes one per dataset mask.
"""
stacked_from = linear_profiles.stacked_from
state_from = al.Convolver.state_from


def upstream_state_from(convolver, mask):
    return ConvolverState(kernel=convolver.kernel, mask=mask)


def use(side):
    vectorised = side == "vectorised"
    linear_profiles.stacked_from = stacked_from if vectorised else (lambda profiles: None)
    al.Convolver.state_from = state_from if vectorised else upstream_state_from


def program_size(function, argument):
    closed = jax.make_jaxpr(function)(argument)
    arrays = [np.asarray(constant) for constant in closed.consts if hasattr(constant, "nbytes")]
    contents = {(array.dtype.str, array.shape, array.tobytes()) for array in arrays}
    return {
        "jaxpr_equations": len(closed.jaxpr.eqns),
        "constants": len(arrays),
        "constant_bytes": int(sum(array.nbytes for array in arrays)),
        "repeated_constants": len(arrays) - len(contents),  # copies where one would serve
        "stablehlo_bytes": len(jax.jit(function).lower(argument).as_text()),
    }


"""
__Compile, Then Call In Turn__

Each program is a new function object, so that JAX traces it afresh rather than reusing the other side's trace.
The gradient is compiled vectorised first, so the loop's (the longest compile) comes last.
"""
results, programs = {"loop": {}, "vectorised": {}}, {}
functions = ["likelihood", "gradient"] if args.gradient else ["likelihood"]
for what in functions:
    for side in ("loop", "vectorised") if what == "likelihood" else ("vectorised", "loop"):
        use(side)
        function = lambda instance: likelihood(instance)
        function = function if what == "likelihood" else jax.grad(function)
        timing = util.time_jit(function, instance, repeats=0)
        size = program_size(function, instance)
        results[side][what] = {**size, **{key: timing[key] for key in ("lower_s", "compile_s", "first_call_s")}}
        programs[f"{side} {what}"] = (timing["jitted"], instance)
        print(
            f"  {side:>10} {what:>10}: {size['jaxpr_equations']:6d} equations, {size['constants']:4d} constants "
            f"({size['repeated_constants']} repeated, {size['constant_bytes'] / 1e6:.2f} MB), StableHLO "
            f"{size['stablehlo_bytes'] / 1e6:.2f} MB, lower {timing['lower_s']:.2f} s, "
            f"compile {timing['compile_s']:.2f} s"
        )
use("vectorised")

for key, steady in util.time_interleaved(programs, args.repeats).items():
    side, what = key.split()
    results[side][what]["steady_s"] = steady

values = {key: jax.block_until_ready(function(argument)) for key, (function, argument) in programs.items()}
util.check(values["loop likelihood"], values["vectorised likelihood"], 1e-10, "the loop's likelihood, vectorised")
if args.gradient:
    by_name = {side: af.values_by_path(model, values[f"{side} gradient"]) for side in results}
    assert np.isfinite(list(by_name["vectorised"].values())).all(), "the gradient has NaN / inf entries"
    util.check(list(by_name["loop"].values()), list(by_name["vectorised"].values()), 1e-8, "and its gradient by name")

"""
__Summary__
"""
ratios = {}
for what in functions:
    loop, vectorised = results["loop"][what], results["vectorised"][what]
    ratios[what] = {key: loop[key] / vectorised[key] for key in loop if vectorised.get(key)}
    print(f"  loop / vectorised, {what}: " + ", ".join(f"{key} {ratio:.2f}" for key, ratio in ratios[what].items()))

summary = {
    "autolens_version": al.__version__,
    "configuration": {
        "model": args.model,
        "instrument": args.instrument,
        "image_pixels_masked": int(dataset.data.shape[0]),
        "over_sampled_pixels": int(dataset.grids.lp.over_sampled.shape[0]),
        "free_parameters": model.total_free_parameters,
    },
    "log_likelihood": float(values["vectorised likelihood"]),
    "loop": results["loop"],
    "vectorised": results["vectorised"],
    "loop_over_vectorised": ratios,
    "repeats": args.repeats,
}
if args.gradient:
    vectorised = results["vectorised"]
    summary["vectorised_gradient_over_likelihood"] = {
        key: vectorised["gradient"][key] / vectorised["likelihood"][key] for key in ("compile_s", "steady_s")
    }
    print(f"  vectorised, gradient / likelihood: {summary['vectorised_gradient_over_likelihood']}")

path = Path(__file__).resolve().parent / "results" / f"basis_loop_vs_vectorised_{args.model}_{args.instrument}.json"
path.write_text(json.dumps(summary, indent=2) + "\n")
print(f"\n  results: {path}")
