"""
Galaxies, light and mass profiles and the MGE basis as JAX pytrees (the PyAutoGalaxy
series), built by hand or by a model.
"""
import autofit as af
import autogalaxy as ag
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from autogalaxy.profiles.light import linear as lp_linear
from jax.tree_util import keystr, tree_flatten, tree_flatten_with_path, tree_structure

GRID = ag.Grid2D.uniform(shape_native=(12, 12), pixel_scales=0.2)

LIGHT_PROFILES = [
    ag.lp.Gaussian(centre=(0.1, 0.0), ell_comps=(0.1, 0.05), intensity=1.0, sigma=0.5),
    ag.lp.Sersic(centre=(0.0, 0.1), ell_comps=(0.1, 0.0), intensity=1.0, effective_radius=0.6, sersic_index=3.0),
    ag.lp.SersicSph(centre=(0.0, 0.1), intensity=1.0, effective_radius=0.6, sersic_index=2.0),
    ag.lp.SersicCore(centre=(0.0, 0.1), ell_comps=(0.1, 0.0), intensity=1.0, effective_radius=0.6, sersic_index=2.0),
    ag.lp.Exponential(centre=(0.0, 0.0), ell_comps=(0.0, 0.1), intensity=1.0, effective_radius=0.5),
    ag.lp.DevVaucouleurs(centre=(0.0, 0.0), ell_comps=(0.0, 0.1), intensity=1.0, effective_radius=0.5),
]

LINEAR_LIGHT_PROFILES = [
    lp_linear.Gaussian(centre=(0.1, 0.0), ell_comps=(0.1, 0.05), sigma=0.5),
    lp_linear.Sersic(centre=(0.0, 0.1), ell_comps=(0.1, 0.0), effective_radius=0.6, sersic_index=3.0),
    lp_linear.Exponential(centre=(0.0, 0.0), ell_comps=(0.0, 0.1), effective_radius=0.5),
]

MASS_PROFILES = [
    ag.mp.Isothermal(centre=(0.0, 0.0), ell_comps=(0.1, 0.0), einstein_radius=1.2),
    ag.mp.IsothermalSph(centre=(0.0, 0.0), einstein_radius=1.2),
    ag.mp.PowerLaw(centre=(0.0, 0.0), ell_comps=(0.1, 0.0), einstein_radius=1.2, slope=2.1),
    ag.mp.PowerLawSph(centre=(0.0, 0.0), einstein_radius=1.2, slope=2.1),
    ag.mp.ExternalShear(gamma_1=0.05, gamma_2=0.02),
    ag.mp.NFW(centre=(0.0, 0.0), ell_comps=(0.1, 0.0), kappa_s=0.1, scale_radius=5.0),
    ag.mp.NFWSph(centre=(0.0, 0.0), kappa_s=0.1, scale_radius=5.0),
    ag.mp.NFWTruncatedSph(centre=(0.0, 0.0), kappa_s=0.1, scale_radius=5.0, truncation_radius=10.0),
]


def light(profile, xp=jnp):
    return profile.image_2d_from(grid=GRID, xp=xp).array.sum()


# At this release these profiles' deflections and convergence do not trace under jit
# (upstream: a scan over a partial, NumPy defaults, a complex NumPy conversion): they
# cross jit as arguments and results, but are not evaluated inside it.
EVALUATION_NOT_JITTABLE = (ag.mp.PowerLaw, ag.mp.PowerLawSph, ag.mp.NFWTruncatedSph)


def deflections(profile, xp=jnp):
    return (profile.deflections_yx_2d_from(grid=GRID, xp=xp).array ** 2).sum()


def name(profile):
    return type(profile).__module__.split(".")[-3] + "." + type(profile).__name__


