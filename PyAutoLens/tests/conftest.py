"""
A small real strong lens, simulated once per test session: an elliptical Sersic lens
galaxy with an Isothermal mass and external shear, lensing a compact Sersic source.
Small grids keep the JAX compiles of the likelihood short on a CPU.

The fixtures are built by plain functions (`simulated_tracer`, `simulated_dataset`,
`mge_lens_model`), so a test that runs JAX in a subprocess (test_sharding.py) builds
the same objects there.
"""
import autofit as af
import autolens as al
import pytest

PIXEL_SCALE = 0.2
MASK_RADIUS = 2.0


def simulated_tracer():
    """The lens and source the dataset is simulated from."""
    lens = al.Galaxy(
        redshift=0.5,
        light=al.lp.Sersic(
            centre=(0.0, 0.0),
            ell_comps=(0.05, 0.0),
            intensity=1.0,
            effective_radius=0.6,
            sersic_index=3.0,
        ),
        mass=al.mp.Isothermal(centre=(0.0, 0.0), ell_comps=(0.1, 0.0), einstein_radius=1.2),
        shear=al.mp.ExternalShear(gamma_1=0.05, gamma_2=0.0),
    )
    source = al.Galaxy(
        redshift=1.0,
        light=al.lp.SersicCore(
            centre=(0.1, 0.1),
            ell_comps=(0.1, 0.0),
            intensity=2.0,
            effective_radius=0.3,
            sersic_index=1.0,
        ),
    )
    return al.Tracer(galaxies=[lens, source])


def simulated_dataset(true_tracer):
    """The imaging of `true_tracer` on a 24 x 24 grid, with noise, masked to a 2" circle."""
    grid = al.Grid2D.uniform(shape_native=(24, 24), pixel_scales=PIXEL_SCALE)
    psf = al.Convolver.from_gaussian(
        shape_native=(3, 3), sigma=0.1, pixel_scales=PIXEL_SCALE
    )
    simulator = al.SimulatorImaging(
        exposure_time=300.0,
        psf=psf,
        background_sky_level=0.1,
        add_poisson_noise_to_data=True,
        noise_seed=1,
    )
    dataset = simulator.via_tracer_from(tracer=true_tracer, grid=grid)
    mask = al.Mask2D.circular(
        shape_native=grid.shape_native, pixel_scales=PIXEL_SCALE, radius=MASK_RADIUS
    )
    return dataset.apply_mask(mask=mask)


def mge_lens_model(total_gaussians=20):
    """
    The lens model of jax_profiling/imaging/mge.py (15 free parameters), with
    `total_gaussians` linear Gaussians per galaxy.
    """
    lens = af.Model(
        al.Galaxy,
        redshift=0.5,
        bulge=al.model_util.mge_model_from(
            mask_radius=MASK_RADIUS,
            total_gaussians=total_gaussians,
            centre_prior_is_uniform=True,
        ),
        mass=af.Model(al.mp.Isothermal),
        shear=af.Model(al.mp.ExternalShear),
    )
    source = af.Model(
        al.Galaxy,
        redshift=1.0,
        bulge=al.model_util.mge_model_from(
            mask_radius=MASK_RADIUS,
            total_gaussians=total_gaussians,
            centre_prior_is_uniform=False,
        ),
    )
    return af.Collection(galaxies=af.Collection(lens=lens, source=source))


@pytest.fixture(scope="session")
def true_tracer():
    return simulated_tracer()


@pytest.fixture(scope="session")
def dataset(true_tracer):
    return simulated_dataset(true_tracer)


@pytest.fixture(scope="session")
def mge_model():
    return mge_lens_model()


def near(value, sigma=0.01):
    return af.GaussianPrior(mean=value, sigma=sigma)


def pixelized_model(pixelization):
    """
    The true lens (priors centred on it, so the reconstruction is well conditioned)
    and a pixelized source.
    """
    light = af.Model(
        al.lp.Sersic, intensity=near(1.0), effective_radius=near(0.6), sersic_index=near(3.0)
    )
    mass = af.Model(al.mp.Isothermal, einstein_radius=near(1.2))
    for profile, ell_comps_0 in ((light, 0.05), (mass, 0.1)):
        profile.centre.centre_0 = near(0.0)
        profile.centre.centre_1 = near(0.0)
        profile.ell_comps.ell_comps_0 = near(ell_comps_0)
        profile.ell_comps.ell_comps_1 = near(0.0)
    shear = af.Model(al.mp.ExternalShear, gamma_1=near(0.05), gamma_2=near(0.0))
    lens = af.Model(al.Galaxy, redshift=0.5, light=light, mass=mass, shear=shear)
    source = af.Model(al.Galaxy, redshift=1.0, pixelization=pixelization)
    return af.Collection(galaxies=af.Collection(lens=lens, source=source))
