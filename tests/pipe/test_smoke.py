"""The README's pipe, end to end, on a real CSV file."""

import json

from pydantic import BaseModel

from zoopipe_core import CSVInputAdapter, JSONOutputAdapter, Pipe


class User(BaseModel):
    user_id: int
    username: str
    email: str


def normalise(records):
    for r in records:
        r["email"] = r["email"].strip().lower()
    return records


def test_readme_pipe(tmp_path):
    source = tmp_path / "users.csv"
    source.write_text("user_id,username,email\n1,ada, ADA@X.COM\nnope,bob,b@x.com\n")
    report = Pipe(
        input_adapter=CSVInputAdapter(source),
        output_adapter=JSONOutputAdapter(tmp_path / "users.jsonl"),
        error_output_adapter=JSONOutputAdapter(tmp_path / "errors.jsonl"),
        schema_model=User,
        post_validation=[normalise],
    ).run()
    assert (report.total_processed, report.success_count, report.error_count) == (2, 1, 1)
    assert json.loads((tmp_path / "users.jsonl").read_text()) == {
        "user_id": 1,
        "username": "ada",
        "email": "ada@x.com",
    }
    error = json.loads((tmp_path / "errors.jsonl").read_text())
    assert (error["line"], error["stage"], error["source"]) == (3, "validation", str(source))
    assert error["record"]["user_id"] == "nope"
