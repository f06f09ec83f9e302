"""scripts/stack against a tiny real wheel and real git (see conftest.py)."""
import os
import site
import subprocess
import sys

from stackfixtures import (PACKAGE_FILES, TEST_FILES, commit, format_patches, git, replace_line,
                      write)

CORE = PACKAGE_FILES["mypkg/core.py"]
TEST = TEST_FILES["test_mypkg/test_core.py"]


def make_series(project, tmp_path, options=None):
    """Three upstream commits: package + tests, tests only, package only."""
    repo = project.upstream
    commit(repo, {"mypkg/core.py": replace_line(CORE, "return a + b", "return b + a"),
                  "test_mypkg/test_core.py": TEST + "\n\ndef test_swap():\n    assert add(2, 1) == 3\n"},
           "Swap the operands\n\nWith a body paragraph.")
    commit(repo, {"test_mypkg/test_more.py": "def test_more():\n    pass\n"},
           "Tests only: more cases")
    commit(repo, {"mypkg/__init__.py": PACKAGE_FILES["mypkg/__init__.py"] + "VERSION = 1\n"},
           "[jax] Add VERSION")
    kwargs = {"options": options} if options else {}
    paths = format_patches(repo, tmp_path / "made", since="HEAD~3", **kwargs)
    project.use_patches(paths)
    return paths


def dev_commit(project, files, message):
    write(project.tree, files)
    project.tree_git("add", "-A")
    project.tree_git("commit", "-q", "-m", message)


# --------------------------------------------------------------------------- apply

def test_apply_builds_wheel_tree_with_series(project, tmp_path):
    make_series(project, tmp_path)
    out = project.ok("apply").stdout
    assert "applied 3 patches" in out
    tree = project.tree
    assert (tree / "mypkg" / "core.py").read_text().count("return b + a") == 1
    assert (tree / "mypkg" / "__init__.py").read_text().endswith("VERSION = 1\n")
    # Only the package folder of the wheel; upstream tests skipped, not failed.
    assert sorted(p.name for p in tree.iterdir()) == [".git", "mypkg"]
    log = project.tree_git("log", "--format=%s", "upstream..HEAD").splitlines()
    assert log == ["[jax] Add VERSION", "Tests only: more cases", "Swap the operands"]
    assert project.tree_git("diff", "--stat", "HEAD~2", "HEAD~1") == ""  # tests-only: empty
    assert project.tree_git("status", "--porcelain") == ""


def test_trees_are_deterministic(project, tmp_path):
    make_series(project, tmp_path)
    project.ok("apply")
    first = project.tree_git("rev-parse", "upstream", "HEAD")
    os.rename(project.tree, tmp_path / "moved")
    project.ok("apply")
    assert project.tree_git("rev-parse", "upstream", "HEAD") == first


def test_reapply_with_nothing_changed_is_a_no_op(project, tmp_path):
    make_series(project, tmp_path)
    project.ok("apply")
    stamp = os.stat(project.tree).st_ino, project.tree_git("rev-parse", "HEAD")
    out = project.ok("apply").stdout
    assert "up to date (3 patches)" in out
    assert (os.stat(project.tree).st_ino, project.tree_git("rev-parse", "HEAD")) == stamp


def test_clean_tree_is_rebuilt_when_the_series_changes(project, tmp_path):
    paths = make_series(project, tmp_path)
    project.use_patches(paths[:1])
    project.ok("apply")
    project.use_patches(paths)
    assert "applied 3 patches" in project.ok("apply").stdout
    assert len(project.tree_git("log", "--format=%s", "upstream..HEAD").splitlines()) == 3


def test_empty_series_gives_the_bare_wheel(project):
    project.ok("apply")
    assert project.tree_git("rev-parse", "HEAD") == project.tree_git("rev-parse", "upstream")
    assert (project.tree / "mypkg" / "core.py").read_text() == CORE


# --------------------------------------------------------------------------- failures

def conflicting_patch(project, tmp_path):
    """A patch made against a different core.py: its hunk cannot apply."""
    repo = project.upstream
    commit(repo, {"mypkg/core.py": replace_line(CORE, "# line 12\n", "# changed 12\n")}, "Diverge")
    commit(repo, {"mypkg/core.py": replace_line(replace_line(CORE, "# line 12\n", "# changed 12\n"),
                                                "# line 13\n", "# line thirteen\n")},
           "Conflicts with the wheel")
    return format_patches(repo, tmp_path / "bad")[0]


