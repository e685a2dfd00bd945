"""What a fleet run replays: bags, folders of bags, or a manifest, as one list of entries.

Every input becomes :class:`BagEntry` objects in a fixed order (the order given; a folder's
bags sorted by path), each with a folder name under ``OUT/bags/`` that is unique in the run
and the same in every run of the same inputs (so a restarted run finds its finished bags).

A **bag** is a rosbag2 folder (``metadata.yaml`` beside ``.mcap``/``.db3`` files) or a single
``.mcap``/``.db3`` file. A **folder** that is not a bag is searched recursively for bags. A
**manifest** (``.yaml``/``.yml``/``.csv``) lists one bag per entry with its labels::

    # campaign.yaml                        # campaign.csv
    - bag: vehicle_a/2026-11-02_run1       # bag,vehicle,campaign,sequence
      vehicle: a                           # vehicle_a/2026-11-02_run1,a,nov,crossing
      campaign: nov
      sequence: crossing

Columns: ``bag`` (required; relative paths are relative to the manifest's folder), ``name``
(the output folder name; default: the bag's name), ``gt_npz`` (a side-car ground-truth file,
as ``hpe3d-replay --gt-npz``), and any other label (``vehicle``, ``campaign``, ``sequence``,
``weather``...) that the fleet tables group by.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

MANIFEST_SUFFIXES = (".yaml", ".yml", ".csv")
BAG_SUFFIXES = (".mcap", ".db3")
#: manifest columns that are not labels
RESERVED = ("bag", "name", "gt_npz")
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


class InputError(ValueError):
    """An input list or manifest that cannot be used (the message says why, in one line)."""


@dataclass(frozen=True)
class BagEntry:
    """One bag of the fleet.

    ``bag`` is the path exactly as it will be handed to the replay (and written into its
    ``summary.json``): as given on the command line, or joined to the manifest's folder.
    """

    name: str
    bag: str
    labels: dict[str, str] = field(default_factory=dict)
    gt_npz: str | None = None


def is_bag(path: Path) -> bool:
    """A rosbag2 folder (with ``metadata.yaml``) or a single ``.mcap``/``.db3`` file."""
    if path.is_dir():
        return (path / "metadata.yaml").is_file()
    return path.suffix in BAG_SUFFIXES


def find_bags(folder: Path) -> list[Path]:
    """Bags under ``folder`` (not descending into a bag), sorted by path."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        if is_bag(here):
            found.append(here)
            dirs[:] = []
            continue
        dirs.sort()
        found.extend(here / f for f in sorted(files) if Path(f).suffix in BAG_SUFFIXES)
    return sorted(found, key=str)


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of a YAML (a list, or ``{bags: [...]}``; an item may be a bare path) or CSV file.

    Raises:
        InputError: unreadable file, no ``bag`` column/key, or an empty bag entry.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read manifest {path}: {exc}") from exc
    if path.suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if rows and "bag" not in rows[0]:
            raise InputError(f"manifest {path} has no 'bag' column (columns: {list(rows[0])})")
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"manifest {path} is not valid YAML: {exc}".splitlines()[0]) from exc
        if isinstance(data, dict) and "bags" in data:
            data = data["bags"]
        if not isinstance(data, list):
            raise InputError(f"manifest {path}: expected a list of bags (or 'bags: [...]')")
        rows = [{"bag": r} if isinstance(r, str) else r for r in data]
    out = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not str(row.get("bag") or "").strip():
            raise InputError(f"manifest {path}: entry {i} names no bag")
        out.append({str(k): "" if v is None else str(v).strip() for k, v in row.items() if k})
    return out


def _near(base: Path, value: str) -> str:
    """``value`` as a path: unchanged if absolute, else joined to the manifest's folder."""
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(base, value))


def collect(inputs: list[str]) -> list[BagEntry]:
    """Entries for command-line inputs: bags, folders of bags, manifests, in the order given.

    A path that does not exist stays an entry (the fleet records it as a failure), so a
    typo in a manifest of a thousand bags costs one line in the tables, not the run.

    Raises:
        InputError: a manifest cannot be read, or nothing at all was given.
    """
    rows: list[tuple[str, dict[str, str]]] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_file() and path.suffix in MANIFEST_SUFFIXES:
            base = path.parent
            for row in read_manifest(path):
                entry = dict(row)
                entry["bag"] = _near(base, row["bag"])
                if row.get("gt_npz"):
                    entry["gt_npz"] = _near(base, row["gt_npz"])
                rows.append((entry["bag"], entry))
        elif path.is_dir() and not is_bag(path):
            rows.extend((str(b), {}) for b in find_bags(path))
        else:
            rows.append((raw, {}))
    if not rows:
        raise InputError("no bags given (bag folders, .mcap/.db3 files, folders or a manifest)")
    names = unique_names([(r.get("name") or _base(bag), bag) for bag, r in rows])
    return [
        BagEntry(
            name=name,
            bag=bag,
            labels={k: v for k, v in r.items() if k not in RESERVED},
            gt_npz=r.get("gt_npz") or None,
        )
        for name, (bag, r) in zip(names, rows, strict=True)
    ]


def _base(bag: str) -> str:
    path = Path(bag)
    base = path.stem if path.suffix in BAG_SUFFIXES else path.name
    return base or Path(os.path.abspath(bag)).name or "bag"


def unique_names(pairs: list[tuple[str, str]]) -> list[str]:
    """One folder-safe name per (wanted name, bag path), unique in the run.

    A name wanted by one bag only is kept; bags sharing a name get ``<name>-<6 hex>`` from
    their absolute path, so a bag keeps its name whatever else the run holds.
    """
    wanted = [_NAME_OK.sub("_", n).strip("._") or "bag" for n, _ in pairs]
    count: dict[str, int] = {}
    for n in wanted:
        count[n] = count.get(n, 0) + 1
    names = []
    for n, (_, bag) in zip(wanted, pairs, strict=True):
        if count[n] > 1:
            n = f"{n}-{hashlib.sha256(os.path.abspath(bag).encode()).hexdigest()[:6]}"
        names.append(n)
    seen: set[str] = set()
    for i, n in enumerate(names):  # the same bag listed twice: still two folders
        base, k = n, 2
        while names[i] in seen:
            names[i], k = f"{base}_{k}", k + 1
        seen.add(names[i])
    return names
