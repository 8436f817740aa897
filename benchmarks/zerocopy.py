"""Zero-copy model sharing (issue 20): ModelWrapper against naive Ray, ray-zerocopy 0.2.0 and mmap.

    python benchmarks/zerocopy.py                         # ~400 MB model, 3 repeats: the table
    python benchmarks/zerocopy.py --out results/<date>-zerocopy.json
    python benchmarks/zerocopy.py --quick                 # ~50 MB model, 1 repeat: a smoke run
    python benchmarks/zerocopy.py --only actors,fp32,ours,mmap

Four workers hold one model (~100 M float32 parameters: residual nn.Linear blocks, a LayerNorm,
an output projection tied to an nn.Embedding) as ``fp32``, ``torchscript`` (``torch.jit.script``)
or ``bf16`` (200 MB). The workers are 4 Ray ``actors``, 4 concurrent Ray ``tasks`` or zoopipe's
``multiprocess`` engine, one torch thread each on the 2 cores. The contenders: ``ours``
(``ModelWrapper.from_model(model, mode="actor", engine=None)`` with Ray initialised,
``engine=engine`` on multiprocess; ``w.load()`` in each worker), ``naive-ray`` (``ray.put`` /
``ray.get``; TorchScript: of its ``torch.jit.save`` bytes), ``ray-zerocopy`` (its
``ModelWrapper`` / ``JITModelWrapper`` in actor mode; on tasks that wrapper is loaded inside the
plain tasks, as its task mode runs one task per model call and no worker holds the model) and
``mmap`` (``torch.save`` to /dev/shm once; each worker builds the module on the meta device and
``load_state_dict(torch.load(path, mmap=True), assign=True)``; ``torch.jit.load`` cannot mmap).

Each cell (worker kind x model kind x contender) gets 4 fresh workers: they import torch and warm
its kernels with a one-block model, then read ``Pss:`` of /proc/self/smaps_rollup (the baseline).
The clock starts, the driver wraps / puts / saves the model, the workers load it and run a first
batch, and once all 4 hold it each reads its PSS again. PSS growth = (sum after - sum baseline)
/ the model's bytes (target for ours: <= 1.0x); ``private`` is the same for Private_Clean +
Private_Dirty (a copy per worker is ~4x). ``first s``: until every worker ran its first batch.
``batches/s``: the 4 then run ``--batches`` each at once. Outputs are checked against the
driver's. Medians of ``--repeats``; each worker kind runs in a fresh process with its own local
Ray. benchmarks/README.md has the details. A JSON file is written only with ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import io
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

WORKERS = 4
WORKER_KINDS = ("actors", "tasks", "multiprocess")
MODEL_KINDS = ("fp32", "torchscript", "bf16")
CONTENDERS = ("ours", "naive-ray", "ray-zerocopy", "mmap")
FULL = {"d": 1024, "hidden": 4096, "blocks": 8, "vocab": 32000, "rows": 8}
QUICK = {"d": 512, "hidden": 2048, "blocks": 4, "vocab": 8000, "rows": 8}
TIMEOUT = 300.0
DISTRIBUTIONS = ["zoopipe-core", "torch", "ray", "ray-zerocopy"]
NOT_APPLICABLE = {
    ("multiprocess", "naive-ray"): "it is ray.put/ray.get: no Ray object store on the multiprocess engine",
    ("multiprocess", "ray-zerocopy"): "needs Ray's object store: cannot run on the multiprocess engine",
}
NOTES = {
    ("tasks", "ray-zerocopy"): "its actor-mode wrapper loaded in plain tasks",
    ("torchscript", "ray-zerocopy"): "JITModelWrapper",
    ("torchscript", "naive-ray"): "jit.save bytes, jit.load",
    ("torchscript", "mmap"): "torch.jit.load has no mmap: copies",
}


# --------------------------------------------------------------------------- the model


class Block(nn.Module):
    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.up = nn.Linear(d, hidden)
        self.down = nn.Linear(hidden, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(F.gelu(self.up(x)))


class Net(nn.Module):
    """Residual MLP blocks, a LayerNorm and an output projection tied to the embedding."""

    def __init__(self, d: int, hidden: int, blocks: int, vocab: int) -> None:
        super().__init__()
        # Left uninitialised (build_model fills it): on the meta device nn.Embedding's normal_
        # runs a Python meta kernel that imports torch._dynamo (~2 s and ~160 MB a worker).
        self.embed = nn.Embedding(vocab, d, _weight=torch.empty(vocab, d))
        self.blocks = nn.ModuleList([Block(d, hidden) for _ in range(blocks)])
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return F.linear(self.norm(x), self.embed.weight)


def arch(cfg: dict) -> dict:  # Net's arguments
    return {k: cfg[k] for k in ("d", "hidden", "blocks", "vocab")}


def build_model(kind: str, cfg: dict):
    torch.manual_seed(0)
    model = Net(**arch(cfg)).eval()
    with torch.no_grad():
        model.embed.weight.normal_()
    if kind == "bf16":
        return model.to(torch.bfloat16)
    return torch.jit.script(model) if kind == "torchscript" else model


def make_batch(kind: str, cfg: dict) -> torch.Tensor:
    x = torch.randn(cfg["rows"], cfg["d"], generator=torch.Generator().manual_seed(1))
    return x.to(torch.bfloat16) if kind == "bf16" else x


def checksum(model, x) -> float:
    with torch.no_grad():
        return float(model(x).float().abs().sum())


# --------------------------------------------------------------------------- in the workers


def memory() -> dict:
    """PSS and private bytes of this process."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Pss", "Private_Clean", "Private_Dirty"):
            fields[name] = int(rest.split()[0]) * 1024
    return {"pss": fields["Pss"], "private": fields["Private_Clean"] + fields["Private_Dirty"]}