def test_conflicting_patch_names_file_and_hunk_and_keeps_old_tree(project, tmp_path):
    paths = make_series(project, tmp_path)
    project.ok("apply")
    before = project.tree_git("rev-parse", "HEAD")
    bad = conflicting_patch(project, tmp_path)
    project.use_patches(paths + [bad])
    result = project.stack("apply")
    assert result.returncode != 0
    message = result.stderr
    assert f"PyFoo/patches/{bad.name}" in message
    assert "mypkg/core.py" in message
    assert "hunk #1 `@@ -10,7 +10,7 @@`" in message
    assert len(message.strip().splitlines()) == 1
    # The previous tree is untouched and nothing half-applied is left around.
    assert project.tree_git("rev-parse", "HEAD") == before
    assert project.tree_git("status", "--porcelain") == ""
    assert sorted(p.name for p in project.tree.parent.iterdir()) == ["PyFoo"]


def test_failed_first_apply_leaves_no_tree(project, tmp_path):
    project.use_patches([conflicting_patch(project, tmp_path)])
    assert project.stack("apply").returncode != 0
    assert not project.tree.exists()
    assert list(project.tree.parent.iterdir()) == []


def test_uncommitted_edits_are_never_overwritten(project, tmp_path):
    paths = make_series(project, tmp_path)
    project.use_patches(paths[:2])
    project.ok("apply")
    (project.tree / "mypkg" / "core.py").write_text("work in progress\n")
    project.use_patches(paths)
    result = project.stack("apply")
    assert result.returncode != 0
    assert "build/PyFoo has uncommitted edits" in result.stderr
    assert "scripts/stack export PyFoo" in result.stderr and "move build/PyFoo away" in result.stderr
    assert (project.tree / "mypkg" / "core.py").read_text() == "work in progress\n"


def test_unexported_commits_are_never_overwritten(project, tmp_path):
    paths = make_series(project, tmp_path)
    project.use_patches(paths[:2])
    project.ok("apply")
    dev_commit(project, {"mypkg/new.py": "x = 1\n"}, "Work not exported")
    head = project.tree_git("rev-parse", "HEAD")
    project.use_patches(paths)
    result = project.stack("apply")
    assert result.returncode != 0
    assert "build/PyFoo has commits not exported (1 new or changed" in result.stderr
    assert project.tree_git("rev-parse", "HEAD") == head


def test_missing_patch_file_is_an_error(project):
    (project.patches / "series").write_text("0001-gone.patch\n")
    result = project.stack("apply")
    assert result.returncode != 0
    assert "PyFoo/patches/series lists 0001-gone.patch" in result.stderr


# --------------------------------------------------------------------------- export

def test_apply_then_export_is_byte_identical(project, tmp_path):
    make_series(project, tmp_path)
    original = project.patch_bytes()
    project.ok("apply")
    assert "(no change)" in project.ok("export").stdout
    assert project.patch_bytes() == original  # the skipped test hunks included
    project.ok("export")
    assert project.patch_bytes() == original
    assert b"test_mypkg/test_more.py" in original[project.series()[1]]


def test_export_normalizes_foreign_patches_then_stays_stable(project, tmp_path):
    # As plain `git format-patch` writes them: numbered, stat, signature.
    make_series(project, tmp_path, options=["--numbered"])
    project.ok("apply")
    project.ok("export")
    first = project.patch_bytes()
    assert all(b"-- \n" not in data and b"[PATCH 1/3]" not in data for data in first.values())
    for name in project.series():
        assert b"test_mypkg/" in first[name] or b"Add VERSION" in first[name]
    project.ok("export")
    assert project.patch_bytes() == first
    assert "up to date" in project.ok("apply").stdout
    # A fresh tree from the exported series exports the same bytes again.
    os.rename(project.tree, tmp_path / "old-tree")
    project.ok("apply")
    project.ok("export")
    assert project.patch_bytes() == first


def test_new_commit_is_exported_and_tree_stays_in_sync(project, tmp_path):
    make_series(project, tmp_path)
    project.ok("apply")
    dev_commit(project, {"mypkg/new.py": "x = 1\n"}, "Add new module")
    assert "1 commit(s) not exported" in project.ok("status").stdout
    project.ok("export")
    assert project.series()[-1] == "0004-Add-new-module.patch"
    assert b"mypkg/new.py" in (project.patches / "0004-Add-new-module.patch").read_bytes()
    assert "clean, matches series (4 patches)" in project.ok("status").stdout
    assert "up to date (4 patches)" in project.ok("apply").stdout


def test_edited_commit_keeps_its_test_hunks(project, tmp_path):
    make_series(project, tmp_path)
    project.ok("apply")
    first = project.series()[0]
    # Reword the body and change the code of the first commit; subject kept.
    project.tree_git("checkout", "-q", "HEAD~2")
    write(project.tree, {"mypkg/core.py": replace_line(CORE, "return a + b", "return (b + a)")})
    project.tree_git("commit", "-q", "-a", "--amend", "--no-edit")
    rewritten = project.tree_git("rev-parse", "HEAD")
    project.tree_git("checkout", "-q", "main")
    project.tree_git("rebase", "-q", "--onto", rewritten, "HEAD~2", "main")
    project.ok("export")
    data = (project.patches / first).read_bytes()
    assert b"+    return (b + a)" in data
    assert b"+def test_swap():" in data
    assert data.index(b"diff --git a/mypkg/") < data.index(b"diff --git a/test_mypkg/")


