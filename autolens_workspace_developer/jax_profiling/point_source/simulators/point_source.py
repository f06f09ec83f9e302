"""
Simulator: A Quadruply Imaged Point Source
==========================================

The point-source profiling scripts in `jax_profiling/point_source` fit one lensed point source (a quasar): an
isothermal lens with external shear in front of a point source inside its tangential caustic, so it has four
images. What is observed:

    positions      the 4 image positions, solved by the `PointSolver` (triangles to 0.001", then Newton steps
                   on the lens equation), with Gaussian noise of POSITION_NOISE arc-seconds added
    fluxes         the point source's flux times the absolute magnification at each image, with Gaussian noise
                   of FLUX_NOISE_FRACTION of each flux added (the flux noise map)

This module writes the `PointDataset` (`point_dataset.json`) and the true `Tracer` (`tracer.json`) to
`jax_profiling/point_source/dataset/point_source/`, where the profiling scripts load them with `al.from_json`;
they import `ensure` and call it the first time they need the dataset. By hand:

    python simulators/point_source.py

Every random draw is seeded, so every machine profiles the same positions.
"""

import os

# 64-bit JAX, whoever imports JAX first (see `imaging/mge.py` for why this must come before any PyAuto import).
os.environ.setdefault("JAX_ENABLE_X64", "True")

from pathlib import Path

import numpy as np

POSITION_NOISE = 0.005  # arc-seconds
FLUX_NOISE_FRACTION = 0.1
SOURCE_CENTRE = (0.05, 0.03)
SOURCE_FLUX = 1.0

# The solver's image plane: 0.1" triangles over a 4.4" square, refined to 0.001".
SOLVER_PIXEL_SCALE = 0.1
SOLVER_SHAPE = (44, 44)
SOLVER_PRECISION = 0.001

SEED = 1

DATASET_PATH = Path(__file__).resolve().parent.parent / "dataset" / "point_source"

DATASET_FILES = ("point_dataset.json", "tracer.json")


def true_tracer():
    """The lens (isothermal mass, external shear) and the point source, named `point_0`."""
    import autolens as al

    mass = al.mp.Isothermal(ell_comps=al.convert.ell_comps_from(axis_ratio=0.8, angle=30.0), einstein_radius=1.6)
    lens = al.Galaxy(redshift=0.5, mass=mass, shear=al.mp.ExternalShear(gamma_1=0.04, gamma_2=0.02))
    source = al.Galaxy(redshift=1.0, point_0=al.ps.PointFlux(centre=SOURCE_CENTRE, flux=SOURCE_FLUX))
    return al.Tracer(galaxies=[lens, source])


def solver(xp=np):
    """The `PointSolver` of the scripts (NumPy for `xp=np`, JAX for `xp=jax.numpy`)."""
    import autolens as al

    grid = al.Grid2D.uniform(shape_native=SOLVER_SHAPE, pixel_scales=SOLVER_PIXEL_SCALE)
    return al.PointSolver.for_grid(
        grid=grid, pixel_scale_precision=SOLVER_PRECISION, magnification_threshold=0.1, xp=xp
    )


def simulate() -> Path:
    """Solve for the images, add noise, write the dataset to disk and return the folder."""
    import autolens as al

    rng = np.random.default_rng(SEED)
    tracer = true_tracer()

    positions = solver().solve(tracer=tracer, source_plane_coordinate=SOURCE_CENTRE).array
    if len(positions) != 4:
        raise RuntimeError(f"the simulated source has {len(positions)} images, not 4")

    magnifications = np.abs(
        np.asarray(
            al.LensCalc.from_tracer(tracer).magnification_2d_via_hessian_from(grid=al.Grid2DIrregular(positions))
        )
    )
    fluxes = SOURCE_FLUX * magnifications
    fluxes_noise_map = FLUX_NOISE_FRACTION * fluxes

    dataset = al.PointDataset(
        name="point_0",
        positions=al.Grid2DIrregular(positions + POSITION_NOISE * rng.standard_normal(positions.shape)),
        positions_noise_map=POSITION_NOISE,
        fluxes=al.ArrayIrregular(fluxes + fluxes_noise_map * rng.standard_normal(fluxes.shape)),
        fluxes_noise_map=al.ArrayIrregular(fluxes_noise_map),
    )
    DATASET_PATH.mkdir(parents=True, exist_ok=True)
    al.output_to_json(obj=dataset, file_path=DATASET_PATH / "point_dataset.json")
    al.output_to_json(obj=tracer, file_path=DATASET_PATH / "tracer.json")

    print(
        f"Simulated {len(positions)} images (magnifications {', '.join(f'{m:.1f}' for m in magnifications)}) "
        f"of a point source at {SOURCE_CENTRE}, position noise {POSITION_NOISE}\" -> {DATASET_PATH}"
    )
    return DATASET_PATH


def ensure() -> Path:
    """The dataset folder; the quad is solved for and written there first if a file is missing."""
    if all((DATASET_PATH / name).exists() for name in DATASET_FILES):
        return DATASET_PATH
    return simulate()


if __name__ == "__main__":
    simulate()