@pytest.mark.parametrize("profile", LIGHT_PROFILES + LINEAR_LIGHT_PROFILES, ids=name)
def test_light_profiles_cross_jit_as_argument_and_result(profile):
    out = jax.jit(lambda p: p)(profile)
    assert type(out) is type(profile)
    assert tree_structure(out) == tree_structure(profile)
    np.testing.assert_allclose(jax.jit(light)(profile), light(profile, xp=np), rtol=1e-10)


@pytest.mark.parametrize("profile", MASS_PROFILES, ids=name)
def test_mass_profiles_cross_jit_as_argument_and_result(profile):
    out = jax.jit(lambda p: p)(profile)
    assert type(out) is type(profile)
    assert tree_structure(out) == tree_structure(profile)
    if type(profile) not in EVALUATION_NOT_JITTABLE:
        np.testing.assert_allclose(
            jax.jit(deflections)(profile), deflections(profile, xp=np), rtol=1e-8
        )


@pytest.mark.parametrize(
    "profile, parameter",
    [(LIGHT_PROFILES[1], "intensity"), (MASS_PROFILES[0], "einstein_radius"), (MASS_PROFILES[5], "kappa_s")],
    ids=["Sersic", "Isothermal", "NFW"],
)
def test_profiles_cross_grad_and_vmap(profile, parameter):
    function = light if parameter == "intensity" else deflections
    grad = jax.grad(function)(profile)
    assert type(grad) is type(profile)
    value = getattr(profile, parameter)
    step = 1e-6 * value
    moved = jax.tree_util.tree_map(lambda x: x, profile)
    setattr(moved, parameter, value + step)
    finite_difference = (function(moved, xp=np) - function(profile, xp=np)) / step
    np.testing.assert_allclose(getattr(grad, parameter), finite_difference, rtol=1e-4)

    batch = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), profile)
    np.testing.assert_allclose(jax.vmap(function)(batch), [function(profile)] * 2, rtol=1e-10)


def test_leaves_of_a_hand_built_profile_are_named_parameters():
    paths = [keystr(p) for p, _ in tree_flatten_with_path(LIGHT_PROFILES[1])[0]]
    assert paths[:5] == [".centre[0]", ".centre[1]", ".ell_comps[0]", ".ell_comps[1]", ".intensity"]


def test_a_galaxy_redshift_is_static_and_its_profiles_are_children():
    galaxy = ag.Galaxy(redshift=0.5, light=LIGHT_PROFILES[1], mass=MASS_PROFILES[0])
    leaves, treedef = tree_flatten(galaxy)
    assert 0.5 not in leaves
    assert "redshift=0.5" in str(treedef)

    @jax.jit
    def f(g):
        assert isinstance(g.redshift, float)  # Python value, usable for sorting planes
        return g.image_2d_from(grid=GRID, xp=jnp).array.sum() if g.redshift < 1.0 else 0.0

    np.testing.assert_allclose(f(galaxy), galaxy.image_2d_from(grid=GRID).array.sum(), rtol=1e-10)


def test_a_galaxy_returned_from_jit_keeps_its_id_and_hash():
    galaxy = ag.Galaxy(redshift=0.5, light=LIGHT_PROFILES[0])
    out = jax.jit(lambda g: g)(galaxy)
    assert type(out) is ag.Galaxy
    assert out.id == galaxy.id and hash(out) == hash(galaxy)
    # Galaxies differ only by id: one compile serves them all.
    f = jax.jit(lambda g: g.light.intensity)
    for _ in range(3):
        f(ag.Galaxy(redshift=0.5, light=LIGHT_PROFILES[0]))
    assert f._cache_size() == 1


def test_a_dictionary_keyed_by_galaxies_finds_galaxies_rebuilt_by_unflatten():
    galaxy = ag.Galaxy(redshift=0.5, light=LIGHT_PROFILES[0])
    images = {galaxy: 3.0}
    rebuilt = jax.tree_util.tree_map(lambda x: x, galaxy)
    assert rebuilt is not galaxy
    assert images[rebuilt] == 3.0


