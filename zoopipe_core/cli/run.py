"""``zoopipe run``: run a pipe named by ``module:attribute`` or described in a TOML/YAML file.

A pipeline file (paths are relative to the file's directory; ``module:name`` references are
imported with that directory on ``sys.path``)::

    [input]
    path = "users.csv"            # adapter chosen by suffix, or: adapter = "csv"
    delimiter = ","
    [output]
    path = "users.jsonl"
    [errors]
    path = "errors.jsonl"
    [schema]
    model = "models:User"
    [transforms]
    post_validation = ["transforms:normalise"]
    [executor]
    kind = "multi-thread"         # or "single-thread"
    batch_size = 1000
    max_workers = 2
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from zoopipe_core.errors import PipelineError

_ADAPTER_KEYS = ("path", "adapter")

#: The exit status of a run stopped by Ctrl-C: 128 + SIGINT, as shells report it.
INTERRUPTED = 130


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a pipe (module:attribute, or a .toml/.yaml pipeline file)",
        description="Run a pipe with live progress; exit status 1 if the run fails.",
    )
    parser.add_argument(
        "target",
        help="module:attribute naming a Pipe or PipeManager (or a function returning one), or a pipeline file",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress and no summary line; only errors")
    parser.add_argument("--json", action="store_true", help="print the final report as JSON on stdout")
    parser.set_defaults(handler=run_command)


def import_reference(reference: str, base_dir: str | None = None) -> Any:
    """Import ``package.module:attribute``."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise PipelineError(f"{reference!r} is not a module:attribute reference (e.g. 'mypipes:users')")
    for directory in filter(None, (base_dir, os.getcwd())):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PipelineError(f"cannot import module {module_name!r} for {reference!r}: {exc}") from exc
    try:
        value: Any = module
        for part in attribute.split("."):
            value = getattr(value, part)
    except AttributeError as exc:
        raise PipelineError(f"module {module_name!r} has no attribute {attribute!r}") from exc
    return value


def _read_pipeline_file(path: str) -> dict[str, Any]:
    with open(path, "rb") as f:
        if path.endswith(".toml"):
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            return tomllib.load(f)
        import yaml

        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: a pipeline file must be a mapping with input/output sections")
    return data


def _adapter(section: dict[str, Any] | None, direction: str, base_dir: str, where: str) -> Any:
    from zoopipe_core.adapters.resolve import resolve_input_adapter, resolve_output_adapter

    if not isinstance(section, dict) or not any(k in section for k in _ADAPTER_KEYS):
        raise PipelineError(f"{where}: needs a 'path' (and optionally 'adapter')")
    options = dict(section)
    path = options.pop("path", None)
    adapter = options.pop("adapter", None)
    resolve = resolve_input_adapter if direction == "input" else resolve_output_adapter
    if path is not None and "://" not in str(path):
        path = os.path.join(base_dir, str(path))
    try:
        if adapter is None:
            return resolve(path, **options)
        if path is not None:
            options = {"path": path, **options}
        return resolve(adapter, **options)
    except TypeError as exc:
        raise PipelineError(f"{where}: bad adapter options {sorted(options)}: {exc}") from exc


def pipe_from_file(path: str) -> Any:
    """Build a Pipe from a TOML or YAML pipeline file."""
    from zoopipe_core.pipe.executors import MultiThreadExecutor, SingleThreadExecutor
    from zoopipe_core.pipe.pipe import Pipe

    if not os.path.exists(path):
        raise PipelineError(f"pipeline file not found: {path}")
    config = _read_pipeline_file(path)
    base_dir = os.path.dirname(os.path.abspath(path))
    unknown = set(config) - {"input", "output", "errors", "schema", "transforms", "executor"}
    if unknown:
        raise PipelineError(
            f"{path}: unknown sections {sorted(unknown)}; expected input, output, errors, schema, transforms, executor"
        )
    schema = (config.get("schema") or {}).get("model")
    transforms = config.get("transforms") or {}
    executor_cfg = dict(config.get("executor") or {})
    kind = executor_cfg.pop("kind", "single-thread")
    executors = {"single-thread": SingleThreadExecutor, "multi-thread": MultiThreadExecutor}
    if kind not in executors:
        raise PipelineError(f"{path}: executor kind {kind!r} is not one of {sorted(executors)}")
    executor = _executor(executors[kind], kind, executor_cfg, f"{path} [executor]")
    return Pipe(
        input_adapter=_adapter(config.get("input"), "input", base_dir, f"{path} [input]"),
        output_adapter=_adapter(config.get("output"), "output", base_dir, f"{path} [output]"),
        error_output_adapter=(
            _adapter(config["errors"], "output", base_dir, f"{path} [errors]")
            if config.get("errors")
            else None
        ),
        schema_model=import_reference(schema, base_dir) if schema else None,
        pre_validation=[import_reference(r, base_dir) for r in transforms.get("pre_validation", [])],
        post_validation=[import_reference(r, base_dir) for r in transforms.get("post_validation", [])],
        executor=executor,
    )


def _executor(cls: Any, kind: str, options: dict[str, Any], where: str) -> Any:
    """The executor a pipeline file's [executor] section describes; a typo in its keys is one line."""
    import inspect

    accepted = [name for name in inspect.signature(cls).parameters if name != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise PipelineError(
            f"{where}: unknown option(s) {unknown} for kind {kind!r}; it takes kind, {', '.join(accepted)}"
        )
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise PipelineError(f"{where}: {exc}") from exc


def resolve_target(target: str) -> Any:
    """The Pipe or PipeManager ``target`` names (a pipeline file, or module:attribute)."""
    from zoopipe_core.parallel.manager import PipeManager
    from zoopipe_core.pipe.pipe import Pipe

    if target.endswith((".toml", ".yaml", ".yml")):
        return pipe_from_file(target)
    value = import_reference(target)
    if callable(value) and not isinstance(value, (Pipe, PipeManager)):
        value = value()
    if not isinstance(value, (Pipe, PipeManager)):
        raise PipelineError(f"{target} is a {type(value).__name__}, not a zoopipe_core.Pipe or PipeManager")
    return value


def _failure(target: Any) -> str | None:
    """Why the run of a Pipe or a PipeManager failed, or None."""
    from zoopipe_core.pipe.pipe import Pipe

    report = target.report
    if isinstance(target, Pipe):
        return None if report.exception is None else str(report.exception)
    return str(target.failure_error(report)) if report.has_error else None


def run_command(args: argparse.Namespace) -> int:
    """Run a Pipe or a PipeManager with the same progress, report and exit status."""
    import json

    from zoopipe_core.pipe.progress import ProgressDisplay

    target = resolve_target(args.target)
    try:
        if args.quiet:
            target.start()
            target.wait()
        else:
            with ProgressDisplay(lambda: target.report):
                target.start()
                target.wait()
    except KeyboardInterrupt:
        # wait() has stopped the run and removed its temporary files.
        print("zoopipe: interrupted; the run was stopped and nothing was published", file=sys.stderr)
        return INTERRUPTED
    report = target.report
    if args.json:
        print(json.dumps(report.to_dict()))
    failure = _failure(target)
    if failure is not None:
        print(f"zoopipe: error: {failure}", file=sys.stderr)
        return 1
    if report.status.value != "completed":
        print(f"zoopipe: the run ended {report.status.value}", file=sys.stderr)
        return 1
    return 0
