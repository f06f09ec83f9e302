"""
The imaging likelihood jitted over a model instance (the PyAutoLens series, with the
PyAutoFit, PyAutoArray and PyAutoGalaxy series beneath it).

`jax.jit(lambda i: analysis.log_likelihood_function(instance=i))` must equal the eager
`FitImaging(...).figure_of_merit` of the same instance, serve every instance of a model
with one compile, and batch over leafwise-stacked instances with `jax.vmap`.
"""
import autofit as af
import autolens as al
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import MASK_RADIUS, pixelized_model


def eager_figure_of_merit(dataset, instance, adapt_images=None):
    tracer = al.Tracer(galaxies=list(instance.galaxies))
    return al.FitImaging(
        dataset=dataset, tracer=tracer, adapt_images=adapt_images
    ).figure_of_merit


def vectors_near_medians(model, count, seed=0):
    """`count` parameter vectors a little way from the prior medians."""
    rng = np.random.default_rng(seed)
    medians = np.array(model.physical_values_from_prior_medians)
    return [
        [float(v) for v in medians + 0.01 * rng.standard_normal(medians.shape)]
        for _ in range(count)
    ]


@pytest.fixture(scope="module")
def mge(dataset, mge_model):
    analysis = al.AnalysisImaging(dataset=dataset, use_jax=True)
    likelihood = jax.jit(lambda i: analysis.log_likelihood_function(instance=i))
    return analysis, likelihood


def test_mge_likelihood_jit_equals_eager_fit(dataset, mge_model, mge):
    _, likelihood = mge
    for vector in vectors_near_medians(mge_model, 2):
        instance = mge_model.instance_from_vector(vector)
        np.testing.assert_allclose(
            likelihood(instance), eager_figure_of_merit(dataset, instance), rtol=1e-8
        )


def test_one_compile_serves_every_instance_of_the_model(mge_model, mge):
    _, likelihood = mge
    for vector in vectors_near_medians(mge_model, 3, seed=1):
        likelihood(mge_model.instance_from_vector(vector))
    assert likelihood._cache_size() == 1


def test_mge_pytree_path_equals_the_flat_vector_path(mge_model, mge):
    analysis, likelihood = mge
    flat = jax.jit(
        lambda v: analysis.log_likelihood_function(
            instance=mge_model.instance_from_vector(v, xp=jnp)
        )
    )
    vector = vectors_near_medians(mge_model, 1, seed=2)[0]
    np.testing.assert_allclose(
        likelihood(mge_model.instance_from_vector(vector)),
        flat(jnp.array(vector)),
        rtol=1e-10,
    )


def test_vmap_over_leafwise_stacked_instances_equals_single_calls(mge_model, mge):
    analysis, likelihood = mge
    instances = [
        mge_model.instance_from_vector(v) for v in vectors_near_medians(mge_model, 3, seed=3)
    ]
    batch = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *instances)
    batched = jax.jit(jax.vmap(lambda i: analysis.log_likelihood_function(instance=i)))
    np.testing.assert_allclose(
        batched(batch), [likelihood(i) for i in instances], rtol=1e-10
    )


def test_rectangular_pixelization_likelihood_jit_equals_eager_fit(dataset):
    pixelization = al.Pixelization(
        mesh=al.mesh.RectangularUniform(shape=(12, 12)),
        regularization=al.reg.Constant(coefficient=1.0),
    )
    model = pixelized_model(pixelization)
    analysis = al.AnalysisImaging(dataset=dataset, use_jax=True)
    likelihood = jax.jit(lambda i: analysis.log_likelihood_function(instance=i))
    for vector in vectors_near_medians(model, 2):
        instance = model.instance_from_vector(vector)
        np.testing.assert_allclose(
            likelihood(instance), eager_figure_of_merit(dataset, instance), rtol=1e-6
        )
    assert likelihood._cache_size() == 1


