"""
The README's reference tables stay true: its patch table names every library with the
number of patches its `series` lists, and every path its Layout table names exists.
"""
import json
import re

from stackfixtures import REPO

README = (REPO / "README.md").read_text()


def table_rows(heading_pattern: str):
    """The rows (lists of cells) of the first table after the first line matching `heading_pattern`."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if re.search(heading_pattern, line))
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # past the header and its rule


def test_the_patch_table_counts_every_series():
    libraries = [library["folder"] for library in json.loads((REPO / "stack.json").read_text())["libraries"]]
    rows = table_rows(r"^## What the series does")
    counts = {row[0]: int(row[1]) for row in rows}

    assert sorted(counts) == sorted(libraries)
    for folder in libraries:
        series = [line for line in (REPO / folder / "patches" / "series").read_text().splitlines() if line.strip()]
        assert counts[folder] == len(series), f"README says {counts[folder]} patches for {folder}, series has {len(series)}"


def test_every_path_the_layout_names_exists():
    rows = table_rows(r"^## Layout")
    assert rows
    generated = {"build/", ".venv/"}
    for row in rows:
        folders = [path for path in re.findall(r"`([^`]+)`", row[0]) if path not in generated]
        for path in folders:
            assert (REPO / path).exists(), f"the Layout section names {path}, which does not exist"
        # Files and folders named in the description, inside the row's folder.
        for path in re.findall(r"`([\w./-]+(?:\.py|/))`", row[1]):
            assert any((REPO / folder / path).exists() for folder in folders), (
                f"the Layout row of {folders} names {path}, which is not in it"
            )
