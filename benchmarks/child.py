"""Run one contender once, in this fresh process, and write what was measured to a JSON file.

Started by run.py; a fresh process per run makes the peak RSS (``ru_maxrss`` at the end) belong
to that contender alone. Timing covers only the body ``build`` returns, not imports or set-up;
``cpu_seconds`` is the CPU time of all the process's threads over that body, which a busy
machine disturbs less than the wall time.

Result: {"status": "ok", "valid", "errors", "seconds", "cpu_seconds", "peak_rss_mib"} or
{"status": "not installed", "reason"}; any failure of the contender itself is an exception,
a traceback on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import json
import resource
import time
from pathlib import Path
from types import ModuleType

from contenders.common import Job
from scenarios import SCENARIOS, Contender

# An ImportError raised from one of these is a bug in the benchmark, never a missing package.
BENCHMARK_MODULES = frozenset({"contenders", "scenarios", "workload", "datagen"})


def import_contender(contender: Contender) -> tuple[ModuleType | None, str | None]:
    """The contender's module, or None and why it cannot run here."""
    for distribution, wanted in contender.pins.items():
        try:
            installed = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            return None, f"{distribution}=={wanted} is not installed"
        if installed != wanted:
            return (
                None,
                f"{distribution} {installed} is installed; this contender stands for {distribution}=={wanted}",
            )
    try:
        return importlib.import_module(contender.module), None
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in BENCHMARK_MODULES:
            raise
        return None, f"{type(exc).__name__}: {exc}"


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--contender", required=True)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--valid-out", type=Path, required=True)
    parser.add_argument("--errors-out", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--check-only", action="store_true", help="only report whether the contender can run")
    args = parser.parse_args()

    contender = SCENARIOS[args.scenario].contender(args.contender)
    module, reason = import_contender(contender)
    if module is None:
        args.result.write_text(json.dumps({"status": "not installed", "reason": reason}))
        return
    if args.check_only:
        args.result.write_text(json.dumps({"status": "ok"}))
        return

    job = Job(input_path=args.input, valid_path=args.valid_out, errors_path=args.errors_out)
    body = module.build(job, **contender.options)
    # Set-up garbage (imports, the floor's pre-parsed rows) is collected once and then frozen,
    # so the collector does not rescan it during the timed work of any contender.
    gc.collect()
    gc.freeze()
    started, cpu_started = time.perf_counter(), time.process_time()
    valid, errors = body()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    result = {
        "status": "ok",
        "valid": valid,
        "errors": errors,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mib": peak_rss_mib(),
    }
    args.result.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
