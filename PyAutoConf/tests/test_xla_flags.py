"""
Importing autoconf (and so every PyAuto library) keeps the user's XLA_FLAGS (the
PyAutoConf series): autoconf's own flag is added only where the user set none of
its name.

XLA reads XLA_FLAGS once, when JAX starts its backend, so each end-to-end check
runs in a fresh interpreter with the environment a user would give it.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from autoconf.jax_wrapper import CONSTANT_FOLDING_OFF, xla_flags_with_defaults

DEVICES_2 = "--xla_force_host_platform_device_count=2"


def run_python(code: str, xla_flags=None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_ENABLE_X64"] = "True"
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]  # the libraries may log to stdout first


# The rule ------------------------------------------------------------------------


@pytest.mark.parametrize("unset", [None, "", "   "])
def test_without_user_flags_autoconfs_flag_is_set(unset):
    assert xla_flags_with_defaults(unset) == CONSTANT_FOLDING_OFF


def test_a_users_flags_are_kept_as_written_and_autoconfs_added():
    flags = f"{DEVICES_2}  --xla_dump_to=/tmp/dump"

    assert xla_flags_with_defaults(flags) == f"{DEVICES_2}  --xla_dump_to=/tmp/dump {CONSTANT_FOLDING_OFF}"


def test_a_user_flag_of_the_same_name_wins_and_is_not_repeated():
    flags = f"--xla_disable_hlo_passes=algsimp {DEVICES_2}"

    assert xla_flags_with_defaults(flags) == flags


def test_adding_the_defaults_twice_changes_nothing():
    once = xla_flags_with_defaults(DEVICES_2)

    assert xla_flags_with_defaults(once) == once


# What a user sees ------------------------------------------------------------------


@pytest.mark.parametrize(
    "imports",
    ["import autoconf", "import autofit", "import autolens", "import jax; import autolens"],
)
def test_importing_the_stack_keeps_the_users_host_device_count(imports):
    output = run_python(
        f"""
        import os
        {imports}
        import jax
        print(jax.device_count(), "|", os.environ["XLA_FLAGS"])
        """,
        xla_flags=DEVICES_2,
    )

    devices, flags = output.split(" | ")
    assert devices == "2"
    assert flags.split() == [DEVICES_2, CONSTANT_FOLDING_OFF]


def test_without_user_flags_the_import_sets_autoconfs_flag_as_before():
    output = run_python(
        """
        import os
        import autofit
        print(os.environ["XLA_FLAGS"])
        """
    )

    assert output == CONSTANT_FOLDING_OFF


def test_the_colab_set_up_keeps_the_users_flags_too():
    output = run_python(
        """
        import os
        import autoconf.setup_colab as setup_colab

        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=3"
        setup_colab._colab_setup(  # not in Colab: it says so and returns
            project_name="p", workspace_repo="r", workspace_dir="d", packages=[],
            raise_error_if_not_gpu=False, gpu_error_message="",
        )
        print(os.environ["XLA_FLAGS"])
        """
    )

    assert output.split() == ["--xla_force_host_platform_device_count=3", CONSTANT_FOLDING_OFF]
