"""scripts/setup when no Python >= 3.12 can be found."""
import os
import shutil
import subprocess
import sys

from stackfixtures import REPO


def old_python():
    """Some Python < 3.12 to stand for the machine's default python3."""
    candidates = [shutil.which("python3.11"), "/usr/bin/python3",
                  os.path.expanduser("~/.pyenv/versions/3.11.7/bin/python3.11")]
    for path in candidates:
        if path and os.path.exists(path):
            version = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2] < (3, 12))"],
                                     capture_output=True, text=True).stdout.strip()
            if version == "True":
                return path
    return None


def test_setup_without_python_312_fails_with_one_line(tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    python = old_python()
    if python:
        os.symlink(python, fake_bin / "python3")
    else:  # a stand-in that reports 3.11 and fails the version check
        (fake_bin / "python3").write_text("#!/bin/sh\necho 'Python 3.11.7'\nexit 1\n")
        (fake_bin / "python3").chmod(0o755)
    home, pyenv_root = tmp_path / "home", tmp_path / "pyenv"
    home.mkdir()
    pyenv_root.mkdir()
    env = {"PATH": str(fake_bin), "HOME": str(home), "PYENV_ROOT": str(pyenv_root)}
    # Run a copy, so that nothing can touch the real .venv.
    root = tmp_path / "repo"
    shutil.copytree(REPO / "scripts", root / "scripts")
    result = subprocess.run(["/bin/bash", str(root / "scripts" / "setup")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Python >= 3.12" in lines[0] and "pyenv install 3.12" in lines[0]
    assert not (root / ".venv").exists()