def test_export_refuses_to_drop_test_hunks_of_a_dropped_commit(project, tmp_path):
    make_series(project, tmp_path)
    project.ok("apply")
    # Drop the tests-only commit: its test hunks would be lost.
    project.tree_git("rebase", "-q", "--onto", "HEAD~2", "HEAD~1", "main")
    before = project.patch_bytes()
    result = project.stack("export")
    assert result.returncode != 0
    assert "0002-Tests-only-more-cases.patch" in result.stderr and "--allow-drop" in result.stderr
    assert project.patch_bytes() == before
    project.ok("export", "--allow-drop")
    assert project.series() == ["0001-Swap-the-operands.patch", "0002-jax-Add-VERSION.patch"]
    assert sorted(project.patch_bytes()) == ["0001-Swap-the-operands.patch",
                                             "0002-jax-Add-VERSION.patch", "series"]


# --------------------------------------------------------------------------- status, check

def test_status(project, tmp_path):
    assert "not materialized" in project.ok("status").stdout
    paths = make_series(project, tmp_path)
    project.use_patches(paths[:1])
    project.ok("apply")
    assert "clean, matches series (1 patches)" in project.ok("status").stdout
    project.use_patches(paths)
    assert "series changed since it was built" in project.ok("status").stdout
    (project.tree / "mypkg" / "core.py").write_text("edit\n")
    assert "uncommitted edits" in project.ok("status").stdout


def test_check_wheel_and_upstream(project, tmp_path):
    make_series(project, tmp_path)
    out = project.ok("check", "--upstream-git", str(project.upstream)).stdout
    assert "3 patches apply to the mypkg-1.0-py3-none-any.whl package: OK" in out
    assert "(tests included): OK" in out
    assert not project.tree.exists()  # check builds in a temporary folder only


def test_check_reports_failures_and_stray_files(project, tmp_path):
    paths = make_series(project, tmp_path)
    (project.patches / "9999-stray.patch").write_text("")
    result = project.stack("check")
    assert result.returncode != 0 and "9999-stray.patch is not in the series" in result.stdout
    (project.patches / "9999-stray.patch").unlink()
    project.use_patches(paths + [conflicting_patch(project, tmp_path)])
    result = project.stack("check")
    assert result.returncode != 0 and "FAILED on the wheel" in result.stdout
    assert "0001-Conflicts-with-the-wheel.patch does not apply: mypkg/core.py, hunk #1" in result.stdout


def test_crlf_files_patch_and_round_trip(project, tmp_path):
    crlf = PACKAGE_FILES["mypkg/windows.py"]
    commit(project.upstream, {"mypkg/windows.py": crlf.replace("y = 2", "y = 20")}, "Edit CRLF file")
    project.use_patches(format_patches(project.upstream, tmp_path / "made"))
    original = project.patch_bytes()
    project.ok("apply")
    assert (project.tree / "mypkg" / "windows.py").read_bytes() == b"x = 1\r\ny = 20\r\nz = 3\r\n"
    project.ok("export")
    assert project.patch_bytes() == original


def test_check_compares_the_wheel_with_the_tag(project):
    """Wheels drop executable bits: stack.json lists them, so that the wheel
    tree is the tag's package folder exactly."""
    repo = project.upstream
    (repo / "mypkg" / "core.py").chmod(0o755)
    project.tag_commit = commit(repo, {}, "Make core executable")
    project.configure()
    result = project.stack("check", "--upstream-git", str(repo))
    assert result.returncode != 0 and "the wheel's mypkg/ differs from the tag's" in result.stdout
    project.configure(executable=["mypkg/core.py"])
    project.ok("check", "--upstream-git", str(repo))


# --------------------------------------------------------------------------- venv

def test_apply_links_trees_into_the_venv(project, tmp_path):
    site_packages = project.root / ".venv" / "lib" / "python3.12" / "site-packages"
    write(site_packages, {**PACKAGE_FILES, "mypkg-1.0.dist-info/METADATA": "Name: mypkg\n"})
    make_series(project, tmp_path)
    project.ok("apply")
    assert not (site_packages / "mypkg").exists()
    assert (site_packages / "mypkg-1.0.dist-info").is_dir()
    assert (site_packages / "pyauto_stack.pth").read_text() == f"{project.tree}\n"
    code = f"import site; site.addsitedir({str(site_packages)!r}); import mypkg; print(mypkg.__file__)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=tmp_path).stdout.strip()
    assert found == str(project.tree / "mypkg" / "__init__.py")
