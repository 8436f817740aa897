"""Deterministic generator of the users CSV that the ETL benchmark reads.

Seven columns (user_id, name, email, age, country, signup_date, score); about 1% of the rows
are broken in one of several ways that ``workload.UserRecord`` rejects. Rows are written as
they are generated, so memory stays flat whatever ``--rows`` is.

Beside the CSV a ``<csv>.meta.json`` records the row count, seed, generator version and the
exact number of bad rows, so the runner can reuse a file and check every contender's counts.

Usage: python benchmarks/datagen.py --rows 1000000 --out benchmarks/data/users-1000000.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import unicodedata
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

# Bump whenever the output for a given (rows, seed) changes, so stale files are regenerated.
GENERATOR_VERSION = 1
DEFAULT_SEED = 20260202
BAD_ROW_RATE = 0.01
COLUMNS = ("user_id", "name", "email", "age", "country", "signup_date", "score")

FIRST_NAMES = tuple(
    [
        "alice",
        "Bob",
        "CHARLIE",
        "Dana",
        "élodie",
        "François",
        "greta",
        "Hiroshi",
        "Ines",
        "jürgen",
        "Kwame",
        "Lucía",
        "mohammed",
        "Nadia",
        "Olivia",
        "Pedro",
        "quentin",
        "Rosa",
        "Søren",
        "Tariq",
        "Uma",
        "Victor",
        "wei",
        "Ximena",
        "Yusuf",
        "Zoë",
    ]
)
LAST_NAMES = tuple(
    [
        "smith",
        "García",
        "O'Brien",
        "MÜLLER",
        "nguyen",
        "Kowalski",
        "Rossi",
        "dubois",
        "Tanaka",
        "Okafor",
        "Silva",
        "Johansson",
        "Patel",
        "Novák",
        "Hernández",
        "Kim",
        "Andersen",
        "Ivanova",
    ]
)
EMAIL_DOMAINS = ("example.com", "Mail.Example.org", "corp.example.net", "EXAMPLE.io", "test.dev")
COUNTRIES = ("US", "gb", "DE", "fr", "ES", "it", "NL", "se", "PL", "JP", "BR", "in", "NG", "CA")
FIRST_SIGNUP = date(2015, 1, 1)
SIGNUP_SPAN_DAYS = 11 * 365

# Each kind breaks exactly one field in a way the model must reject.
BAD_KINDS = (
    "age_not_numeric",
    "age_negative",
    "email_without_at",
    "missing_value",
    "impossible_date",
    "country_not_two_letters",
    "score_out_of_range",
)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _good_row(rng: random.Random, user_id: int) -> dict[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    # Irregular spacing and casing give the transform real normalising to do.
    name = (
        f"{first}  {last}"
        if user_id % 7 == 0
        else f" {first} {last}"
        if user_id % 11 == 0
        else f"{first} {last}"
    )
    if user_id % 13 == 0:
        name = f"{last}, {first}"  # a comma forces CSV quoting on this row
    local = _ascii(f"{first}.{last}").replace("'", "")
    email = f"{local}{rng.randrange(1000)}@{rng.choice(EMAIL_DOMAINS)}"
    signup = FIRST_SIGNUP + timedelta(days=rng.randrange(SIGNUP_SPAN_DAYS))
    return {
        "user_id": str(user_id),
        "name": name,
        "email": email,
        "age": str(rng.randint(16, 90)),
        "country": rng.choice(COUNTRIES),
        "signup_date": signup.isoformat(),
        "score": f"{rng.uniform(0, 100):.2f}",
    }


def _break_row(rng: random.Random, row: dict[str, str], kind: str) -> None:
    if kind == "age_not_numeric":
        row["age"] = rng.choice(("thirty", "n/a", "4o", "?"))
    elif kind == "age_negative":
        row["age"] = str(-rng.randint(1, 99))
    elif kind == "email_without_at":
        row["email"] = row["email"].replace("@", rng.choice((".", " at ", "")))
    elif kind == "missing_value":
        row[rng.choice(("user_id", "name", "email", "age", "country", "signup_date", "score"))] = ""
    elif kind == "impossible_date":
        row["signup_date"] = rng.choice(("2023-02-30", "2021-13-01", "2020/05/17", "yesterday"))
    elif kind == "country_not_two_letters":
        row["country"] = rng.choice(("USA", "U", "D3", "Deutschland"))
    elif kind == "score_out_of_range":
        row["score"] = f"{rng.uniform(100.01, 1000):.2f}"
    else:
        raise ValueError(f"unknown bad-row kind {kind!r}")


def generate(rows: int, out: Path, seed: int = DEFAULT_SEED) -> dict:
    """Write ``rows`` data rows to ``out`` (plus the header) and its meta file; return the meta."""
    rng = random.Random(seed)
    bad_kinds: Counter[str] = Counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per process: two runners generating the same file must not share one.
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for user_id in range(1, rows + 1):
            row = _good_row(rng, user_id)
            if rng.random() < BAD_ROW_RATE:
                kind = rng.choice(BAD_KINDS)
                _break_row(rng, row, kind)
                bad_kinds[kind] += 1
            writer.writerow(row)
    partial.replace(out)  # only a complete file ever carries the final name
    errors = sum(bad_kinds.values())
    meta = {
        "rows": rows,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "columns": list(COLUMNS),
        "expected_valid": rows - errors,
        "expected_errors": errors,
        "bad_rows_by_kind": dict(sorted(bad_kinds.items())),
        "bytes": out.stat().st_size,
    }
    meta_partial = meta_path(out).with_name(f"{meta_path(out).name}.{os.getpid()}.partial")
    meta_partial.write_text(json.dumps(meta, indent=2) + "\n")
    meta_partial.replace(meta_path(out))
    return meta


def meta_path(csv_path: Path) -> Path:
    """Where the meta file of a generated CSV lives."""
    return csv_path.with_name(csv_path.name + ".meta.json")


def load_meta_if_current(csv_path: Path, rows: int, seed: int = DEFAULT_SEED) -> dict | None:
    """The meta of ``csv_path`` if that file was made by this generator version with these settings."""
    try:
        meta = json.loads(meta_path(csv_path).read_text())
    except (OSError, ValueError):
        return None
    current = (
        csv_path.exists()
        and meta.get("rows") == rows
        and meta.get("seed") == seed
        and meta.get("generator_version") == GENERATOR_VERSION
        and meta.get("bytes") == csv_path.stat().st_size
    )
    return meta if current else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, required=True, help="number of data rows (header excluded)")
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    meta = generate(args.rows, args.out, args.seed)
    print(f"wrote {args.out}: {meta['rows']} rows, {meta['expected_errors']} bad, {meta['bytes']} bytes")


if __name__ == "__main__":
    main()