def barrier(folder: str, name: str) -> None:
    """Wait until WORKERS distinct processes reached ``name`` (a file per pid in ``folder``)."""
    Path(folder, f"{name}-{os.getpid()}").touch()
    deadline = time.monotonic() + TIMEOUT
    while len(list(Path(folder).glob(f"{name}-*"))) < WORKERS:
        if time.monotonic() > deadline:
            raise TimeoutError(f"barrier {name!r}: fewer than {WORKERS} distinct workers arrived")
        time.sleep(0.01)


def empty_worker(folder: str, kind: str, cfg: dict) -> None:
    """One torch thread; kernels warmed by a one-block model with a small vocabulary."""
    torch.set_num_threads(1)
    Path(folder, f"worker-{os.getpid()}").touch()  # the driver waits for it to exit after the cell
    small = Net(cfg["d"], cfg["hidden"], 1, 256)
    checksum(small.to(torch.bfloat16) if kind == "bf16" else small, make_batch(kind, cfg))
    del small  # its scratch buffers stay in the allocator, as in any worker that ran a model
    gc.collect()


def load_model(contender: str, kind: str, payload, cfg: dict):
    if contender in ("ours", "ray-zerocopy"):
        return payload.load()
    if contender == "naive-ray":
        import ray

        obj = ray.get(payload[0])
        return torch.jit.load(io.BytesIO(obj)) if kind == "torchscript" else obj
    if kind == "torchscript":
        return torch.jit.load(payload)
    with torch.device("meta"):
        model = Net(**arch(cfg))
    if kind == "bf16":
        model = model.to(torch.bfloat16)
    model.load_state_dict(torch.load(payload, mmap=True, weights_only=True), assign=True)
    return model.eval()


