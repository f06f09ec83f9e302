"""
Simulator: The Profiling Lens, Observed By A Small Interferometer
=================================================================

The JAX profiling scripts in `jax_profiling/interferometer` fit one strong lens: a massive elliptical galaxy
(Sersic light, isothermal mass, external shear) in front of a compact, cored Sersic source, observed as
visibilities rather than an image. The likelihood Fourier transforms every model image it makes to the
observed (u, v) points, and the direct Fourier transform (`al.TransformerDFT`) it uses costs
(image pixels) x (visibilities) per image, so those two numbers set the run time:

    real-space grid   0.1 arcsec / pixel inside a 2.5" circular mask    1,941 pixels
    visibilities      12 antennas (66 baselines) x 16 integrations     =  1,056 visibilities

The (u, v) coverage is that of an array tracking a source through three hours: 12 antennas placed at random
(seeded) within 350 m of the array centre, observing at 1 mm, so the longest baselines (~6 x 10^5 wavelengths)
resolve ~0.35", a few real-space pixels. Complex Gaussian noise of the same sigma is added to every visibility.

This module writes `visibilities.npy`, `noise_map.npy`, `uv_wavelengths.npy` and `tracer.json` to
`jax_profiling/interferometer/dataset/interferometer/`, so a profiling run never downloads anything. The
profiling scripts import `ensure` and call it the first time they need the dataset; you can also run it by hand:

    python simulators/interferometer.py

Every random draw is seeded, so every machine profiles the same visibilities.
"""

import os

# 64-bit JAX, whoever imports JAX first (see `imaging/mge.py` for why this must come before any PyAuto import).
os.environ.setdefault("JAX_ENABLE_X64", "True")

from pathlib import Path

import numpy as np

PIXEL_SCALE = 0.1
MASK_RADIUS = 2.5

ANTENNAS = 12
ARRAY_RADIUS_M = 350.0
WAVELENGTH_M = 1.0e-3
INTEGRATIONS = 16
HOUR_ANGLE_SPAN = 3.0  # hours, centred on transit
DECLINATION_DEG = -30.0

NOISE_SIGMA = 50.0  # a peak signal-to-noise of ~7 per visibility
SEED = 1

DATASET_PATH = Path(__file__).resolve().parent.parent / "dataset" / "interferometer"

DATASET_FILES = ("visibilities.npy", "noise_map.npy", "uv_wavelengths.npy", "tracer.json")


def true_tracer():
    """The lens system the interferometer observes: `imaging`'s profiling lens, with a source twice as wide."""
    import autolens as al

    lens_ell_comps = al.convert.ell_comps_from(axis_ratio=0.9, angle=45.0)
    lens = al.Galaxy(
        redshift=0.5,
        bulge=al.lp.Sersic(ell_comps=lens_ell_comps, intensity=0.5, effective_radius=0.6, sersic_index=3.0),
        mass=al.mp.Isothermal(ell_comps=lens_ell_comps, einstein_radius=1.6),
        shear=al.mp.ExternalShear(gamma_1=0.05, gamma_2=0.05),
    )
    source_ell_comps = al.convert.ell_comps_from(axis_ratio=0.8, angle=60.0)
    source_light = al.lp.SersicCore(ell_comps=source_ell_comps, intensity=1.0, effective_radius=0.2, sersic_index=1.0)
    return al.Tracer(galaxies=[lens, al.Galaxy(redshift=1.0, bulge=source_light)])


def uv_wavelengths_from(rng: np.random.Generator) -> np.ndarray:
    """
    The (u, v) points, in wavelengths, of every baseline at every integration.

    Antennas lie in the ground plane (east, north); as the Earth turns through hour angle H the baseline
    (b_east, b_north) projects onto the sky of a source at declination dec as

        u = b_east cos H - b_north sin H,   v = sin(dec) (b_east sin H + b_north cos H),

    the east-west array approximation: enough to give the elliptical tracks of a real coverage.
    """
    radius = ARRAY_RADIUS_M * np.sqrt(rng.uniform(0.0, 1.0, ANTENNAS))
    angle = rng.uniform(0.0, 2.0 * np.pi, ANTENNAS)
    east, north = radius * np.cos(angle), radius * np.sin(angle)

    first, second = np.triu_indices(ANTENNAS, k=1)
    b_east = (east[second] - east[first]) / WAVELENGTH_M
    b_north = (north[second] - north[first]) / WAVELENGTH_M

    hour_angles = np.radians(15.0 * np.linspace(-HOUR_ANGLE_SPAN / 2, HOUR_ANGLE_SPAN / 2, INTEGRATIONS))
    sin_dec = np.sin(np.radians(DECLINATION_DEG))

    u = np.concatenate([b_east * np.cos(h) - b_north * np.sin(h) for h in hour_angles])
    v = np.concatenate([sin_dec * (b_east * np.sin(h) + b_north * np.cos(h)) for h in hour_angles])
    return np.stack([u, v], axis=1)


def real_space_mask():
    """The circular mask every fit uses, on a square grid that just contains it (odd width: the lens on a pixel)."""
    import autolens as al

    pixels_across = int(np.ceil(2.0 * MASK_RADIUS / PIXEL_SCALE))
    pixels_across += 1 - pixels_across % 2
    return al.Mask2D.circular(
        shape_native=(pixels_across, pixels_across), pixel_scales=PIXEL_SCALE, radius=MASK_RADIUS
    )


def simulate() -> Path:
    """Simulate the profiling lens's visibilities (through the DFT), write them to disk and return the folder."""
    import autolens as al

    rng = np.random.default_rng(SEED)
    uv_wavelengths = uv_wavelengths_from(rng)
    mask = real_space_mask()

    """
    The image is evaluated at one point per pixel, as the fits evaluate it (an `Interferometer` dataset does not
    over-sample): a finer simulation of the cuspy lens centre would add flux to every visibility that no model
    here can give back, and the pixelized source's log evidence would be dominated by it.
    """
    grid = al.Grid2D.from_mask(mask=mask)

    simulator = al.SimulatorInterferometer(
        uv_wavelengths=uv_wavelengths,
        exposure_time=300.0,
        noise_sigma=NOISE_SIGMA,
        transformer_class=al.TransformerDFT,
        noise_seed=SEED,
    )
    tracer = true_tracer()
    dataset = simulator.via_tracer_from(tracer=tracer, grid=grid)

    DATASET_PATH.mkdir(parents=True, exist_ok=True)
    np.save(DATASET_PATH / "visibilities.npy", np.asarray(dataset.data.array))
    np.save(DATASET_PATH / "noise_map.npy", np.asarray(dataset.noise_map.array))
    np.save(DATASET_PATH / "uv_wavelengths.npy", uv_wavelengths)
    al.output_to_json(obj=tracer, file_path=DATASET_PATH / "tracer.json")

    amplitude = np.abs(dataset.data.array)
    print(
        f"Simulated {uv_wavelengths.shape[0]} visibilities (longest baseline "
        f"{np.hypot(*uv_wavelengths.T).max():.3g} wavelengths, peak amplitude {amplitude.max():.1f}, "
        f"noise sigma {NOISE_SIGMA}) of a {mask.pixels_in_mask}-pixel real-space mask -> {DATASET_PATH}"
    )
    return DATASET_PATH


def ensure() -> Path:
    """The dataset folder, the visibilities simulated into it first if any file the scripts read is missing."""
    missing = [name for name in DATASET_FILES if not (DATASET_PATH / name).exists()]
    return simulate() if missing else DATASET_PATH


if __name__ == "__main__":
    simulate()
