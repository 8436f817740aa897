"""ray_decorator and ray_zen: ray-decorator's API on the session's local Ray, with real Hydra,
hydra-zen and moto's S3 server.

The seed's three examples (examples/offload/) run as scripts, each its own Ray driver joining the
session's cluster (RAY_ADDRESS), as a user's would. The cluster's workers were started before the
S3 server may have been, so the scripts get its endpoint and credentials through the job's
runtime_env, as ``ray job submit --runtime-env-json`` gives one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from s3_server import s3_keys, worker_environment
from zoopipe_ray import RayZen, ray_decorator, ray_zen

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "offload"

#: What a script driver may take, on a loaded 2-core machine: Python, Ray's driver, a task.
SCRIPT_TIMEOUT = 240


def _script_env(ray_cluster: str, s3_server, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_S3_BASE_PATH", "ZOOPIPE_OFFLOAD_STORAGE")}
    env["RAY_ADDRESS"] = ray_cluster
    env["RAY_JOB_CONFIG_JSON_ENV_VAR"] = json.dumps(
        {"runtime_env": {"env_vars": worker_environment(s3_server)}}
    )
    env.update(extra)
    return env


def _run_example(name: str, cwd: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = proc.communicate(timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"{name} did not finish within {SCRIPT_TIMEOUT} s:\n{output}")
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{output}"
    proc.output = output  # type: ignore[attr-defined]
    return proc


@pytest.fixture
def my_bucket(s3_server):
    """The seed's bucket, "my-bucket", on the test server; removed after the test."""
    fs = s3_server.filesystem()
    fs.mkdir("my-bucket")
    yield "my-bucket"
    fs.rm("my-bucket", recursive=True)


# --------------------------------------------------------------------------- the seed's examples


def test_seed_example_1_function_arguments_through_s3(ray_cluster, s3_server, my_bucket, tmp_path):
    (tmp_path / "local_data").mkdir()
    (tmp_path / "local_data" / "rows.csv").write_text("a,b\n1,2\n")
    _run_example("process_data.py", tmp_path, _script_env(ray_cluster, s3_server))
    assert (tmp_path / "local_results" / "result.txt").read_text() == "Done!"
    keys = s3_keys(s3_server, my_bucket)
    assert keys and all(key.startswith("jobs/files/md5/") for key in keys), keys


def test_seed_example_2_hydra_main_with_dotted_paths(ray_cluster, s3_server, s3_bucket, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.txt").write_text("x\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "stale.bin").write_text("from an earlier run")
    env = _script_env(ray_cluster, s3_server, RAY_S3_BASE_PATH=f"s3://{s3_bucket}/hydra")
    _run_example("train.py", tmp_path, env)
    # The function wrote nothing into its output: the local output is that, empty.
    assert (tmp_path / "model").is_dir() and list((tmp_path / "model").iterdir()) == []
    assert any(key.startswith("hydra/files/md5/") for key in s3_keys(s3_server, s3_bucket))