def hold_and_run(contender: str, kind: str, payload, cfg: dict, batches: int, folder: str) -> dict:
    """Load, run the first batch, read the memory once all 4 hold the model, run ``batches``."""
    torch.set_num_threads(1)
    model = load_model(contender, kind, payload, cfg)
    x = make_batch(kind, cfg)
    check = checksum(model, x)
    first = time.time()
    barrier(folder, "loaded")
    after = memory()
    barrier(folder, "measured")
    start = time.time()
    with torch.no_grad():
        for _ in range(batches):
            model(x)
    end = time.time()
    barrier(folder, "done")  # nobody drops the model while another still measures or runs
    return {"pid": os.getpid(), "first": first, "after": after, "start": start, "end": end, "check": check}


def baseline_task(folder: str, kind: str, cfg: dict) -> dict:
    """Multiprocess, first round: 4 distinct empty workers read their memory."""
    empty_worker(folder, kind, cfg)
    barrier(folder, "started")
    return {"pid": os.getpid(), "baseline": memory()}


def ray_task(board, contender: str, kind: str, cfg: dict, batches: int, folder: str) -> dict:
    """One long Ray task per worker: baseline, wait for the payload, then hold_and_run."""
    import ray

    empty_worker(folder, kind, cfg)
    barrier(folder, "started")
    baseline = memory()
    Path(folder, f"baseline-{os.getpid()}").touch()
    while (box := ray.get(board.get.remote())) is None:
        time.sleep(0.02)
    payload = ray.get(box[0])
    return {"baseline": baseline, **hold_and_run(contender, kind, payload, cfg, batches, folder)}


class ActorWorker:
    def __init__(self, folder: str, kind: str, cfg: dict) -> None:
        empty_worker(folder, kind, cfg)

    def memory(self) -> dict:
        return memory()

    def run(self, contender: str, kind: str, payload, cfg: dict, batches: int, folder: str) -> dict:
        return hold_and_run(contender, kind, payload, cfg, batches, folder)


class Board:
    """Hands the payload to running Ray tasks as [ObjectRef]: never unpickled in this process."""

    def __init__(self) -> None:
        self.box = None

    def set(self, box) -> None:
        self.box = box

    def get(self):
        return self.box


# --------------------------------------------------------------------------- one worker kind (child)


def wrap(contender: str, kind: str, model, engine):
    """What the driver does to share the model: (payload for the workers, release or None)."""
    if contender == "ours":
        from zoopipe_zerocopy import ModelWrapper

        if engine is None:
            wrapper = ModelWrapper.from_model(model, mode="actor", engine=None)
        else:
            wrapper = ModelWrapper.from_model(model, engine=engine)
        return wrapper, wrapper.release
    if contender == "naive-ray":
        import ray

        if kind == "torchscript":
            buffer = io.BytesIO()
            torch.jit.save(model, buffer)
            return [ray.put(buffer.getvalue())], None
        return [ray.put(model)], None
    if contender == "ray-zerocopy":
        from ray_zerocopy import JITModelWrapper, ModelWrapper

        wrapper_class = JITModelWrapper if kind == "torchscript" else ModelWrapper
        return wrapper_class.from_model(model, mode="actor"), None
    path = f"/dev/shm/zoopipe-zerocopy-bench-{os.getpid()}.pt"
    if kind == "torchscript":
        torch.jit.save(model, path)
    else:
        torch.save(model.state_dict(), path)
    return path, lambda: os.unlink(path)


def wait_gone(pids, grace: float = 1.0, timeout: float = 30.0) -> None:
    """Until the cell's workers have exited: they map torch and would skew the next cell's PSS.
    A Ray task worker that borrowed an object ref lingers as ray::IDLE for a minute or more
    despite max_calls=1: after ``grace`` seconds it is killed (by pid; this run started it)."""
    started = time.monotonic()
    for pid in pids:
        while time.monotonic() - started < timeout:
            try:
                if "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text():
                    break
            except OSError:
                break
            if time.monotonic() - started > grace:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)


