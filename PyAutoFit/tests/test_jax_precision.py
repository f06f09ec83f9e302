"""An analysis with use_jax=True says so when JAX runs in 32-bit, instead of a silent NaN."""
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import warnings
    import jax  # imported before autofit: autoconf cannot turn 64-bit on any more
    import autofit as af

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        af.ex.Analysis(data=[1.0], noise_map=[1.0], use_jax=True)
    print([str(w.message)[:60] for w in caught])
    """
)


@pytest.mark.parametrize("x64, warned", [("False", True), ("True", False)])
def test_an_analysis_using_jax_in_32_bit_warns_how_to_enable_64_bit(x64, warned):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env={**os.environ, "JAX_ENABLE_X64": x64},
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout.strip().splitlines()[-1]
    assert ("JAX is running in 32-bit" in out) is warned
