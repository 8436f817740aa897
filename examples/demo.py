"""The README's first command runs this: a sample CSV with some bad rows, through a pydantic
model and a transform, to JSON Lines plus an error file, with live progress and the final report.

    python examples/demo.py [--rows 500000] [--out demo-output]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
from datetime import date

from pydantic import BaseModel, Field

from zoopipe_core import CSVInputAdapter, JSONOutputAdapter, Pipe, SingleThreadExecutor
from zoopipe_core.pipe.progress import ProgressDisplay


class Customer(BaseModel):
    customer_id: int
    name: str
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]+$")
    age: int = Field(ge=0, le=130)
    country: str = Field(min_length=2, max_length=2)
    signup_date: date
    score: float


def enrich(records: list[dict]) -> list[dict]:
    """Normalise names and countries, and hash e-mail addresses."""
    for r in records:
        r["name"] = " ".join(r["name"].split()).title()
        r["country"] = r["country"].upper()
        r["email_hash"] = hashlib.sha256(r.pop("email").lower().encode()).hexdigest()[:16]
    return records


def write_sample_csv(path: str, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    names = ["ada lovelace", "alan  turing", "grace hopper", "edsger dijkstra", "barbara liskov"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("customer_id,name,email,age,country,signup_date,score\n")
        for i in range(rows):
            name = rng.choice(names)
            email = f"{name.split()[0]}.{i}@example.com"
            age, country, day = (
                str(rng.randint(18, 90)),
                rng.choice(["es", "fr", "de", "us"]),
                rng.randint(1, 28),
            )
            if i % 100 == 42:  # about 1% bad rows, of several kinds
                age, email, country = rng.choice(
                    [
                        ("x", email, country),
                        (age, "not-an-email", country),
                        ("-5", email, country),
                        (age, email, "ESP"),
                    ]
                )
            f.write(f'{i},"{name}",{email},{age},{country},2024-03-{day:02d},{rng.random() * 100:.3f}\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--out", default="demo-output")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    source = os.path.join(args.out, "customers.csv")
    print(f"writing {args.rows:,} sample rows (about 1% bad) to {source}")
    write_sample_csv(source, args.rows)

    pipe = Pipe(
        input_adapter=CSVInputAdapter(source),
        output_adapter=JSONOutputAdapter(os.path.join(args.out, "customers.jsonl")),
        error_output_adapter=JSONOutputAdapter(os.path.join(args.out, "errors.jsonl")),
        schema_model=Customer,
        post_validation=[enrich],
        executor=SingleThreadExecutor(batch_size=2000),
    )
    with ProgressDisplay(lambda: pipe.report, log_interval=1.0):
        pipe.start()
        pipe.wait()
    report = pipe.report
    if report.exception:
        raise SystemExit(f"the demo pipe failed: {report.exception}")
    print(json.dumps(report.to_dict(), indent=2))
    assert report.total_processed == report.success_count + report.error_count
    with open(os.path.join(args.out, "errors.jsonl"), encoding="utf-8") as f:
        print("first error record:", f.readline().strip())
    print(f"outputs in {args.out}/: customers.jsonl, errors.jsonl")


if __name__ == "__main__":
    main()