def run_cell(worker_kind: str, kind: str, contender: str, cfg: dict, batches: int, models: dict) -> dict:
    """One cell on 4 fresh workers: its measurements, or raises."""
    folder, began = tempfile.mkdtemp(prefix="zerocopy-bench-"), time.time()
    release, engine, payload, actors, refs, board = None, None, None, [], [], None
    try:
        if worker_kind == "actors":
            import ray

            actor_class = ray.remote(num_cpus=0.5)(ActorWorker)
            actors = [actor_class.remote(folder, kind, cfg) for _ in range(WORKERS)]
            baselines = ray.get([a.memory.remote() for a in actors])
            model, reference = models[kind]
            started = time.time()
            payload, release = wrap(contender, kind, model, None)
            runs = ray.get([a.run.remote(contender, kind, payload, cfg, batches, folder) for a in actors])
        elif worker_kind == "tasks":
            import ray

            board = ray.remote(num_cpus=0)(Board).remote()
            # max_calls=1: each task's worker exits after it, so the next cell gets fresh ones.
            task = ray.remote(num_cpus=0.5, max_calls=1, max_retries=0)(ray_task)
            refs = [task.remote(board, contender, kind, cfg, batches, folder) for _ in range(WORKERS)]
            deadline = time.monotonic() + TIMEOUT
            while len(list(Path(folder).glob("baseline-*"))) < WORKERS:
                if time.monotonic() > deadline:
                    raise TimeoutError("the 4 Ray tasks did not all start")
                time.sleep(0.02)
            model, reference = models[kind]
            started = time.time()
            payload, release = wrap(contender, kind, model, None)
            board.set.remote([ray.put(payload)])
            runs = ray.get(refs)
            refs = []  # finished: never cancelled (cancelling a finished task crashed Ray's core)
            baselines = [run["baseline"] for run in runs]
        else:
            from zoopipe_core.engines import MultiProcessEngine

            # Forked workers share the driver's heap copy-on-write. Heap that earlier cells freed
            # but the allocator kept would be shared too, and the driver's writes into it (the
            # model below) would move PSS onto the workers: returned to the system first.
            gc.collect()
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            engine = MultiProcessEngine(max_workers=WORKERS)
            futures = [engine.submit(baseline_task, folder, kind, cfg) for _ in range(WORKERS)]
            first = [future.result(TIMEOUT) for future in futures]
            baselines = [run["baseline"] for run in first]
            model = build_model(kind, cfg)  # after the fork: the workers do not inherit it
            reference = checksum(model, make_batch(kind, cfg))
            started = time.time()
            payload, release = wrap(contender, kind, model, engine)
            args = (contender, kind, payload, cfg, batches, folder)
            futures = [engine.submit(hold_and_run, *args) for _ in range(WORKERS)]
            runs = [future.result(TIMEOUT * 2) for future in futures]
            if {r["pid"] for r in runs} != {r["pid"] for r in first}:
                raise RuntimeError("the engine loaded the model in other processes than the baseline's")
        size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        wrong = [r["check"] for r in runs if abs(r["check"] - reference) > 1e-3 * abs(reference)]
        if wrong:
            raise RuntimeError(f"wrong output: checksums {wrong} != the driver's {reference}")
        pairs = list(zip(runs, baselines, strict=True))
        span = max(r["end"] for r in runs) - min(r["start"] for r in runs)
        result = {
            "status": "ok",
            "setup_s": started - began,  # starting the 4 empty workers (a diagnostic)
            "model_bytes": size,
            "growth_x": sum(r["after"]["pss"] - b["pss"] for r, b in pairs) / size,
            "private_x": sum(r["after"]["private"] - b["private"] for r, b in pairs) / size,
            "first_s": max(r["first"] for r in runs) - started,
            "batches_per_s": WORKERS * batches / span,
            "workers": [{"pid": r["pid"], "baseline": b, "after": r["after"]} for r, b in pairs],
        }
        if release is not None:
            release, release_now = None, release
            try:
                release_now()
            except Exception as exc:  # the measurement stands; the failure is noted
                result["release_error"] = short_error(exc)
        return result
    finally:
        if actors or refs or board:
            import ray

            for ref in refs:
                ray.cancel(ref, force=True)
            for actor in [*actors, *([board] if board else [])]:
                ray.kill(actor)
        del payload
        if release is not None:  # after a failure: the cell's own error is the one reported
            with contextlib.suppress(Exception):
                release()
        if engine is not None:
            engine.shutdown()
        gc.collect()
        wait_gone(int(path.name.split("-")[1]) for path in Path(folder).glob("worker-*"))
        shutil.rmtree(folder, ignore_errors=True)


