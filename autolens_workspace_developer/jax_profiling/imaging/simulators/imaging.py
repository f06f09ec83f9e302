"""
Simulator: The Profiling Lens, Observed By Four Instruments
===========================================================

The JAX profiling scripts in `jax_profiling/imaging` fit one strong lens: a massive elliptical galaxy
(Sersic light, isothermal mass, external shear) in front of a compact, cored Sersic source. What changes from
one profile to the next is the instrument that observes it, because the pixel scale sets how many image
pixels the likelihood has to evaluate, and that is what dominates its run time:

    euclid  0.10 arcsec / pixel     ~  3,800 pixels inside a 3.5" mask
    hst     0.05 arcsec / pixel     ~ 15,400 pixels
    jwst    0.03 arcsec / pixel     ~ 42,700 pixels
    ao      0.01 arcsec / pixel     ~384,800 pixels

This module writes `data.fits`, `noise_map.fits`, `psf.fits` and `tracer.json` to
`jax_profiling/imaging/dataset/imaging/<instrument>/`, so a profiling run never downloads anything. The
profiling scripts import `simulate` and call it the first time they need a dataset; you can also run it
by hand:

    python simulators/imaging.py --instrument jwst

The noise is drawn with a fixed seed, so every machine profiles the same pixels.
"""

import os

# 64-bit JAX, whoever imports JAX first (see `mge.py` for why this must come before any PyAuto import).
os.environ.setdefault("JAX_ENABLE_X64", "True")

import argparse
from pathlib import Path

import numpy as np

"""
__Instruments__

Each instrument is a pixel scale and a Gaussian PSF whose width matches that pixel scale. The PSF kernel is
21 x 21 pixels for all of them, so the cost of the PSF convolution per image pixel is the same everywhere
and only the number of pixels changes.
"""
INSTRUMENTS = {
    "euclid": {"pixel_scale": 0.1, "psf_sigma": 0.1},
    "hst": {"pixel_scale": 0.05, "psf_sigma": 0.05},
    "jwst": {"pixel_scale": 0.03, "psf_sigma": 0.03},
    "ao": {"pixel_scale": 0.01, "psf_sigma": 0.01},
}

PSF_SHAPE = (21, 21)
MASK_RADIUS = 3.5
NOISE_SEED = 1

DATASET_ROOT = Path(__file__).resolve().parent.parent / "dataset" / "imaging"

DATASET_FILES = ("data.fits", "noise_map.fits", "psf.fits", "tracer.json")


def dataset_path_for(instrument: str) -> Path:
    """The folder that holds (or will hold) the dataset of `instrument`."""
    return DATASET_ROOT / instrument


def dataset_exists(instrument: str) -> bool:
    """True when every file the profiling scripts read is already on disk."""
    folder = dataset_path_for(instrument)
    return all((folder / name).exists() for name in DATASET_FILES)


def true_tracer():
    """
    The lens system every instrument observes.

    The lens light is a single Sersic, which the profiling model deliberately does *not* use: it fits the
    lens light with a multi-Gaussian expansion instead, as a real analysis would.
    """
    import autolens as al

    lens_ell_comps = al.convert.ell_comps_from(axis_ratio=0.9, angle=45.0)  # the light's and the mass's

    lens = al.Galaxy(
        redshift=0.5,
        bulge=al.lp.Sersic(
            centre=(0.0, 0.0),
            ell_comps=lens_ell_comps,
            intensity=2.0,
            effective_radius=0.6,
            sersic_index=3.0,
        ),
        mass=al.mp.Isothermal(centre=(0.0, 0.0), ell_comps=lens_ell_comps, einstein_radius=1.6),
        shear=al.mp.ExternalShear(gamma_1=0.05, gamma_2=0.05),
    )

    source = al.Galaxy(
        redshift=1.0,
        bulge=al.lp.SersicCore(
            centre=(0.0, 0.0),
            ell_comps=al.convert.ell_comps_from(axis_ratio=0.8, angle=60.0),
            intensity=4.0,
            effective_radius=0.1,
            sersic_index=1.0,
        ),
    )

    return al.Tracer(galaxies=[lens, source])


