"""Remote offload's synchronisation against s3fs.put and ray-decorator 0.1.18 (issue 19).

    python offload.py [--files 1000] [--total-mb 1024] [--repeats 3]

Starts moto's S3 server in its own process on 127.0.0.1 and writes a tree of ``--files`` files
totalling ``--total-mb`` MiB (random bytes) under benchmarks/data/. Then, each contender in a fresh
process, round-robin across repeats (the machine is noisy), on a local Ray of 2 CPUs:

- ``s3fs-put``: ``s3fs.S3FileSystem.put(tree, "s3://bench/<prefix>/", recursive=True)``, the
  reference for the first upload;
- ``zoopipe``: ``zoopipe_ray.ray_decorator(deps=["data_dir"], outs=["out_dir"],
  s3_base_path=...)`` over the tree, three calls: the first (a cold hash cache), an identical
  second, and a third after one file changed. ``Offload.last_run`` gives the driver's
  synchronisation seconds and the bytes each way;
- ``ray-decorator``: the same function under ``ray_decorator.ray_decorator`` 0.1.18, the same
  three calls. Its driver-side synchronisation (``_driver_process_inputs``) is timed, and the
  bytes it sent are what changed on the server (objects whose ETag or LastModified moved).

Prints medians and the targets: first upload at least 0.5x s3fs.put's rate; the second call
spends at most 1 s synchronising and sends 0 bytes; changing one file sends one file. Writes
``results/<date>-issue19-offload.json``. ray-decorator shells out to the AWS CLI: this script
installs ``awscli`` into ``benchmarks/.venv-awscli`` on first use (its botocore pin conflicts
with s3fs's, so it cannot share the bench venv).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from object_store import BUCKET, ENV, start_moto

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"
AWSCLI_VENV = BENCH_DIR / ".venv-awscli"
CONTENDERS = ("s3fs-put", "zoopipe", "ray-decorator")


def make_tree(files: int, total_mb: int) -> Path:
    """``files`` files of random bytes totalling ``total_mb`` MiB, in 10 subdirectories (reused)."""
    root = DATA_DIR / f"offload-tree-{files}-{total_mb}"
    if root.is_dir() and sum(1 for p in root.rglob("*") if p.is_file()) == files:
        return root
    shutil.rmtree(root, ignore_errors=True)
    size = total_mb * 1024 * 1024 // files
    rng = random.Random(19)
    for index in range(files):
        path = root / f"part-{index % 10}" / f"file-{index:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
    return root


def ensure_awscli() -> Path:
    """The bin directory holding an ``aws`` command (installed into its own venv on first use)."""
    found = shutil.which("aws")
    if found:
        return Path(found).parent
    aws = AWSCLI_VENV / "bin" / "aws"
    if not aws.exists():
        subprocess.run([sys.executable, "-m", "venv", str(AWSCLI_VENV)], check=True)
        subprocess.run([str(AWSCLI_VENV / "bin" / "pip"), "install", "--quiet", "awscli"], check=True)
    return aws.parent


def server_state(fs, prefix: str) -> dict[str, tuple[str, str, int]]:
    """key -> (ETag, LastModified, size) of every object under ``prefix``."""
    fs.invalidate_cache()
    try:
        found = fs.find(f"{BUCKET}/{prefix}", detail=True)
    except FileNotFoundError:
        return {}
    return {
        key: (str(info.get("ETag")), str(info.get("LastModified")), int(info["size"]))
        for key, info in found.items()
    }


def bytes_changed(before: dict, after: dict) -> int:
    return sum(
        size for key, (etag, modified, size) in after.items() if before.get(key) != (etag, modified, size)
    )


# --------------------------------------------------------------------------- one contender, in a child


def work(data_dir: str, out_dir: str) -> int:
    """The offloaded function: notes when it started (after every input reached the worker),
    counts the input files, writes one small output."""
    started = time.time()
    files = sum(len(names) for _, _, names in os.walk(data_dir))
    os.makedirs(out_dir, exist_ok=True)
    # A new name each call: ray-decorator's `aws s3 sync` back to the local directory skips a
    # file of the same size that is older on S3 than locally, which left a stale started.txt.
    with open(os.path.join(out_dir, f"started-{time.time_ns()}.txt"), "w") as f:
        f.write(repr(started))
    return files


def _started(out_dir: Path) -> float:
    """When the last call's function started (the newest marker; ray-decorator keeps old ones)."""
    return max(float(path.read_text()) for path in out_dir.glob("started-*.txt"))


