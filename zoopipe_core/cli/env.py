"""``zoopipe env``: what workers would get from a project, before anything runs.

``zoopipe env [PATH] [--json]`` prints the installer and why it was chosen, the requirements,
and what would ship (file count, bytes, the largest files); ``zoopipe env --explain FILE`` says
whether one file ships and which rule (file and line) decides. It is
:meth:`WorkerEnvironment.from_project <zoopipe_core.engines.WorkerEnvironment.from_project>`, the
spec an engine started in the project uses.

Example:
    >>> import pathlib, tempfile, json, contextlib, io
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "requirements.txt").write_text("attrs==24.2.0\\n")
    >>> _ = (root / "jobs.py").write_text("X = 1\\n")
    >>> out = io.StringIO()
    >>> with contextlib.redirect_stdout(out):
    ...     status = env_command(build_args([str(root), "--json", "--no-local-packages"]))
    >>> report = json.loads(out.getvalue())
    >>> status, report["installer"], report["requirements"], report["ship"]["files"]
    (0, 'pip', ['attrs==24.2.0'], 1)
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any

from zoopipe_core.engines import WorkerEnvironment
from zoopipe_core.installers import Shipment


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "env",
        help="show what workers get from a project: installer, requirements, code that ships",
        description=(
            "Show the environment an engine started in this project gives its workers: the "
            "installer and why, the requirements, and what would ship (files, bytes, the largest)."
        ),
    )
    _add_arguments(parser)
    parser.set_defaults(handler=env_command)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", default=".", help="the project directory, or one inside it (default: .)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--explain", metavar="FILE", help="say whether FILE ships and which rule decides")
    parser.add_argument(
        "--no-local-packages",
        action="store_true",
        help="leave out the editable and path-installed packages of this environment",
    )


def build_args(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed arguments of ``zoopipe env`` (for tests and examples)."""
    parser = argparse.ArgumentParser(prog="zoopipe env")
    _add_arguments(parser)
    return parser.parse_args(list(argv))


def env_command(args: argparse.Namespace) -> int:
    environment = WorkerEnvironment.from_project(args.path, local_packages=not args.no_local_packages)
    if args.explain:
        ships, reason = environment.explain(args.explain)
        if args.json:
            print(json.dumps({"file": os.path.abspath(args.explain), "ships": ships, "reason": reason}))
        else:
            print(reason)
        return 0
    report = environment_report(environment)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def environment_report(environment: WorkerEnvironment) -> dict[str, Any]:
    """The report ``zoopipe env --json`` prints for ``environment``."""
    return {
        "project": environment.project_dir,
        "installer": environment.installer or "manual",
        "reason": environment.installer_reason,
        "requirements": list(environment.requirements),
        "code_paths": list(environment.code_paths),
        "ignore_file": environment.ignore_file,
        "ship": Shipment.of(environment.code_files()).to_json(),
    }


def format_report(report: dict[str, Any]) -> str:
    ship = report["ship"]
    lines = [
        f"project:      {report['project']}",
        f"installer:    {report['installer']} ({report['reason']})",
        f"requirements: {len(report['requirements'])}",
        *(f"  {line}" for line in report["requirements"]),
        f"ignore file:  {report['ignore_file'] or 'none (built-in excludes only)'}",
        f"code paths:   {len(report['code_paths'])}",
        *(f"  {path}" for path in report["code_paths"]),
        f"ships:        {ship['files']} files, {_size(ship['bytes'])}",
    ]
    if ship["largest"]:
        lines.append("largest:")
        lines.extend(f"  {_size(entry['bytes']):>10}  {entry['path']}" for entry in ship["largest"])
    return "\n".join(lines)


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"  # pragma: no cover - the loop always returns