def test_basis_of_linear_gaussians_from_a_model_and_by_hand():
    model = ag.model_util.mge_model_from(mask_radius=2.0, total_gaussians=5, centre_prior_is_uniform=True)
    instance = model.instance_from_vector(model.physical_values_from_prior_medians)
    leaves = tree_flatten(instance)[0]
    # 5 Gaussians share one centre and one ell_comps prior: the leaves are those 4 free
    # parameters, once each; the sigmas are constants.
    assert len(leaves) == model.prior_count == 4
    moved = jax.tree_util.tree_map(lambda x: x + 0.1, instance)
    assert moved.centre == moved.profile_list[0].centre  # derived, follows the new values

    by_hand = ag.lp_basis.Basis(profile_list=LINEAR_LIGHT_PROFILES[:1] * 2)
    out = jax.jit(lambda b: b)(by_hand)
    assert type(out) is ag.lp_basis.Basis
    assert len(out.profile_list) == 2


def test_model_built_galaxies_share_one_treedef_per_model():
    model = af.Model(
        ag.Galaxy, redshift=0.5, light=af.Model(ag.lp.Sersic), mass=af.Model(ag.mp.Isothermal)
    )
    medians = np.array(model.physical_values_from_prior_medians)
    one = model.instance_from_vector(list(medians))
    two = model.instance_from_vector(list(medians * 1.01))
    assert tree_structure(one) == tree_structure(two)
    assert len(tree_flatten(one)[0]) == model.prior_count


def _mass_profile_models():
    """A model of every mass profile class whose priors are configured (leaves, paths)."""
    models = []
    for name in sorted(dir(ag.mp)):
        cls = getattr(ag.mp, name)
        if not isinstance(cls, type) or not issubclass(cls, ag.mp.MassProfile):
            continue
        model = af.Collection(mass=af.Model(cls))
        try:
            model.instance_from_prior_medians()
        except Exception:  # no default priors for this class at this release
            continue
        models.append(pytest.param(model, id=name))
    return models


@pytest.mark.parametrize("model", _mass_profile_models())
def test_every_mass_profile_instance_is_a_pytree_of_its_parameters_and_optax_inits(model):
    import optax

    instance = model.instance_from_prior_medians()

    leaves = jax.tree_util.tree_leaves(instance)
    state = optax.adam(1e-2).init(instance)  # zeros: no constructor (colossus) runs on them

    assert len(leaves) == model.prior_count
    assert jax.tree_util.tree_structure(state[0].mu) == jax.tree_util.tree_structure(instance)


def test_ludlow_nfw_derived_attributes_follow_their_parameters_in_jit_and_vmap():
    model = af.Collection(
        mass=af.Model(ag.mp.cNFWMCRLudlowSph, redshift_object=0.5, redshift_source=1.0)
    )
    vectors = [
        np.array(model.vector_from_unit_vector([u] * model.prior_count)) for u in (0.3, 0.5, 0.7)
    ]
    instances = [model.instance_from_vector(v) for v in vectors]
    names = [keystr(path) for path, _ in tree_flatten_with_path(instances[0])[0]]
    assert ".mass.mass_at_200" in names

    kappa_s = jax.jit(lambda i: i.mass.kappa_s)
    batch = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *instances)
    batched = jax.vmap(lambda i: i.mass.kappa_s)(batch)

    for i, instance in enumerate(instances):
        assert float(kappa_s(instance)) == pytest.approx(instance.mass.kappa_s, rel=1e-10)
        assert float(batched[i]) == pytest.approx(instance.mass.kappa_s, rel=1e-10)
    assert len({float(k) for k in batched}) == 3  # kappa_s follows mass_at_200