def child_s3fs_put(tree: Path, endpoint: str, prefix: str) -> dict:
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)
    started = time.perf_counter()
    fs.put(str(tree) + "/", f"{BUCKET}/{prefix}/", recursive=True)
    return {"first_upload_seconds": time.perf_counter() - started}


def _working_copy(tree: Path, scratch: Path) -> Path:
    """The tree as the user's directory: hard links, so one file can be changed in place."""
    copy = scratch / "tree"
    shutil.copytree(tree, copy, copy_function=os.link)
    return copy


def _change_one_file(copy: Path) -> int:
    """Give one file of ``copy`` new content (the shared original stays); its size."""
    changed = next(iter(sorted(copy.rglob("*.bin"))))
    data = changed.read_bytes()
    changed.unlink()
    changed.write_bytes(bytes(reversed(data)))
    return len(data)


def child_zoopipe(tree: Path, endpoint: str, prefix: str, scratch: Path) -> dict:
    import ray
    from zoopipe_ray import ray_decorator

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    offloaded = ray_decorator(deps=["data_dir"], outs=["out_dir"], s3_base_path=f"s3://{BUCKET}/{prefix}")(
        work
    )
    # The engine's start (joining Ray, shipping the project's environment) is once per process,
    # not synchronisation: done before the timed calls.
    offloaded.offload.ready()

    def call_once(data: Path, out: Path) -> dict:
        started = time.time()
        offloaded(data_dir=str(data), out_dir=str(out))
        stats = offloaded.offload.last_run
        return {
            "sync_seconds": _started(out) - started,
            "driver_sync_seconds": stats.input_seconds,
            "sent": stats.inputs_sent,
            "wall_seconds": time.time() - started,
        }

    return _three_calls(tree, scratch, call_once)


def child_ray_decorator(tree: Path, endpoint: str, prefix: str, scratch: Path) -> dict:
    import ray
    import s3fs
    from ray_decorator import ray_decorator

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    offloaded = ray_decorator(
        deps=["data_dir"], outs=["out_dir"], ray_address="auto", s3_base_path=f"s3://{BUCKET}/{prefix}"
    )(work)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)

    def call_once(data: Path, out: Path) -> dict:
        before = server_state(fs, prefix)
        started = time.time()
        offloaded(data_dir=str(data), out_dir=str(out))
        wall = time.time() - started
        sent = bytes_changed(before, server_state(fs, prefix))
        return {"sync_seconds": _started(out) - started, "sent": sent, "wall_seconds": wall}

    return _three_calls(tree, scratch, call_once)


def _three_calls(tree: Path, scratch: Path, call_once) -> dict:
    """The first call, an identical second, and a third after one file changed."""
    calls = []
    data = _working_copy(tree, scratch)
    changed_size = 0
    for call in range(3):
        if call == 2:
            changed_size = _change_one_file(data)
        calls.append(call_once(data, scratch / "out"))
    return _summary(calls, changed_size)


def _summary(calls: list[dict], changed_size: int) -> dict:
    """sync_seconds: from the call to the function's start on the worker (driver and worker
    synchronisation, Ray's scheduling); driver_sync_seconds (ours): the driver's part."""
    return {
        "first_sync_seconds": calls[0]["sync_seconds"],
        "first_upload_seconds": calls[0].get("driver_sync_seconds", calls[0]["sync_seconds"]),
        "second_driver_sync_seconds": calls[1].get("driver_sync_seconds", calls[1]["sync_seconds"]),
        "first_sent": calls[0]["sent"],
        "second_sync_seconds": calls[1]["sync_seconds"],
        "second_sent": calls[1]["sent"],
        "changed_sync_seconds": calls[2]["sync_seconds"],
        "changed_sent": calls[2]["sent"],
        "changed_file_size": changed_size,
        "wall_seconds": [call["wall_seconds"] for call in calls],
        "driver_sync_seconds": [call.get("driver_sync_seconds") for call in calls],
    }


def run_child(args: argparse.Namespace) -> None:
    tree = Path(args.tree)
    with tempfile.TemporaryDirectory(prefix="zoopipe-offload-bench-") as scratch:
        if args.child == "s3fs-put":
            result = child_s3fs_put(tree, args.endpoint, args.prefix)
        elif args.child == "zoopipe":
            result = child_zoopipe(tree, args.endpoint, args.prefix, Path(scratch))
        else:
            result = child_ray_decorator(tree, args.endpoint, args.prefix, Path(scratch))
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- the driver