def short_error(exc: BaseException) -> str:
    lines = [line.strip() for line in f"{type(exc).__name__}: {exc}".splitlines() if line.strip()]
    # A RayTaskError carries the worker's traceback: its last line is the original error.
    return (lines[0] if len(lines) == 1 else f"{lines[0][:80]} ... {lines[-1]}")[:300]


def describe(row: dict) -> str:
    if row["status"] != "ok":
        return f"{row['status'].upper()}: {row['reason']}"
    return (f"PSS growth {row['growth_x']:.2f}x  private {row['private_x']:.2f}x  first {row['first_s']:.2f} s  "
            f"{row['batches_per_s']:.2f} batches/s  (workers started in {row['setup_s']:.0f} s)")  # fmt: skip


def child_main(worker_kind: str, kinds: list, contenders: list, cfg: dict, args) -> None:
    """Every cell of one worker kind, ``repeats`` times; contenders rotate one place a repeat."""
    failed: dict = {}
    models = {}
    if worker_kind != "multiprocess":  # on multiprocess each cell builds it after the fork
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # our own local cluster: no token warning
        os.environ.pop("RAY_ADDRESS", None)
        import ray

        # address="local": a new cluster, never one another program started on this machine.
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        for kind in kinds:
            model = build_model(kind, cfg)
            models[kind] = (model, checksum(model, make_batch(kind, cfg)))
    elif "ours" in contenders:  # imported before the engine forks, as a user's script would
        with contextlib.suppress(ImportError):
            import zoopipe_zerocopy.wrapper  # noqa: F401
    for repeat in range(args.repeats):
        order = contenders[repeat % len(contenders) :] + contenders[: repeat % len(contenders)]
        for kind in kinds:
            for contender in order:
                row = {"worker_kind": worker_kind, "model": kind, "contender": contender, "repeat": repeat}
                if (worker_kind, contender) in NOT_APPLICABLE:
                    row.update(status="n/a", reason=NOT_APPLICABLE[(worker_kind, contender)])
                elif (kind, contender) in failed:  # a failure is not repeated (nor its timeouts)
                    row.update(failed[(kind, contender)], repeated=False)
                else:
                    try:
                        row.update(run_cell(worker_kind, kind, contender, cfg, args.batches, models))
                    except ImportError as exc:
                        row.update(status="not installed", reason=short_error(exc))
                    except Exception as exc:
                        row.update(status="error", reason=short_error(exc))
                    if row["status"] != "ok":
                        failed[(kind, contender)] = {"status": row["status"], "reason": row["reason"]}
                    head = f"{repeat + 1}/{args.repeats} {worker_kind:12} {kind:11} {contender:12}"
                    print(f"ROW {head} {describe(row)}", flush=True)
                with open(args.result, "a") as out:  # row by row: a crash keeps what was measured
                    out.write(json.dumps(row) + "\n")


# --------------------------------------------------------------------------- the command


