"""Helpers for the tooling tests: a tiny library `mypkg` with an upstream git
repository (package + tests) and a wheel built from it (package only), and a
scratch project root whose stack.json points at that wheel, so scripts/stack
runs offline against real git."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STACK = REPO / "scripts" / "stack"
IDENTITY = ["-c", "user.name=Patch Author", "-c", "user.email=author@example.com"]

PACKAGE_FILES = {
    "mypkg/__init__.py": "from .core import add\n",
    "mypkg/windows.py": "x = 1\r\ny = 2\r\nz = 3\r\n",  # CRLF, as many upstream files
    "mypkg/core.py": "".join(f"# line {i}\n" for i in range(1, 21)) + "def add(a, b):\n    return a + b\n",
}
TEST_FILES = {"test_mypkg/test_core.py": "from mypkg import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"}


def git(cwd, *args, env=None):
    result = subprocess.run(["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def write(root, files):
    for name, text in files.items():
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def commit(repo, files, message, date="2026-05-01T12:00:00+0000"):
    """Write files (relative paths) and commit them with a fixed date."""
    write(repo, files)
    git(repo, "add", "-A")
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    git(repo, "commit", "-q", "-m", message, env=env)
    return git(repo, "rev-parse", "HEAD")


def replace_line(text, old, new):
    assert old in text
    return text.replace(old, new, 1)


class Project:
    """A scratch root with stack.json, PyFoo/patches and a local wheel."""

    def __init__(self, root, upstream, tag_commit):
        self.root = root
        self.upstream = upstream
        self.patches = root / "PyFoo" / "patches"
        self.tree = root / "build" / "PyFoo"
        self.patches.mkdir(parents=True)
        (self.patches / "series").write_text("")
        self.tag_commit = tag_commit
        self.configure()

    def configure(self, **extra):
        """Write stack.json; `extra` goes into the library's entry."""
        library = {"folder": "PyFoo", "dist": "mypkg", "package": "mypkg", "tests": "test_mypkg",
                   "tag_commit": self.tag_commit, "wheel": "wheels/mypkg-1.0-py3-none-any.whl"}
        config = {"version": "1.0", "libraries": [{**library, **extra}]}
        (self.root / "stack.json").write_text(json.dumps(config))

    def stack(self, *args):
        return subprocess.run([sys.executable, str(STACK), "--root", str(self.root), *args],
                              capture_output=True, text=True)

    def ok(self, *args):
        result = self.stack(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def patch_bytes(self):
        return {p.name: p.read_bytes() for p in sorted(self.patches.iterdir())}

    def series(self):
        return (self.patches / "series").read_text().split()

    def use_patches(self, paths):
        """Copy patch files into PyFoo/patches and list them in the series."""
        for path in paths:
            (self.patches / path.name).write_bytes(path.read_bytes())
        (self.patches / "series").write_text("".join(f"{p.name}\n" for p in paths))

    def tree_git(self, *args):
        return git(self.tree, *args)


def build_wheel(path):
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in PACKAGE_FILES.items():
            wheel.writestr(name, text)
        wheel.writestr("docs/index.rst", "not part of the package\n")
        info = "mypkg-1.0.dist-info/"
        wheel.writestr(info + "METADATA", "Metadata-Version: 2.1\nName: mypkg\nVersion: 1.0\n")
        wheel.writestr(info + "WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(info + "RECORD", "")


CANONICAL = ["--zero-commit", "--no-stat", "--no-signature", "-N", "--full-index"]


def format_patches(repo, outdir, since="HEAD~1", options=CANONICAL):
    """Patches of the commits after `since`, as the patch author writes them."""
    outdir.mkdir(parents=True, exist_ok=True)
    out = git(repo, "format-patch", *options, "-o", str(outdir), since)
    return [Path(line) for line in out.splitlines()]