def test_a_fitted_galaxy_compares_with_a_hand_built_truth_by_name():
    import chex

    model = af.Model(
        ag.Galaxy,
        redshift=0.5,
        mass=af.Model(ag.mp.Isothermal),
        shear=af.Model(ag.mp.ExternalShear),
    )
    vector = [0.01, -0.02, 0.05, 0.1, 1.3, 0.03, -0.04]
    fitted = model.instance_from_vector(vector)
    truth = ag.Galaxy(
        redshift=0.5,
        mass=ag.mp.Isothermal(centre=(0.01, -0.02), ell_comps=(0.05, 0.1), einstein_radius=1.3),
        shear=ag.mp.ExternalShear(gamma_1=0.03, gamma_2=-0.04),
    )
    # One set of names, autofit's, for the model's parameters: of the fitted galaxy by
    # its leaves, of the hand-built truth by following each name through it.
    fitted_by_name = af.values_by_path(model, fitted)
    truth_by_name = af.values_by_path(model, truth)

    assert list(fitted_by_name) == model.joined_paths == [
        "mass.centre.centre_0", "mass.centre.centre_1", "mass.ell_comps.ell_comps_0",
        "mass.ell_comps.ell_comps_1", "mass.einstein_radius", "shear.gamma_1", "shear.gamma_2",
    ]
    chex.assert_trees_all_close(fitted_by_name, truth_by_name)

    truth.mass.einstein_radius = 1.4
    with pytest.raises(AssertionError):
        chex.assert_trees_all_close(fitted_by_name, af.values_by_path(model, truth))


@pytest.mark.parametrize(
    "cls",
    [
        ag.mp.NFWMCRDuffySph,
        ag.mp.NFWMCRLudlowSph,
        ag.mp.NFWMCRLudlow,
        ag.mp.NFWTruncatedMCRDuffySph,
        ag.mp.NFWTruncatedMCRLudlowSph,
        ag.mp.cNFWMCRLudlowSph,
        ag.mp.cNFWMCRLudlow,
    ],
    ids=lambda cls: cls.__name__,
)
def test_the_gradient_by_mass_of_a_derived_kappa_s_is_the_flat_paths_and_finite_differences(cls):
    model = af.Collection(mass=af.Model(cls, redshift_object=0.5, redshift_source=1.0))
    vector = np.array(model.vector_from_unit_vector([0.6] * model.prior_count))
    instance = model.instance_from_vector(vector)

    by_tree = af.values_by_path(model, jax.grad(lambda i: i.mass.kappa_s)(instance))
    by_vector = jax.grad(lambda v: model.instance_from_vector(v, xp=jnp).mass.kappa_s)(
        jnp.asarray(vector)
    )
    index = list(by_tree).index("mass.mass_at_200")
    mass = vector[index]
    step = 1e-3 * mass
    eager = [
        model.instance_from_vector(
            np.where(np.arange(len(vector)) == index, mass + sign * step, vector)
        ).mass.kappa_s
        for sign in (1, -1)
    ]

    gradient = float(by_tree["mass.mass_at_200"])
    assert gradient != 0.0
    np.testing.assert_allclose([float(g) for g in by_tree.values()], by_vector, rtol=1e-10)
    assert gradient == pytest.approx((eager[0] - eager[1]) / (2 * step), rel=1e-4)


def test_a_model_built_galaxy_keyed_dict_is_found_inside_jit_as_the_first_jax_call():
    # A fresh interpreter: the galaxy's model is first flattened inside the trace.
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import autofit as af
        import autogalaxy as ag
        import jax

        model = af.Collection(
            lens=af.Model(ag.Galaxy, redshift=0.5, mass=ag.mp.IsothermalSph),
            source=af.Model(ag.Galaxy, redshift=1.0, light=ag.lp.Gaussian),
        )
        instance = model.instance_from_prior_medians()
        weights = {instance.lens: 2.0, instance.source: 3.0}

        def f(instance):
            return weights[instance.source] * instance.source.light.intensity

        value = jax.jit(f)(instance)
        assert float(value) == 3.0 * instance.source.light.intensity, value
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "ok"