def test_seed_example_3_ray_zen_instantiates_on_the_worker(ray_cluster, s3_server, my_bucket, tmp_path):
    # A stand-in for transformers (the real one would download BERT): it records the process
    # that builds the model. The script's directory and its working directory are on the Ray
    # workers' path (Ray adds them for a driver's job), so the workers import it from there too.
    record = tmp_path / "instantiated_in.txt"
    (tmp_path / "transformers").mkdir()
    (tmp_path / "transformers" / "__init__.py").write_text(
        textwrap.dedent(
            f"""
            import os, types

            class AutoModel:
                @classmethod
                def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
                    with open({str(record)!r}, "a") as f:
                        f.write(f"{{os.getpid()}}\\n")
                    model = cls()
                    model.config = types.SimpleNamespace(model_type="bert", name=pretrained_model_name_or_path)
                    return model
            """
        )
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tokens.txt").write_text("hello\n")
    env = _script_env(ray_cluster, s3_server, PYTHONPATH=str(tmp_path))
    proc = _run_example("zen_app.py", tmp_path, env)
    pids = record.read_text().split()
    assert len(pids) == 1, pids  # built once
    assert int(pids[0]) != proc.pid  # and not by the driver
    assert (tmp_path / "outputs").is_dir()
    assert any(key.startswith("zen/files/md5/") for key in s3_keys(s3_server, my_bucket))


# --------------------------------------------------------------------------- in this process


def test_under_hydra_main_with_the_local_store_the_callers_config_is_unchanged(
    ray_cluster, tmp_path, monkeypatch
):
    import hydra
    from omegaconf import OmegaConf

    # No storage named anywhere: the local Ray's nodes are this host, so this host's store serves.
    monkeypatch.delenv("RAY_S3_BASE_PATH", raising=False)
    monkeypatch.delenv("ZOOPIPE_OFFLOAD_STORAGE", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    (tmp_path / "a" / "data").mkdir(parents=True)
    (tmp_path / "b" / "data").mkdir(parents=True)  # a second dep with the same base name
    (tmp_path / "a" / "data" / "x.txt").write_text("1 2 3")
    (tmp_path / "b" / "data" / "x.txt").write_text("4 5")

    @hydra.main(config_name=None, config_path=None, version_base=None)
    @ray_decorator(deps=["config.data.path", "config.extra.path"], outs=["config.training.output_dir"])
    def train(config):
        import os
        from pathlib import Path

        count = len(Path(config.data.path, "x.txt").read_text().split())
        extra = len(Path(config.extra.path, "x.txt").read_text().split())
        with open(os.path.join(config.training.output_dir, "model.txt"), "w") as f:
            f.write(f"{count}+{extra}")
        return os.getpid(), config.data.path

    assert train.__name__ == "train" and train.__wrapped__.__wrapped__.__name__ == "train"
    cfg = OmegaConf.create(
        {
            "data": {"path": str(tmp_path / "a" / "data")},
            "extra": {"path": str(tmp_path / "b" / "data")},
            "training": {"output_dir": str(tmp_path / "model"), "epochs": 2},
        }
    )
    OmegaConf.set_struct(cfg, True)
    before = OmegaConf.to_yaml(cfg)
    pid, seen_path = train(cfg)  # hydra.main passes a given config straight through
    assert pid != os.getpid() and seen_path != cfg.data.path  # ran on a worker, on its own copy
    assert OmegaConf.to_yaml(cfg) == before
    assert (tmp_path / "model" / "model.txt").read_text() == "3+2"


def test_on_s3_an_exception_comes_back_with_its_type_and_local_outputs_stay(
    ray_cluster, s3_server, s3_bucket, tmp_path
):
    from hydra_zen import builds, make_config

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "n.txt").write_text("7")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "kept.txt").write_text("from before")

    def task(model, data_dir, output_dir, fail):
        import os
        from pathlib import Path

        n = int(Path(data_dir, "n.txt").read_text())
        with open(os.path.join(output_dir, "half.txt"), "w") as f:
            f.write("half")
        if fail:
            raise KeyError(f"no row {n}")
        return type(model).__name__, os.getpid(), n

    # The workers started before the S3 server may have been: the task's runtime_env points
    # them at it (applied to the task, since this process is already connected to Ray).
    app = ray_zen(
        task,
        deps=["data_dir"],
        outs=["output_dir"],
        s3_base_path=f"s3://{s3_bucket}/zen",
        ray_init_kwargs={"runtime_env": {"env_vars": worker_environment(s3_server)}},
    )
    assert isinstance(app, RayZen)
    cfg = make_config(
        model=builds(dict, size=1),
        data_dir=str(tmp_path / "data"),
        output_dir=str(tmp_path / "out"),
        fail=True,
    )
    with pytest.raises(KeyError, match="no row 7"):
        app(cfg)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["kept.txt"]
    assert (tmp_path / "out" / "kept.txt").read_text() == "from before"

    name, pid, n = app(make_config(bases=(cfg,), fail=False))
    assert (name, n) == ("dict", 7) and pid != os.getpid()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["half.txt"]  # replaced whole
    assert any(key.startswith("zen/files/md5/") for key in s3_keys(s3_server, s3_bucket))
    app.offload.close()


# --------------------------------------------------------------------------- no Ray needed


def test_driver_side_errors_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="names no parameter"):

        @ray_decorator(deps=["config.data.path"])
        def train(cfg): ...

    with pytest.raises(TypeError, match="not a string"):
        ray_decorator(deps="data_dir")
    with pytest.raises(ValueError, match="in both ray_init_kwargs and ray_remote_kwargs"):
        ray_decorator(
            ray_init_kwargs={"runtime_env": {"env_vars": {"A": "1"}}},
            ray_remote_kwargs={"runtime_env": {"env_vars": {"A": "2"}}},
        )

    def task(model, data_dir): ...

    from hydra_zen.errors import HydraZenValidationError

    with pytest.raises(HydraZenValidationError, match="missing the following fields: data_dir"):
        ray_zen(task, deps=["data_dir"])({"model": 1})


def test_addresses_and_storage_default_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    monkeypatch.setenv("RAY_S3_BASE_PATH", str(tmp_path / "store"))

    @ray_decorator(deps=["data_dir"])
    def process(data_dir): ...

    offload = process.offload
    assert offload.engine.address == "127.0.0.1:6379"
    assert offload.store.url == (tmp_path / "store").as_uri() and not offload.default_storage
    explicit = ray_decorator(ray_address="auto", s3_base_path=str(tmp_path / "other"))(process.__wrapped__)
    assert explicit.offload.engine.address == "auto"
    monkeypatch.delenv("RAY_S3_BASE_PATH")
    monkeypatch.delenv("RAY_ADDRESS")
    assert ray_decorator(ray_remote_kwargs={"num_cpus": 2})(process.__wrapped__).offload.default_storage