def delaunay_mesh_grid(dataset):
    """An 8x8 overlay of the mask with 16 points on its edge (zeroed in the source)."""
    image_mesh = al.image_mesh.Overlay(shape=(8, 8))
    mesh_grid = image_mesh.image_plane_mesh_grid_from(mask=dataset.mask)
    return al.image_mesh.append_with_circle_edge_points(
        image_plane_mesh_grid=mesh_grid,
        centre=dataset.mask.mask_centre,
        radius=MASK_RADIUS + dataset.mask.pixel_scale / 2.0,
        n_points=16,
    )


def test_delaunay_likelihood_jit_equals_eager_fit_with_adapt_images_keyed_by_galaxy(
    dataset,
):
    mesh_grid = delaunay_mesh_grid(dataset)
    pixelization = al.Pixelization(
        mesh=al.mesh.Delaunay(pixels=mesh_grid.shape[0], zeroed_pixels=16),
        # Split regularization: Constant's neighbours need scipy on traced vertices.
        regularization=al.reg.ConstantSplit(coefficient=1.0),
    )
    model = pixelized_model(pixelization)
    instance = model.instance_from_vector(vectors_near_medians(model, 1)[0])

    # Keyed by the source galaxy object, as upstream's delaunay.py does: inside jit the
    # analysis finds it again through the galaxy's path in the rebuilt instance.
    adapt_images = al.AdaptImages(
        galaxy_image_plane_mesh_grid_dict={instance.galaxies.source: mesh_grid},
        galaxy_name_image_plane_mesh_grid_dict={"('galaxies', 'source')": mesh_grid},
    )
    analysis = al.AnalysisImaging(
        dataset=dataset, adapt_images=adapt_images, use_jax=True
    )
    likelihood = jax.jit(lambda i: analysis.log_likelihood_function(instance=i))
    np.testing.assert_allclose(
        likelihood(instance),
        eager_figure_of_merit(dataset, instance, adapt_images=adapt_images),
        rtol=1e-6,
    )


def test_a_tracer_returned_from_jit_is_a_tracer_with_the_same_planes(true_tracer):
    out = jax.jit(lambda tracer: tracer)(true_tracer)
    assert type(out) is al.Tracer
    assert out.plane_redshifts == true_tracer.plane_redshifts
    assert [type(g) for g in out.galaxies] == [type(g) for g in true_tracer.galaxies]
    assert float(out.galaxies[0].mass.einstein_radius) == 1.2


def test_a_tracer_is_a_jit_argument_and_is_differentiable(true_tracer, dataset):
    grid = dataset.grids.lp

    def total_image(tracer):
        return tracer.image_2d_from(grid=grid, xp=jnp).array.sum()

    np.testing.assert_allclose(
        jax.jit(total_image)(true_tracer), total_image(true_tracer), rtol=1e-10
    )
    grad = jax.grad(total_image)(true_tracer)
    assert type(grad) is al.Tracer
    # The image is linear in the lens light's intensity.
    lens_light_only = al.Tracer(galaxies=[al.Galaxy(redshift=0.5, light=true_tracer.galaxies[0].light)])
    np.testing.assert_allclose(
        grad.galaxies[0].light.intensity,
        total_image(lens_light_only) / true_tracer.galaxies[0].light.intensity,
        rtol=1e-8,
    )


# Galaxies keep their identity inside a trace ------------------------------------


def delaunay_source_and_adapt_images(dataset):
    """A hand-built Delaunay source galaxy and adapt images keyed by that galaxy object."""
    mesh_grid = delaunay_mesh_grid(dataset)
    source = al.Galaxy(
        redshift=1.0,
        pixelization=al.Pixelization(
            mesh=al.mesh.Delaunay(pixels=mesh_grid.shape[0], zeroed_pixels=16),
            regularization=al.reg.ConstantSplit(coefficient=1.0),
        ),
    )
    return source, al.AdaptImages(galaxy_image_plane_mesh_grid_dict={source: mesh_grid})


def test_a_hand_built_fit_with_adapt_images_keyed_by_galaxy_runs_under_jit(true_tracer, dataset):
    source, adapt_images = delaunay_source_and_adapt_images(dataset)
    lens = true_tracer.galaxies[0]
    tracer = al.Tracer(galaxies=[lens, source])

    def figure_of_merit(tracer, xp=jnp):
        return al.FitImaging(
            dataset=dataset, tracer=tracer, adapt_images=adapt_images, xp=xp
        ).figure_of_merit

    jitted = jax.jit(figure_of_merit)(tracer)

    np.testing.assert_allclose(jitted, figure_of_merit(tracer, xp=np), rtol=1e-6)


