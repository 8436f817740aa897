"""The Python work every ETL contender performs: one pydantic model and one row transform.

Every contender imports these two names and nothing else from here, so the validation rules
and the per-row work are identical byte for byte; only the I/O and the plumbing around them
differ between contenders.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import date

from pydantic import BaseModel, Field

# Kept loose enough for mixed-case addresses (the transform lower-cases them) and strict enough
# that an address without "@" or without a dotted domain is rejected.
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"


class UserRecord(BaseModel):
    """One row of the generated users CSV; every field arrives as text and is coerced (lax mode)."""

    user_id: int = Field(gt=0)
    name: str = Field(min_length=1, max_length=120)
    email: str = Field(pattern=EMAIL_PATTERN, max_length=254)
    age: int = Field(ge=0, le=130)
    country: str = Field(pattern=r"^[A-Za-z]{2}$")
    signup_date: date
    score: float = Field(ge=0.0, le=100.0)


def _age_group(age: int) -> str:
    if age < 18:
        return "minor"
    if age < 35:
        return "18-34"
    if age < 55:
        return "35-54"
    return "55+"


def transform_row(row: dict) -> dict:
    """Normalise and enrich one validated row (the output of ``UserRecord.model_dump()``).

    ``signup_date`` may be a ``date`` (python-mode dump) or its ISO string (json-mode dump):
    ``str()`` yields the same ISO text for both, so every contender writes identical values.
    """
    email = row["email"].strip().lower()
    name = " ".join(row["name"].split()).title()
    signup_date = str(row["signup_date"])
    return {
        "user_id": row["user_id"],
        "name": name,
        "name_ascii": unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode(),
        "email": email,
        "email_domain": email.rpartition("@")[2],
        "email_sha256": hashlib.sha256(email.encode()).hexdigest(),
        "age": row["age"],
        "age_group": _age_group(row["age"]),
        "country": row["country"].upper(),
        "signup_date": signup_date,
        "signup_year": int(signup_date[:4]),
        "score": round(row["score"], 1),
        "user_key": hashlib.blake2b(f"{row['user_id']}:{email}".encode(), digest_size=8).hexdigest(),
    }


FIELD_NAMES: tuple[str, ...] = tuple(UserRecord.model_fields)
