"""The ``zoopipe`` command.

Each subcommand lives in a module with ``add_parser(subparsers)``, listed in ``SUBCOMMANDS``.
``add_parser`` adds one parser and sets ``handler`` on it (``parser.set_defaults(handler=...)``),
a callable taking the parsed arguments and returning the exit status.

Example:
    >>> main(["plugins", "--json"]) == 0  # doctest: +ELLIPSIS
    [...]
    True
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from zoopipe_core.errors import ZoopipeError

if TYPE_CHECKING:
    from zoopipe_core.plugins import ComponentInfo, PluginInfo

# "module:function" of each subcommand's add_parser, imported when the command line is parsed;
# a new command is one more entry.
SUBCOMMANDS: tuple[str, ...] = (
    "zoopipe_core.cli.main:add_plugins_parser",
    "zoopipe_core.cli.run:add_parser",
    "zoopipe_core.cli.env:add_parser",
)


def build_parser() -> argparse.ArgumentParser:
    from zoopipe_core import __version__

    parser = argparse.ArgumentParser(
        prog="zoopipe",
        description="Data pipelines with a Rust core, from a laptop to a Ray or Dask cluster.",
    )
    parser.add_argument("--version", action="version", version=f"zoopipe-core {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for target in SUBCOMMANDS:
        module_name, _, function_name = target.partition(":")
        getattr(importlib.import_module(module_name), function_name)(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``zoopipe`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args))
    except ZoopipeError as exc:
        print(f"zoopipe: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C outside a run (a run says so itself): no traceback
        print("zoopipe: interrupted", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------- zoopipe plugins


def add_plugins_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list installed plugins and what they register",
        description=(
            "List the installed zoopipe plugins, what each registers, and whether the optional "
            "dependencies (extras) of its components are installed."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run_plugins)


def run_plugins(args: argparse.Namespace) -> int:
    from zoopipe_core import plugins

    infos = plugins.list_plugins()
    if args.json:
        print(json.dumps([info.to_dict() for info in infos], indent=2))
    else:
        print(format_plugins_table(infos))
    return 0


def _registers_cell(component: ComponentInfo) -> str:
    text = f"{component.kind} {component.name}"
    if component.kind == "adapter":
        sides = {"input": "in", "output": "out"}
        text += f" [{'/'.join(sides[role] for role in component.targets)}]"
    if component.suffixes:
        text += " " + " ".join(component.suffixes)
    if component.schemes:
        text += " " + " ".join(f"{s}://" if s else "paths" for s in component.schemes)
    return text


def _extra_cell(component: ComponentInfo) -> str:
    if component.extra is None:
        return "-"
    if component.extra_installed is None:
        return f"{component.extra}: unknown"
    if component.extra_installed:
        return f"{component.extra}: installed"
    return f"{component.extra}: missing ({component.install_command})"


def format_plugins_table(infos: Sequence[PluginInfo]) -> str:
    """A table with one row per registered component, grouped by plugin."""
    header = ("PLUGIN", "PACKAGE", "VERSION", "REGISTERS", "EXTRA")
    rows: list[tuple[str, ...]] = []
    for info in infos:
        package, version = info.distribution or "-", info.version or "-"
        cells = [_registers_cell(c) for c in info.components]
        extras = [_extra_cell(c) for c in info.components]
        if not cells:  # a plugin with only lifecycle hooks still gets a row
            cells, extras = [", ".join(info.hooks) or "nothing"], ["-"]
        for index, (registers, extra) in enumerate(zip(cells, extras, strict=True)):
            first = index == 0
            rows.append(
                (
                    info.name if first else "",
                    package if first else "",
                    version if first else "",
                    registers,
                    extra,
                )
            )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)
