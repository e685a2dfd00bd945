#!/usr/bin/env python3
"""Writes the README's parameter table from the schema in hpe3d_ros/param_schema.py.

    .venv/bin/python tools/params_table.py          # rewrite the table in README.md
    .venv/bin/python tools/params_table.py --check  # exit 1 if README.md is out of date

The table lies between two marker comments in README.md; everything else is left as it is.
test/test_params_table.py fails when the README and the schema disagree, so a new or changed
parameter means running this script once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from hpe3d_ros.param_schema import PARAMS, ParamSpec, camera_params  # noqa: E402

README = ROOT / "README.md"
BEGIN = "<!-- params-table:begin (tools/params_table.py writes this table; do not edit) -->"
END = "<!-- params-table:end -->"
#: the per-camera parameters are shown for a camera named N
CAMERA = "N"
_TYPES = {bool: "bool", int: "int", float: "double", str: "string"}


def _type(spec: ParamSpec) -> str:
    if spec.kind is list:
        return _TYPES[spec.item_kind] + "[]"
    return _TYPES[spec.kind]


def _value(value: object) -> str:
    """A default as it is written in a parameters YAML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"' if value == "" else value
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return repr(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rows(specs: Iterable[ParamSpec]) -> list[str]:
    return [
        f"| `{s.name}` | {_type(s)} | `{_cell(_value(s.default))}` | "
        f"{_cell(s.constraints) or '—'} | {_cell(s.description)} |"
        for s in specs
    ]


def render() -> str:
    """The table (without the markers)."""
    head = ["| parameter | type | default | valid values | meaning |", "|---|---|---|---|---|"]
    return "\n".join(head + rows(PARAMS) + rows(camera_params(CAMERA)))


def update(text: str) -> str:
    """``text`` (the README) with the table between the markers replaced by :func:`render`."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"README needs one {BEGIN!r} line followed by one {END!r} line")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{render()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check; exit 1 if out of date")
    ap.add_argument("--readme", type=Path, default=README, help="default: %(default)s")
    args = ap.parse_args(argv)
    try:
        text = args.readme.read_text(encoding="utf-8")
        new = update(text)
    except (OSError, ValueError) as exc:
        print(f"params_table: {exc}", file=sys.stderr)
        return 2
    if new == text:
        return 0
    if args.check:
        print(
            f"params_table: {args.readme} is out of date: run tools/params_table.py",
            file=sys.stderr,
        )
        return 1
    args.readme.write_text(new, encoding="utf-8")
    print(f"params_table: wrote the parameter table of {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