def run_child(worker_kind: str, kinds: list, contenders: list, args) -> list:
    """One worker kind, every repeat, in a fresh process; its rows."""
    from machine import wait_until_idle

    wait_until_idle()
    with tempfile.TemporaryDirectory(prefix="zerocopy-bench-") as folder:
        out, log = Path(folder, "rows.jsonl"), Path(folder, "stderr.txt")
        command = [
            sys.executable, __file__, "--child", worker_kind, "--repeats", str(args.repeats),
            "--result", str(out), "--only", ",".join([*kinds, *contenders]), "--batches", str(args.batches),
        ] + (["--quick"] if args.quick else [])  # fmt: skip
        with open(log, "w") as stderr:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True
            )
            timer = threading.Timer(3600, lambda: os.killpg(process.pid, signal.SIGKILL))
            timer.start()
            # Ray prints its own notices (a killed idle worker's) on stdout: only ROW lines shown.
            for line in process.stdout:
                if line.startswith("ROW "):
                    print(" ", line[4:], end="", flush=True)
            process.wait()
            timer.cancel()
        rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
        if process.returncode != 0:
            print(f"{worker_kind}: exited {process.returncode}\n{log.read_text()[-3000:]}", file=sys.stderr)
    done = {(r["repeat"], r["model"], r["contender"]) for r in rows}
    return rows + [
        {"worker_kind": worker_kind, "model": k, "contender": c, "repeat": r, "status": "error",
         "reason": f"the {worker_kind} process exited {process.returncode}"}
        for r in range(args.repeats) for k in kinds for c in contenders if (r, k, c) not in done
    ]  # fmt: skip


def summarise(rows: list) -> list:
    """Medians per cell, in the order of WORKER_KINDS x MODEL_KINDS x CONTENDERS."""
    cells: dict = {}
    for row in rows:
        cells.setdefault((row["worker_kind"], row["model"], row["contender"]), []).append(row)
    summary = []
    for worker_kind, kind, contender in itertools.product(WORKER_KINDS, MODEL_KINDS, CONTENDERS):
        runs = cells.get((worker_kind, kind, contender))
        if not runs:
            continue
        cell = {"worker_kind": worker_kind, "model": kind, "contender": contender}
        ok = [r for r in runs if r["status"] == "ok"]
        if not ok:
            summary.append({**cell, "status": runs[0]["status"], "reason": runs[0]["reason"]})
            continue
        for field in ("growth_x", "private_x", "first_s", "batches_per_s", "model_bytes"):
            cell[field] = statistics.median(r[field] for r in ok)
        notes = [NOTES.get((worker_kind, contender)), NOTES.get((kind, contender))]
        failures = [r["reason"] for r in runs if r["status"] != "ok"]
        if failures:
            notes.append(f"{len(failures)} of {len(runs)} runs failed: {failures[0]}")
        notes += sorted({f"release() raised {r['release_error']}" for r in ok if "release_error" in r})
        summary.append({**cell, "status": "ok", "runs": len(ok), "note": "; ".join(filter(None, notes))})
    return summary


def ratios(summary: list) -> list:
    """ours / each peer, per worker kind and model kind, where both were measured."""
    found = {(c["worker_kind"], c["model"], c["contender"]): c for c in summary if c["status"] == "ok"}
    out = []
    for (worker_kind, kind, contender), ours in found.items():
        for peer in CONTENDERS[1:] if contender == "ours" else ():
            theirs = found.get((worker_kind, kind, peer))
            if theirs:
                out.append({
                    "worker_kind": worker_kind, "model": kind, "peer": peer,
                    "growth": ours["growth_x"] / theirs["growth_x"] if theirs["growth_x"] > 0 else None,
                    "private": ours["private_x"] / theirs["private_x"] if theirs["private_x"] > 0 else None,
                    "first_s": ours["first_s"] / theirs["first_s"],
                    "batches_per_s": ours["batches_per_s"] / theirs["batches_per_s"],
                })  # fmt: skip
    return out


