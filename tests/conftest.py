"""Fixtures for the tooling tests (helpers in stackfixtures.py)."""
import pytest

from stackfixtures import Project, build_wheel, commit, git, PACKAGE_FILES, TEST_FILES


@pytest.fixture
def upstream(tmp_path):
    """The upstream repository: package and tests, one release commit."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, {**PACKAGE_FILES, **TEST_FILES, "README.md": "mypkg\n"}, "Release 1.0")
    return repo


@pytest.fixture
def project(tmp_path, upstream):
    root = tmp_path / "project"
    (root / "wheels").mkdir(parents=True)
    build_wheel(root / "wheels" / "mypkg-1.0-py3-none-any.whl")
    return Project(root, upstream, git(upstream, "rev-parse", "HEAD"))
