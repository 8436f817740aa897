"""A parallel run over an object store against the same run on local files (issue 16).

    python object_store.py [--size-mb 1024] [--repeats 3] [--workers 2] [--engines multiprocess,ray]

Starts moto's S3 server in its own process on 127.0.0.1, puts a CSV of the users data of about
``--size-mb`` MB in it, and runs, each in a fresh process and round-robin across contenders (the
machine is noisy), seed 000's example: ``PipeManager.parallelize_pipe(Pipe(CSVInputAdapter(url),
JSONOutputAdapter(out)), workers=2, should_merge=True)`` with no schema model (a conversion: the
storage path is all there is to measure):

- ``local-<engine>``: the CSV on the local disk to a local JSON Lines file (the reference);
- ``s3-<engine>``: ``s3://bench/users.csv`` to ``s3://bench/out-<n>.jsonl``, on the server.

For each run: the wall time of the parallel run (split, shards, merge), MB/s of input, the bytes
the driver read (``zoopipe_core.adapters.ranged.DRIVER_READS``: planning reads; the driver reads
no other byte of the input) as a share of the object, and the merge time (from the last shard's
end to the end of the run). Prints medians and the targets: driver reads under 1% of the object,
throughput at least 0.8x the local run on the same engine, merge under 1 s. Writes
``results/<date>-issue16-object-store.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"
BUCKET = "bench"
#: Bytes per row of the users CSV, near enough to size the file.
ROW_BYTES = 73
ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto's S3 server in its own process (its request handling must not share the driver's GIL)."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, endpoint
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("moto's server did not start within 60 s (is the bench extra installed?)")


def run_child(mode: str, engine_name: str, source: str, target: str, workers: int) -> dict:
    """One parallel run in this process (a fresh one per run): what it took and what the driver read."""
    from zoopipe_core import CSVInputAdapter, JSONOutputAdapter, Pipe, PipeManager
    from zoopipe_core.adapters.ranged import DRIVER_READS
    from zoopipe_core.plugins import resolve_engine

    options = {"multiprocess": {"max_workers": workers}, "ray": {"num_cpus": 1}, "dask": {}}[engine_name]
    engine = type(resolve_engine(engine_name))(**options)
    engine.start()
    try:
        pipe = Pipe(input_adapter=CSVInputAdapter(source), output_adapter=JSONOutputAdapter(target))
        started = time.perf_counter()
        manager = PipeManager.parallelize_pipe(pipe, workers=workers, should_merge=True, engine=engine)
        manager.start()
        manager.wait()
        ended_wall, seconds = time.time(), time.perf_counter() - started
        report = manager.report
        if report.has_error:
            raise RuntimeError(f"the {mode} run failed: {manager.failure_error(report)}")
        last_shard = max(r.end_time.timestamp() for r in manager.pipe_reports if r.end_time is not None)
        return {
            "seconds": seconds,
            "rows": report.success_count,
            "errors": report.error_count,
            "driver_bytes": DRIVER_READS.bytes,
            "driver_requests": DRIVER_READS.requests,
            "merge_seconds": ended_wall - last_shard,
        }
    finally:
        engine.shutdown()


def moto_merge_floor(endpoint: str, part_mib: int = 256) -> dict[str, float]:
    """What moto itself takes to merge 2 objects of ``part_mib`` MiB on the server: the
    ``UploadPartCopy`` of each, then ``CompleteMultipartUpload`` (no client work to speak of)."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    body = os.urandom(1 << 20) * part_mib
    for name in ("floor-1", "floor-2"):
        client.put_object(Bucket=BUCKET, Key=name, Body=body)
    upload = client.create_multipart_upload(Bucket=BUCKET, Key="floor-out")["UploadId"]
    started, parts = time.perf_counter(), []
    for number, name in enumerate(("floor-1", "floor-2"), start=1):
        copied = client.upload_part_copy(
            Bucket=BUCKET, Key="floor-out", UploadId=upload, PartNumber=number,
            CopySource={"Bucket": BUCKET, "Key": name},
        )  # fmt: skip
        parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
    copies = time.perf_counter() - started
    client.complete_multipart_upload(
        Bucket=BUCKET, Key="floor-out", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    complete = time.perf_counter() - started - copies
    for name in ("floor-1", "floor-2", "floor-out"):
        client.delete_object(Bucket=BUCKET, Key=name)
    return {"part_mib": part_mib, "copy_seconds": copies, "complete_seconds": complete}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engines", default="multiprocess")
    parser.add_argument(
        "--child", nargs=4, metavar=("MODE", "ENGINE", "SOURCE", "TARGET"), help=argparse.SUPPRESS
    )
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        mode, engine_name, source, target = args.child
        args.result.write_text(json.dumps(run_child(mode, engine_name, source, target, args.workers)))
        return

    sys.path.insert(0, str(BENCH_DIR))
    from machine import machine_info
    from scenarios import etl

    rows = args.size_mb * 1_000_000 // ROW_BYTES
    dataset = etl.prepare_data(rows, DATA_DIR)
    local_csv = dataset.input_path
    size = local_csv.stat().st_size
    os.environ.update(ENV)
    server, endpoint = start_moto()
    os.environ["AWS_ENDPOINT_URL_S3"] = endpoint
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        import s3fs

        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
        fs.mkdir(BUCKET)
        print(f"uploading {local_csv.name} ({size / 1e6:.0f} MB) to moto ...", flush=True)
        upload_started = time.perf_counter()
        fs.put(str(local_csv), f"{BUCKET}/users.csv")
        # What moto takes in from one s3fs upload: a ceiling for any job that writes to it.
        ingest = size / 1e6 / (time.perf_counter() - upload_started)
        print(f"moto took the upload at {ingest:.0f} MB/s (one s3fs multipart upload)", flush=True)
        engines = args.engines.split(",")
        contenders = [(mode, engine) for engine in engines for mode in ("local", "s3")]
        runs: dict[str, list[dict]] = {f"{m}-{e}": [] for m, e in contenders}
        work = Path(tempfile.mkdtemp(prefix="zoopipe-object-store-"))
        for repeat in range(args.repeats):
            for mode, engine in contenders:
                name = f"{mode}-{engine}"
                if mode == "local":
                    source, target = str(local_csv), str(work / f"out-{repeat}.jsonl")
                else:
                    source, target = f"s3://{BUCKET}/users.csv", f"s3://{BUCKET}/out-{engine}-{repeat}.jsonl"
                result_path = work / f"{name}-{repeat}.json"
                command = [
                    sys.executable,
                    __file__,
                    "--workers",
                    str(args.workers),
                    "--result",
                    str(result_path),
                ]
                subprocess.run([*command, "--child", mode, engine, source, target], check=True)
                result = json.loads(result_path.read_text())
                if result["rows"] + result["errors"] != dataset.rows:
                    raise SystemExit(
                        f"{name}: {result['rows']} + {result['errors']} records, expected {dataset.rows}"
                    )
                result["mb_per_s"] = size / 1e6 / result["seconds"]
                runs[name].append(result)
                print(
                    f"  {name} #{repeat + 1}: {result['seconds']:.2f} s, {result['mb_per_s']:.0f} MB/s, "
                    f"driver read {result['driver_bytes']:,} B, merge {result['merge_seconds']:.2f} s",
                    flush=True,
                )
                if mode == "local":
                    os.remove(target)
                else:
                    fs.rm(target)
        floor = moto_merge_floor(endpoint)
        print(
            f"moto alone merging 2 x {floor['part_mib']} MiB: UploadPartCopy {floor['copy_seconds']:.2f} s, "
            f"complete {floor['complete_seconds']:.2f} s",
            flush=True,
        )
    finally:
        server.kill()

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    print(f"\n{'contender':<20}{'median s':>10}{'MB/s':>8}{'driver read':>14}{'merge s':>9}")
    for name in runs:
        print(
            f"{name:<20}{median(name, 'seconds'):>10.2f}{median(name, 'mb_per_s'):>8.0f}"
            f"{median(name, 'driver_bytes') / size:>13.4%}{median(name, 'merge_seconds'):>9.2f}"
        )
    targets = []
    for engine in engines:
        ratio = median(f"s3-{engine}", "mb_per_s") / median(f"local-{engine}", "mb_per_s")
        share = median(f"s3-{engine}", "driver_bytes") / size
        merge = median(f"s3-{engine}", "merge_seconds")
        targets += [
            (f"s3-{engine}: driver reads < 1% of the object", share, share < 0.01),
            (f"s3-{engine}: throughput >= 0.8x local-{engine}", ratio, ratio >= 0.8),
            (f"s3-{engine}: merge < 1 s beyond the shards", merge, merge < 1.0),
        ]
    print()
    for label, value, met in targets:
        print(f"{'met ' if met else 'MISSED'} {label}: {value:.4g}")
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"{datetime.date.today().isoformat()}-issue16-object-store.json"
    out.write_text(
        json.dumps(
            {
                "machine": machine_info(["zoopipe-core", "s3fs", "moto", "ray", "dask"]),
                "size_bytes": size,
                "rows": dataset.rows,
                "workers": args.workers,
                "runs": runs,
                "targets": [{"label": t[0], "value": t[1], "met": t[2]} for t in targets],
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