def test_a_dict_keyed_by_galaxies_finds_the_galaxies_rebuilt_in_a_trace(true_tracer):
    lens, source = true_tracer.galaxies
    weights = {lens: 2.0, source: 3.0}

    def weighted(galaxies):
        return sum(weights[g] * g.redshift for g in galaxies)

    assert float(jax.jit(weighted)(true_tracer.galaxies)) == weighted(true_tracer.galaxies)
    # Outside a trace galaxies still compare by value, as upstream's do.
    assert lens != al.Galaxy(redshift=0.5)


def test_galaxies_is_a_pytree_of_its_galaxies(true_tracer, dataset):
    galaxies = al.Galaxies(list(true_tracer.galaxies))
    grid = dataset.grids.lp

    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(galaxies)[0]]
    assert paths[0] == "[0].light.centre[0]"
    assert len(paths) == len(jax.tree_util.tree_leaves(list(true_tracer.galaxies)))

    out = jax.jit(lambda g: g)(galaxies)
    assert type(out) is al.Galaxies
    assert [g.id for g in out] == [g.id for g in galaxies]

    image = jax.jit(lambda g: g.image_2d_from(grid=grid, xp=jnp).array)(galaxies)
    np.testing.assert_allclose(image, galaxies.image_2d_from(grid=grid).array, rtol=1e-10)


def test_galaxies_of_other_ids_share_one_compile_and_come_back_with_the_ids_that_traced(true_tracer):
    # Ids are not part of the jit cache key: what a cached call returns carries the ids
    # of the call that traced it (a known limit).
    same = jax.jit(lambda tracer: tracer)
    other = al.Tracer(galaxies=[al.Galaxy(redshift=g.redshift, **g.profile_dict) for g in true_tracer.galaxies])
    assert [g.id for g in other.galaxies] != [g.id for g in true_tracer.galaxies]

    assert [g.id for g in same(true_tracer).galaxies] == [g.id for g in true_tracer.galaxies]
    assert [g.id for g in same(other).galaxies] == [g.id for g in true_tracer.galaxies]
    assert same._cache_size() == 1


def test_hand_built_tracers_with_the_default_cosmology_share_one_compile(true_tracer, dataset):
    def fresh_tracer():
        return al.Tracer(galaxies=list(true_tracer.galaxies))

    used = fresh_tracer()
    used.image_2d_from(grid=dataset.grids.lp)  # its Planck15 caches distances
    total = jax.jit(lambda tracer: tracer.galaxies[0].mass.einstein_radius * 2.0)

    for tracer in (used, fresh_tracer(), fresh_tracer()):
        total(tracer)
    assert total._cache_size() == 1
    # another cosmology is other static data: a compile of its own
    total(al.Tracer(galaxies=list(true_tracer.galaxies), cosmology=al.cosmo.FlatLambdaCDM(H0=70.0)))
    assert total._cache_size() == 2


def test_ray_tracing_under_jit_takes_the_redshift_scaling_as_a_number(true_tracer, dataset):
    # The angular diameter distances between planes depend on the redshifts alone, numbers here:
    # computed in NumPy, not traced into the program for every plane and grid.
    grid = dataset.grids.lp

    def traced(tracer):
        return tracer.traced_grid_2d_list_from(grid=grid, xp=jnp)[-1].array

    program = jax.make_jaxpr(traced)(true_tracer).jaxpr
    shapes = [tuple(getattr(v.aval, "shape", ())) for eqn in program.eqns for v in eqn.outvars]

    np.testing.assert_allclose(
        jax.jit(traced)(true_tracer), true_tracer.traced_grid_2d_list_from(grid=grid)[-1].array, rtol=1e-12
    )
    assert not any(8193 in shape for shape in shapes)  # no distance integral (8193 Simpson samples) traced
