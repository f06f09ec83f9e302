"""
JAX Profiling: A Basis Of Profiles, One By One Versus Vectorised
================================================================

The MGE likelihood solves for the intensities of 40 linear Gaussians (20 in the lens light, 20 in the source).
Traced one by one, each Gaussian adds its own copy of the image, blurring and convolution code to the compiled
program, which then takes seconds to compile and its gradient much longer. The PyAutoGalaxy series evaluates
the linear profiles of one class as one `jax.vmap` over their stacked parameters: one traced Gaussian for the
whole basis.

This script builds the same likelihood both ways in one process and reports, side by side:

- `jaxpr_equations` and `constants` (how many arrays the program embeds, their bytes, and how many repeat
  another's content): the size of the program JAX hands to XLA,
- `stablehlo_bytes`: the lowered program's text,
- `lower_s` / `compile_s` / `steady_per_call_s` of the likelihood and of `jax.jit(jax.grad(likelihood))`, the
  steady calls of the two sides alternated,

and checks that both give the same likelihood (1e-10) and the same gradient by name (1e-8). The "loop" side is
the series with both switched off (each profile evaluated and convolved in turn, as upstream does); everything
else is the same.

__Usage__

    python basis_loop_vs_vectorised.py --instrument hst
    python basis_loop_vs_vectorised.py --instrument euclid --model pixelization
"""
import os

os.environ["JAX_ENABLE_X64"] = "True"

import jax

jax.config.update("jax_enable_x64", True)

import json

import numpy as np

import autofit as af
import autolens as al
from autoarray.operators.convolver import ConvolverState
import autogalaxy.profiles.light.linear.abstract as linear_profiles

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shared profiling_util and gradients_util

import imaging_util
import profiling_util as util

MODELS = {"mge": imaging_util.mge_model, "pixelization": imaging_util.rectangular_model}

parser = util.OneLineArgumentParser(description=__doc__.split("\n")[1])
parser.add_argument("--model", default="mge", help=f"the lens model: {', '.join(MODELS)} (default mge)")
imaging_util.add_instrument_argument(parser)
parser.add_argument("--repeats", type=int, default=10, help="steady calls timed per program, alternating (default 10)")
parser.add_argument("--no-gradient", action="store_true", help="skip jit(grad) (its loop compile is the longest step)")
args = parser.parse_args()
if args.model not in MODELS:
    parser.error(f"--model: unknown model '{args.model}' (choose from {', '.join(MODELS)})")

"""
__Dataset, Model, Instance__
"""
dataset = imaging_util.load_dataset(args.instrument)
model = MODELS[args.model]()
vector = imaging_util.reference_vector(model)
instance = util.on_device(model.instance_from_vector(vector=vector))
likelihood = imaging_util.likelihood_function(dataset)

"""
__The Two Sides__

`stacked_from` is what the series uses to stack a basis; returning None makes every basis fall back to the
loop, as for a basis of mixed classes. The loop side also makes a new convolution state (the PSF's FFT and
index arrays) for every image it convolves, as upstream does; the series makes one per dataset mask.
"""
stacked_from = linear_profiles.stacked_from
state_from = al.Convolver.state_from


def upstream_state_from(convolver, mask):
    return ConvolverState(kernel=convolver.kernel, mask=mask)


def side(name):
    vectorised = name == "vectorised"
    linear_profiles.stacked_from = stacked_from if vectorised else (lambda profiles: None)
    al.Convolver.state_from = state_from if vectorised else upstream_state_from


def program_size(function, argument):
    closed = jax.make_jaxpr(function)(argument)
    arrays = [np.asarray(c) for c in closed.consts if hasattr(c, "nbytes")]
    contents = {(a.dtype.str, a.shape, a.tobytes()) for a in arrays}
    return {
        "jaxpr_equations": len(closed.jaxpr.eqns),
        "constants": len(arrays),
        "constant_bytes": int(sum(a.nbytes for a in arrays)),
        # constants whose content another constant already holds: copies where one would serve
        "repeated_constants": len(arrays) - len(contents),
        "stablehlo_bytes": len(jax.jit(function).lower(argument).as_text()),
    }


def fresh(what):
    """A new function object each time, so that JAX traces it afresh rather than reusing the other side's trace."""
    function = lambda instance: likelihood(instance)
    return function if what == "likelihood" else jax.grad(function)


results = {name: {} for name in ("loop", "vectorised")}
programs = {}
functions = ["likelihood"] if args.no_gradient else ["likelihood", "gradient"]

for what in functions:
    for name in ("loop", "vectorised") if what == "likelihood" else ("vectorised", "loop"):
        side(name)
        function = fresh(what)
        timing = util.time_jit(function, instance, repeats=0)
        size = program_size(function, instance)
        results[name][what] = {**size, **util.timings_only(timing)}
        programs[f"{name} {what}"] = (timing["jitted"], instance)
        print(f"  {name:>10} {what:>10}: {size['jaxpr_equations']:6d} equations, {size['constants']:4d} constants "
              f"({size['repeated_constants']} repeated) "
              f"({size['constant_bytes'] / 1e6:.2f} MB), StableHLO {size['stablehlo_bytes'] / 1e6:.2f} MB, "
              f"lower {timing['lower_s']:.2f} s, compile {timing['compile_s']:.2f} s")
side("vectorised")

steady = util.time_interleaved(programs, args.repeats)
for key, value in steady.items():
    name, what = key.split()
    results[name][what]["steady_per_call_s"] = value

values = {key: util.block(function(argument)) for key, (function, argument) in programs.items()}
np.testing.assert_allclose(values["vectorised likelihood"], values["loop likelihood"], rtol=1e-10)
if "gradient" in functions:
    by_name = {name: af.values_by_path(model, values[f"{name} gradient"]) for name in ("loop", "vectorised")}
    for parameter, expected in by_name["loop"].items():
        np.testing.assert_allclose(by_name["vectorised"][parameter], expected, rtol=1e-8, atol=1e-8, err_msg=parameter)
print("  likelihood equal to 1e-10, gradient by name to 1e-8")

ratios = {}
for what in functions:
    loop, vectorised = results["loop"][what], results["vectorised"][what]
    ratios[what] = {key: loop[key] / vectorised[key] for key in loop if vectorised.get(key)}
likelihood_time = results["vectorised"]["likelihood"]["steady_per_call_s"]
summary = {
    "model": args.model,
    "instrument": args.instrument,
    "machine": imaging_util.configuration_of(dataset, args.instrument),
    "log_likelihood": float(values["vectorised likelihood"]),
    "loop": results["loop"],
    "vectorised": results["vectorised"],
    "loop_over_vectorised": ratios,
}
if "gradient" in functions:
    vectorised = results["vectorised"]
    summary["vectorised_gradient_compile_over_likelihood_compile"] = (
        vectorised["gradient"]["compile_s"] / vectorised["likelihood"]["compile_s"]
    )
    summary["vectorised_gradient_steady_over_likelihood_steady"] = (
        vectorised["gradient"]["steady_per_call_s"] / likelihood_time
    )

print()
for what, ratio in ratios.items():
    print(f"  loop / vectorised, {what}: " + ", ".join(f"{k} {v:.2f}" for k, v in ratio.items()))
for key in [k for k in summary if k.startswith("vectorised_")]:
    print(f"  {key}: {summary[key]:.2f}")

out = imaging_util.RESULTS_DIR / f"basis_loop_vs_vectorised_{args.model}_{args.instrument}.json"
out.write_text(json.dumps(summary, indent=2) + "\n")
print(f"\n  results: {out}")