def run_contender(name: str, tree: Path, endpoint: str, prefix: str, aws_bin: Path) -> dict:
    env = dict(os.environ)
    env.update(ENV)
    env["AWS_ENDPOINT_URL"] = endpoint
    env["AWS_ENDPOINT_URL_S3"] = endpoint
    env["PATH"] = f"{aws_bin}{os.pathsep}{env['PATH']}"
    # A cold hash cache and object cache per run: the first call hashes and uploads everything.
    cache = tempfile.mkdtemp(prefix="zoopipe-offload-cache-")
    env["ZOOPIPE_CACHE_DIR"] = cache
    env.pop("RAY_ADDRESS", None)
    try:
        # ray-decorator's workers sync into deps/ and outs/ under the working directory.
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                name,
                "--tree",
                str(tree),
                "--endpoint",
                endpoint,
                "--prefix",
                prefix,
            ],
            env=env,
            cwd=cache,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    # ray-decorator draws a spinner on stdout: the result line may follow its escape codes.
    lines = [line[line.index("RESULT ") :] for line in done.stdout.splitlines() if "RESULT {" in line]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"{name} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--total-mb", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default=",".join(CONTENDERS))
    parser.add_argument("--child")
    parser.add_argument("--tree")
    parser.add_argument("--endpoint")
    parser.add_argument("--prefix")
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return
    from machine import machine_info, wait_until_idle

    contenders = [name for name in args.only.split(",") if name]
    tree = make_tree(args.files, args.total_mb)
    total = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    aws_bin = ensure_awscli() if "ray-decorator" in contenders else Path(sys.executable).parent
    server, endpoint = start_moto()
    os.environ.update(ENV)
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)
    fs.mkdir(BUCKET)
    results: dict[str, list[dict]] = {name: [] for name in contenders}
    try:
        for repeat in range(args.repeats):
            for name in contenders:
                prefix = f"{name}-{repeat}"
                wait_until_idle()
                result = run_contender(name, tree, endpoint, prefix, aws_bin)
                results[name].append(result)
                print(f"repeat {repeat + 1} {name}: {json.dumps(result)}", flush=True)
                fs.rm(f"{BUCKET}/{prefix}", recursive=True)
    finally:
        server.kill()

    def median(name: str, field: str) -> float:
        return statistics.median(run[field] for run in results[name])

    print(f"\n{args.files} files, {total / 2**20:.0f} MiB, {args.repeats} repeats (medians)")
    summary: dict[str, dict] = {}
    for name in contenders:
        summary[name] = {
            field: median(name, field)
            for field, value in results[name][0].items()
            if isinstance(value, (int, float))
        }
        print(f"  {name}: " + ", ".join(f"{k}={v:.3g}" for k, v in summary[name].items()))
    if "s3fs-put" in summary and "zoopipe" in summary:
        ratio = summary["s3fs-put"]["first_upload_seconds"] / summary["zoopipe"]["first_upload_seconds"]
        summary["first_upload_rate_vs_s3fs_put"] = {"zoopipe": ratio}
        print(
            f"first upload (the driver's hashing and upload), rate vs s3fs.put: zoopipe {ratio:.2f}x (target >= 0.5x)"
        )
        if "ray-decorator" in summary:
            theirs = (
                summary["s3fs-put"]["first_upload_seconds"] / summary["ray-decorator"]["first_upload_seconds"]
            )
            summary["first_upload_rate_vs_s3fs_put"]["ray-decorator"] = theirs
            print(f"first call until its function started, rate vs s3fs.put: ray-decorator {theirs:.2f}x")
    for name in ("zoopipe", "ray-decorator"):
        if name in summary:
            s = summary[name]
            print(
                f"{name}: second call {s['second_sync_seconds']:.2f} s, {s['second_sent']:.0f} bytes sent "
                f"(target <= 1 s, 0 bytes); one file changed: {s['changed_sent']:.0f} bytes sent "
                f"(the file: {s['changed_file_size']:.0f})"
            )
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"{datetime.date.today().isoformat()}-issue19-offload.json"
    out.write_text(
        json.dumps(
            {
                "machine": machine_info(["zoopipe-core", "ray", "s3fs", "moto", "ray-decorator", "awscli"]),
                "files": args.files,
                "bytes": total,
                "runs": results,
                "medians": summary,
            },
            indent=1,
        )
    )
    print(f"written {out}")


if __name__ == "__main__":
    main()