def simulate(instrument: str, mask_radius: float = MASK_RADIUS) -> Path:
    """
    Simulate the profiling lens as seen by `instrument` and write it to disk.

    Parameters
    ----------
    instrument
        One of `INSTRUMENTS` (euclid, hst, jwst, ao).
    mask_radius
        The circular mask the profiling scripts apply, in arcseconds. The image is just large enough
        (an odd number of pixels across) to contain it.

    Returns
    -------
    The dataset folder.
    """
    if instrument not in INSTRUMENTS:
        raise ValueError(
            f"unknown instrument '{instrument}'; choose from {', '.join(INSTRUMENTS)}"
        )

    import autolens as al

    pixel_scale = INSTRUMENTS[instrument]["pixel_scale"]
    psf_sigma = INSTRUMENTS[instrument]["psf_sigma"]

    """
    The image is square and just contains the mask. It has an odd number of pixels so that the lens sits
    on the central pixel.
    """
    pixels_across = int(np.ceil(2.0 * mask_radius / pixel_scale))
    pixels_across += 1 - pixels_across % 2

    grid = al.Grid2D.uniform(
        shape_native=(pixels_across, pixels_across), pixel_scales=pixel_scale
    )

    """
    The lensed source is compact and the lens light is cuspy, so the centre of the image is evaluated on a
    much finer sub-grid than its outskirts. This is the simulation only: the fits use their own, cheaper
    over-sampling.
    """
    grid = grid.apply_over_sampling(
        over_sample_size=al.util.over_sample.over_sample_size_via_radial_bins_from(
            grid=grid,
            sub_size_list=[32, 8, 2],
            radial_list=[0.3, 0.6],
            centre_list=[(0.0, 0.0)],
        )
    )

    psf = al.Convolver.from_gaussian(
        shape_native=PSF_SHAPE, pixel_scales=pixel_scale, sigma=psf_sigma
    )

    simulator = al.SimulatorImaging(
        exposure_time=300.0,
        psf=psf,
        background_sky_level=0.1,
        add_poisson_noise_to_data=True,
        noise_seed=NOISE_SEED,
    )

    tracer = true_tracer()
    dataset = simulator.via_tracer_from(tracer=tracer, grid=grid)

    folder = dataset_path_for(instrument)
    folder.mkdir(parents=True, exist_ok=True)

    al.output_to_fits(
        values=dataset.data.native, file_path=folder / "data.fits", overwrite=True
    )
    al.output_to_fits(
        values=dataset.noise_map.native,
        file_path=folder / "noise_map.fits",
        overwrite=True,
    )
    al.output_to_fits(
        values=dataset.psf.kernel.native, file_path=folder / "psf.fits", overwrite=True
    )
    al.output_to_json(obj=tracer, file_path=folder / "tracer.json")

    print(
        f"Simulated {instrument}: {pixels_across} x {pixels_across} pixels at "
        f"{pixel_scale}\"/pixel, PSF {PSF_SHAPE[0]} x {PSF_SHAPE[1]} -> {folder}"
    )
    return folder


def ensure(instrument: str) -> Path:
    """Return the dataset folder of `instrument`, simulating it first if it is not on disk yet."""
    if not dataset_exists(instrument):
        return simulate(instrument)
    return dataset_path_for(instrument)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description="Simulate the JAX profiling lens for one instrument."
    )
    parser.add_argument("--instrument", default="hst", choices=list(INSTRUMENTS))
    parser.add_argument("--mask-radius", type=float, default=MASK_RADIUS)
    args = parser.parse_args()

    simulate(args.instrument, mask_radius=args.mask_radius)