def print_tables(summary: list, ratio_rows: list, quick: bool) -> None:
    print(f"\n{'workers':12} {'model':11} {'contender':12} {'MB':>4} {'PSS growth':>10} {'private':>8} "
          f"{'first s':>7} {'batches/s':>9}  note")  # fmt: skip
    for c in summary:
        head = f"{c['worker_kind']:12} {c['model']:11} {c['contender']:12}"
        if c["status"] != "ok":
            print(f"{head} {c['status'].upper()}: {c['reason']}")
            continue
        print(f"{head} {c['model_bytes'] / 1e6:4.0f} {c['growth_x']:9.2f}x {c['private_x']:7.2f}x "
              f"{c['first_s']:7.2f} {c['batches_per_s']:9.2f}  {c['note']}")  # fmt: skip
    if ratio_rows:
        print("\nours / peer, medians (PSS growth and time to the first batch: lower is better; "
              "batches/s: higher is better)")  # fmt: skip
        for r in ratio_rows:
            growth = "-" if r["growth"] is None else f"{r['growth']:.2f}x"
            print(f"  {r['worker_kind']:12} {r['model']:11} vs {r['peer']:12} PSS growth {growth:>6}  "
                  f"first batch {r['first_s']:5.2f}x  batches/s {r['batches_per_s']:5.2f}x")  # fmt: skip
    print("\ntarget: ours' PSS growth <= 1.0x the model's bytes")
    if quick:
        print(
            "  (--quick: a worker's ~25 MB of imports and buffers outweigh a 50 MB model: see the full size)"
        )
    for c in summary:
        if c["contender"] == "ours":
            if c["status"] != "ok":
                print(f"  NOT MEASURED {c['worker_kind']:12} {c['model']}")
            else:
                verdict = "PASS" if c["growth_x"] <= 1.0 else "MISSED"
                print(f"  {verdict:12} {c['worker_kind']:12} {c['model']:11} ({c['growth_x']:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--batches", type=int, default=20, help="timed batches per worker after the first")
    parser.add_argument("--quick", action="store_true", help="a ~50 MB model and 1 repeat: a smoke run")
    parser.add_argument("--only", default="", help="worker kinds, model kinds, contenders (a,b,...)")
    parser.add_argument("--out", help="write the results as JSON here (nothing is written without it)")
    parser.add_argument("--child", choices=WORKER_KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    only = [name for name in args.only.split(",") if name]
    unknown = set(only) - set(WORKER_KINDS + MODEL_KINDS + CONTENDERS)
    if unknown:
        parser.error(f"unknown names in --only: {sorted(unknown)}")

    def pick(names: tuple) -> list:
        return [name for name in names if name in only] or list(names)

    worker_kinds, kinds, contenders = pick(WORKER_KINDS), pick(MODEL_KINDS), pick(CONTENDERS)
    cfg = QUICK if args.quick else FULL
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.child:
        child_main(args.child, kinds, contenders, cfg, args)
        return
    print(f"model {arch(cfg)}, batches of {cfg['rows']} x {cfg['d']}, {WORKERS} workers, "
          f"{args.repeats} repeats, {args.batches} timed batches a worker")  # fmt: skip
    began, rows = time.time(), []
    for worker_kind in worker_kinds:
        rows += run_child(worker_kind, kinds, contenders, args)
    summary = summarise(rows)
    ratio_rows = ratios(summary)
    print_tables(summary, ratio_rows, args.quick)
    print(f"\ntotal {time.time() - began:.0f} s")
    if args.out:
        from machine import machine_info

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({
            "machine": machine_info(DISTRIBUTIONS), "model": cfg, "workers": WORKERS,
            "repeats": args.repeats, "batches": args.batches, "runs": rows, "medians": summary,
            "ratios": ratio_rows,
        }, indent=1))  # fmt: skip
        print(f"written {args.out}")
    if any(c["status"] == "error" for c in summary if c["contender"] == "ours"):
        sys.exit(1)


if __name__ == "__main__":
    main()
