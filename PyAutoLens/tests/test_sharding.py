"""
A batch of model instances sharded over devices (jax_profiling/imaging's `--devices`).

Instances are pytrees, so a batch of them (stacked leaf by leaf: every leaf has a
leading batch axis) can be placed leaf by leaf over a 1-D mesh of devices with a
`NamedSharding(mesh, PartitionSpec("batch"))`. Two programs run it there, and both
must give the unsharded batch's log likelihoods:

- the jitted `jax.vmap` of the likelihood itself, which XLA partitions by the inputs'
  shardings,
- the jitted `jax.shard_map` of that vmap, each device computing its own lanes with no
  communication between devices (what the profiling scripts time).

A CPU has one JAX device unless JAX is told to make several before its backend starts,
which in a pytest process has long happened, so the sharded run is this file run as a
script in a subprocess: it forces two CPU devices first, then builds the small MGE
fit of conftest.py, and prints what it measured as one line of JSON.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

DEVICES = 2
BATCH_SIZE = 4
GAUSSIANS_PER_GALAXY = 5  # the likelihood of mge.py's model, with fewer Gaussians to compile faster


def test_a_batch_sharded_over_two_cpu_devices_equals_the_unsharded_batch():
    env = {**os.environ, "JAX_ENABLE_X64": "True", "JAX_PLATFORMS": "cpu"}
    completed = subprocess.run(
        [sys.executable, __file__],
        cwd=Path(__file__).parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])

    assert report["devices"] == DEVICES
    # Every leaf of the input, and the output, is split over both devices, half the
    # batch each.
    assert report["input_leaf_device_counts"] == [DEVICES]
    assert report["input_leaf_shard_lanes"] == [[BATCH_SIZE // DEVICES] * DEVICES]
    assert report["unsharded_result_devices"] == 1
    assert len(set(report["unsharded"])) == BATCH_SIZE  # different instances

    for program in ("jit_vmap", "shard_map"):
        assert report[program]["result_devices"] == DEVICES, program
        assert report[program]["result_shard_lanes"] == [BATCH_SIZE // DEVICES] * DEVICES, program
        np.testing.assert_allclose(
            report[program]["results"], report["unsharded"], rtol=1e-10, err_msg=program
        )


def sharded_and_unsharded_batch():
    """
    The subprocess: two CPU devices, the vmapped likelihood over a batch of 4 MGE
    instances, unsharded and sharded over the devices (by both programs); returns what
    the test checks.
    """
    # Before anything runs on a device: afterwards JAX refuses the update.
    jax.config.update("jax_num_cpu_devices", DEVICES)
    jax.config.update("jax_enable_x64", True)

    import jax.numpy as jnp
    import autolens as al
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from conftest import mge_lens_model, simulated_dataset, simulated_tracer

    dataset = simulated_dataset(simulated_tracer())
    model = mge_lens_model(total_gaussians=GAUSSIANS_PER_GALAXY)

    rng = np.random.default_rng(4)
    medians = np.array(model.physical_values_from_prior_medians)
    instances = [
        model.instance_from_vector(list(medians + 0.01 * rng.standard_normal(medians.shape)))
        for _ in range(BATCH_SIZE)
    ]
    batch = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *instances)

    analysis = al.AnalysisImaging(dataset=dataset, use_jax=True)
    vmapped = jax.vmap(lambda i: analysis.log_likelihood_function(instance=i))
    batched = jax.jit(vmapped)

    devices = jax.devices()
    mesh = Mesh(np.array(devices[:DEVICES]), ("batch",))
    spec = PartitionSpec("batch")
    sharded_batch = jax.tree_util.tree_map(
        lambda leaf: jax.device_put(leaf, NamedSharding(mesh, spec)), batch
    )
    by_shard = jax.jit(
        jax.shard_map(vmapped, mesh=mesh, in_specs=(spec,), out_specs=spec, check_vma=False)
    )

    unsharded = batched(batch)

    def placed(result):
        return {
            "result_devices": len(result.sharding.device_set),
            "result_shard_lanes": [shard.data.shape[0] for shard in result.addressable_shards],
            "results": [float(value) for value in result],
        }

    leaves = jax.tree_util.tree_leaves(sharded_batch)
    return {
        "devices": len(devices),
        "input_leaf_device_counts": sorted({len(leaf.sharding.device_set) for leaf in leaves}),
        "input_leaf_shard_lanes": sorted(
            {tuple(shard.data.shape[0] for shard in leaf.addressable_shards) for leaf in leaves}
        ),
        "unsharded_result_devices": len(unsharded.sharding.device_set),
        "unsharded": [float(value) for value in unsharded],
        "jit_vmap": placed(batched(sharded_batch)),
        "shard_map": placed(by_shard(sharded_batch)),
    }


if __name__ == "__main__":
    print(json.dumps(sharded_and_unsharded_batch()))
