"""
Profiling Util: What The Imaging Profiling Scripts Share
========================================================

`mge.py` and `flat_vs_pytree.py` profile the same likelihood on the same dataset, so the pieces that
would otherwise be written out twice live here:

- a command line whose errors are one line long,
- the dataset (simulated on first use by `simulators/imaging.py`), masked and over-sampled,
- the MGE lens model and the point in parameter space every profile is evaluated at,
- the likelihood, as PyAutoLens computes it inside a non-linear search, and its two closures: the
  flat-vector one a `Fitness` object builds today and the pytree one new scripts should use,
- the pytree helpers that address leaves by name,
- a timer for JAX programs (lower / compile / first call / steady state).

Everything that is part of *what a script measures* stays in the script, with its commentary.
"""

import os

# The scripts set this themselves before importing anything; repeating it here keeps the module safe to
# import on its own (a PyAuto import that comes first would otherwise leave JAX in 32-bit mode).
os.environ["JAX_ENABLE_X64"] = "True"

import argparse
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import autofit as af
import autolens as al

from simulators import imaging as simulator

SCRIPT_DIR = Path(__file__).resolve().parent
RESULTS_DIR = SCRIPT_DIR / "results"

INSTRUMENTS = simulator.INSTRUMENTS
MASK_RADIUS = simulator.MASK_RADIUS

GAUSSIANS_PER_GALAXY = 20


"""
__Command Line__
"""


class OneLineArgumentParser(argparse.ArgumentParser):
    """
    An `ArgumentParser` whose errors are a single line (no usage block), e.g.

        mge.py: error: argument --instrument: invalid choice: 'foo' (choose from euclid, hst, jwst, ao)
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


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

    The over-sampling is the one a real MGE fit uses: 4 x 4 sub-pixels within 0.3" of the lens centre,
    2 x 2 out to 0.6" and none beyond, which keeps the over-sampled grid only ~20% larger than the image.
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
        )
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


def reference_vector(model: af.Collection) -> np.ndarray:
    """
    The point every profile is evaluated at: the prior medians, except that the lens mass and shear take
    the values the dataset was simulated with, so the fit is a sensible one and an Einstein radius scan
    through it peaks near the truth.

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

    medians = model.physical_values_from_prior_medians

    return np.array(
        [
            overrides.get(prior, median)
            for prior, median in zip(model.priors_ordered_by_id, medians)
        ]
    )


def jittered_vectors(vector: np.ndarray, total: int, scale: float = 0.005, seed: int = 1):
    """
    `total` nearby parameter vectors: the first is `vector` itself, the others are small, seeded random
    offsets from it, so a batch holds genuinely different instances.
    """
    rng = np.random.default_rng(seed)
    return [vector] + [
        vector + scale * rng.standard_normal(vector.shape) for _ in range(total - 1)
    ]


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
    The recommended closure: the instance *is* the input. JAX flattens it into its leaves (the free
    parameter values) on the way in and rebuilds it inside the trace, so nothing about the model has to be
    known by the closure.
    """

    def log_likelihood_from_instance(instance):
        return likelihood(instance)

    return log_likelihood_from_instance


"""
__Pytrees__
"""


def require_pytree(instance):
    """
    Exit with a one-line message if this autofit does not make model instances JAX pytrees.

    A class JAX does not know is a single opaque leaf: `tree_leaves(instance)` is then `[instance]`.
    """
    leaves = jax.tree_util.tree_leaves(instance)
    if len(leaves) == 1 and leaves[0] is instance:
        raise SystemExit(
            f"error: {type(instance).__name__} is not a JAX pytree with this autofit "
            f"({af.__version__} at {Path(af.__file__).parent}); the pytree profiles need the patched stack"
        )


def on_device(instance):
    """The same instance with every leaf a JAX array, as a search would hand it to a compiled program."""
    return jax.tree_util.tree_map(jnp.asarray, instance)


def key_name(key) -> str:
    """The name of one step of a key path: an attribute, a dictionary key or a sequence index."""
    for attribute in ("name", "key", "idx"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def leaf_paths(instance) -> List[str]:
    """Every leaf's key path, as `jax.tree_util.keystr` prints it."""
    return [
        jax.tree_util.keystr(path)
        for path, _ in jax.tree_util.tree_flatten_with_path(instance)[0]
    ]


def paths_named(instance, name: str) -> List[str]:
    """The key paths of the leaves whose last step is `name` (e.g. 'einstein_radius')."""
    return [
        jax.tree_util.keystr(path)
        for path, _ in jax.tree_util.tree_flatten_with_path(instance)[0]
        if key_name(path[-1]) == name
    ]


def stack_instances(instances: Sequence):
    """One instance whose every leaf is the stack of that leaf across `instances` (a vmap batch)."""
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *instances)


"""
__Timing__
"""


def block(result):
    """Wait for every array in `result`, so a timing covers the computation and not just its dispatch."""
    return jax.block_until_ready(result)


def time_jit(function: Callable, *args, repeats: int = 10) -> Dict:
    """
    Compile `function` ahead of time for `args` and time each stage:

    - `lower_s`: tracing the Python into a JAX program (this is where `instance_from_vector` runs, or where
      the pytree is rebuilt from tracers),
    - `compile_s`: XLA compiling that program,
    - `first_call_s`: the first call of the compiled program,
    - `steady_per_call_s`: the mean over `repeats` further calls.

    The calls go through the `jax.jit` function itself, which reuses the executable compiled here (JAX caches
    it; a first call that compiled again would show in `first_call_s`). That is the dispatch path a search
    takes, and it is faster than calling the AOT `Compiled` object.

    Returns these, plus the compiled program (`"compiled"`, for its memory analysis) and the result
    (`"result"`).
    """
    jitted = jax.jit(function)

    start = time.perf_counter()
    lowered = jitted.lower(*args)
    lower_s = time.perf_counter() - start

    start = time.perf_counter()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start

    start = time.perf_counter()
    result = block(jitted(*args))
    first_call_s = time.perf_counter() - start

    start = time.perf_counter()
    for _ in range(repeats):
        result = block(jitted(*args))
    steady_per_call_s = (time.perf_counter() - start) / repeats

    return {
        "lower_s": lower_s,
        "compile_s": compile_s,
        "first_call_s": first_call_s,
        "steady_per_call_s": steady_per_call_s,
        "jitted": jitted,
        "compiled": compiled,
        "result": result,
    }


def timings_only(timing: Dict) -> Dict:
    """A `time_jit` record without the programs and the result, for printing and JSON."""
    return {key: value for key, value in timing.items() if key.endswith("_s")}
