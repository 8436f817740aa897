"""ModelWrapper on this machine without Ray: weights in shared memory (engine=None) or through
the multiprocess engine's share; workers map one copy, copy-on-write."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import pytest
import torch
from zoopipe_zerocopy import ModelWrapper
from zoopipe_zerocopy import testing as zc_models

from zoopipe_core import JSONOutputAdapter, ParallelMap, Pipe, PipeManager, PyGeneratorInputAdapter
from zoopipe_core.engines import MultiProcessEngine

HERE = pathlib.Path(__file__).parent


def shm_names() -> set[str]:
    return set(os.listdir("/dev/shm"))


@pytest.fixture(autouse=True)
def without_ray(monkeypatch):
    """These tests are about this machine's shared memory: as if Ray were not initialised in
    this process (the session's Ray may be up when they run)."""
    from zoopipe_zerocopy import placement, wrapper

    for module in (placement, wrapper):
        monkeypatch.setattr(module, "ray_is_initialized", lambda: False)


@pytest.fixture
def model():
    torch.manual_seed(4)
    return zc_models.TiedLM()


def test_without_ray_the_weights_go_to_shared_memory_and_workers_map_one_copy(model, tmp_path):
    before = shm_names()
    wrapper = ModelWrapper.from_model(model)
    assert "shared memory on this machine" in repr(wrapper)
    [block] = shm_names() - before
    with MultiProcessEngine(max_workers=2) as engine:
        futures = [engine.submit(zc_models.locate_after_meeting, wrapper, str(tmp_path), 2) for _ in range(2)]
        reports = [future.result() for future in futures]
        tokens = [[1, 2, 3], [7, 8, 9]]
        remote = engine.submit(zc_models.run_tied, wrapper, tokens).result()
    assert len({report["pid"] for report in reports}) == 2
    # Every parameter of both workers maps the same bytes of the same shared block.
    assert reports[0]["places"] == reports[1]["places"]
    assert {place[2] for place in reports[0]["places"].values()} == {f"/dev/shm/{block}"}
    assert reports[0]["warnings"] == reports[1]["warnings"] == []
    with torch.no_grad():
        assert torch.equal(remote, model(torch.tensor(tokens)))
    wrapper.release()
    assert block not in shm_names()
    with pytest.raises(LookupError, match=r"shared weights are gone.*from_model"):
        ModelWrapper(wrapper._skeleton, wrapper._ref, 0, [""]).load()


def test_an_in_place_write_in_one_worker_never_reaches_the_others(model, tmp_path):
    original = zc_models.first_weight(ModelWrapper.from_model(model))
    with MultiProcessEngine(max_workers=2) as engine:
        wrapper = ModelWrapper.from_model(model, engine=engine)
        writer = engine.submit(zc_models.write_while_another_reads, wrapper, str(tmp_path), True)
        reader = engine.submit(zc_models.write_while_another_reads, wrapper, str(tmp_path), False)
        assert writer.result() == pytest.approx(original + 10.0)
        assert reader.result() == original
        # load_state_dict writes in place too; the driver's own load still reads the shared bytes.
        assert engine.submit(zc_models.write_in_place, wrapper, 1.0).result() != original
        assert zc_models.first_weight(wrapper) == original
    assert zc_models.first_weight(ModelWrapper.from_model(model)) == original


def test_the_engine_shutdown_removes_the_shared_weights_and_unshare_frees_them_early(model):
    before = shm_names()
    with MultiProcessEngine(max_workers=1) as engine:
        kept = ModelWrapper.from_model(model, engine=engine)
        freed = ModelWrapper.from_model(model, engine=engine)
        assert len(shm_names() - before) == 2
        freed.release()  # Engine.unshare: the engine keeps running
        assert len(shm_names() - before) == 1
        assert engine.submit(zc_models.first_weight, kept).result() == float(model.embed.weight[0, 0])
        failure = engine.submit(zc_models.first_weight, freed).exception()
        assert isinstance(failure, LookupError) and "shared weights are gone" in str(failure)
    assert shm_names() == before


def test_no_shared_memory_is_left_behind_when_the_driver_is_killed(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal
            from zoopipe_zerocopy import ModelWrapper
            from zoopipe_zerocopy.testing import TiedLM
            wrapper = ModelWrapper.from_model(TiedLM())
            print(wrapper._ref.key, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
            """
        )
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    name = run.stdout.strip()
    assert name.startswith(("psm_", "wnsm_")), run.stdout
    deadline = time.monotonic() + 30
    while name in shm_names() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert name not in shm_names()


def test_wrapping_needs_at_most_one_extra_model_size_of_driver_memory():
    size, growth, where = zc_models.driver_memory_of_wrapping()
    assert "shared memory on this machine" in where
    assert growth <= 1.1 * size, (growth / size, "model sizes of extra driver memory")


def test_parallel_map_and_pipe_manager_work_load_from_shared_memory(model, tmp_path):
    wrapper = ModelWrapper.from_model(model)
    with ParallelMap(zc_models.run_tied, engine="multiprocess") as pm:
        results = pm.map([(wrapper, [[n, n + 1]]) for n in range(6)])
    with ParallelMap(zc_models.load_and_locate, engine="multiprocess") as pm:
        located = pm.map([wrapper] * 4)
    paths = {place[2] for report in located for place in report["places"].values()}
    assert paths == {f"/dev/shm/{wrapper._ref.key}"} and os.getpid() not in {r["pid"] for r in located}
    with torch.no_grad():
        assert all(torch.equal(got, model(torch.tensor([[n, n + 1]]))) for n, got in enumerate(results))

    outputs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    pipes = [
        Pipe(
            PyGeneratorInputAdapter([{"token": t} for t in range(start, start + 5)]),
            JSONOutputAdapter(str(output)),
            post_validation=[zc_models.Scorer(wrapper)],
        )
        for start, output in zip((0, 20), outputs, strict=True)
    ]
    with PipeManager(pipes, engine=MultiProcessEngine(max_workers=2)) as manager:
        assert manager.wait()
    with torch.no_grad():
        expected = {t: int(model(torch.tensor([[t]]))[0, 0].argmax()) for t in [*range(5), *range(20, 25)]}
    records = [json.loads(line) for output in outputs for line in output.read_text().splitlines()]
    assert {record["token"]: record["best"] for record in records} == expected
    assert os.getpid() not in {record["pid"] for record in records}
    wrapper.release()


def test_task_mode_runs_each_models_methods_as_tasks_on_the_engine():
    pipeline = zc_models.Pipeline()
    with MultiProcessEngine(max_workers=2) as engine:
        remote = ModelWrapper.for_tasks(pipeline, engine=engine)
        assert type(remote) is zc_models.Pipeline and remote.label == "pipeline-v1"
        x = torch.randn(3, 8)
        expected, got = pipeline(x), remote(x)
        assert all(torch.equal(got[name], expected[name]) for name in expected)
        with pytest.raises(AttributeError, match=r"'forward'.*method_names=\['__call__'\]"):
            remote.encoder.forward(x)
        only_forward = ModelWrapper.from_model(
            torch.nn.Linear(8, 2), mode="task", method_names=("forward",), engine=engine
        ).load()
        assert only_forward.forward(x).shape == (3, 2)
        with pytest.raises(AttributeError, match="does not run remotely"):
            only_forward(x)
        task_wrapper = ModelWrapper.from_model(pipeline, mode="task", engine=engine)
        failure = engine.submit(task_wrapper.load).exception()
        assert isinstance(failure, RuntimeError) and "wrap the model with mode='actor'" in str(failure)


def test_task_mode_without_an_engine_makes_one_and_release_shuts_it_down():
    wrapper = ModelWrapper.from_model(torch.nn.Linear(8, 2), mode="task")
    engine = wrapper._placed.engine
    assert type(engine).__name__ == "MultiProcessEngine"
    assert wrapper.load()(torch.ones(1, 8)).shape == (1, 2)
    assert engine.is_running
    wrapper.release()
    assert not engine.is_running


def test_a_task_worker_keeps_only_its_last_pipelines_loaded_so_released_weights_can_go():
    import gc

    from zoopipe_zerocopy import wrapper as wrapper_module

    wrappers = [
        ModelWrapper.from_model(torch.nn.Linear(2, 2)) for _ in range(wrapper_module.TASK_MODELS_KEPT + 1)
    ]
    try:
        for wrapper in wrappers:  # what the tasks of a worker do, in this process
            assert wrapper.call("", "forward", torch.ones(1, 2)).shape == (1, 2)
        wrappers[1].call("", "forward", torch.ones(1, 2))  # the most recently used stays
        gc.collect()
        keys = [wrapper._ref.key for wrapper in wrappers]
        assert list(wrapper_module._task_models) == keys[2:] + keys[1:2]
        # The first pipeline's models are gone, and with them its mapping of the shared pages.
        assert keys[0] not in wrapper_module._mapped and all(
            key in wrapper_module._mapped for key in keys[1:]
        )
    finally:
        for wrapper in wrappers:
            wrapper.release()


def test_a_worker_that_died_is_replaced_and_its_successor_loads_again(model):
    with MultiProcessEngine(max_workers=1) as engine:
        wrapper = ModelWrapper.from_model(model, engine=engine)
        assert engine.submit(zc_models.first_weight, wrapper).result() == float(model.embed.weight[0, 0])
        assert engine.submit(os._exit, 3).exception() is not None
        assert engine.submit(zc_models.first_weight, wrapper).result() == float(model.embed.weight[0, 0])


def test_arguments_that_make_no_sense_are_refused(model):
    with pytest.raises(ValueError, match="mode must be 'actor' or 'task'"):
        ModelWrapper.from_model(model, mode="process")
    with pytest.raises(ValueError, match=r"method_names.*needs mode='task'"):
        ModelWrapper.from_model(model, method_names=("forward",))
    with pytest.raises(TypeError, match="engine must be an Engine"):
        ModelWrapper.from_model(model, engine=42)


def test_a_wrapper_pickles_small_and_loads_with_no_warning(model):
    import pickle

    big = torch.nn.Sequential(*[torch.nn.Linear(512, 512) for _ in range(4)])  # 4 MiB
    wrapper = ModelWrapper.from_model(big)
    assert len(pickle.dumps(wrapper)) < 10_000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(wrapper)).load()
    wrapper.release()
