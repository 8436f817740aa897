"""The offload contract: one suite that :func:`~zoopipe_core.remote` passes, unchanged, on every
engine.

Subclass :class:`OffloadContract` in a test module (name it ``Test...``) and override
:meth:`~OffloadContract.make_engine`; override :meth:`~OffloadContract.make_storage` to run it
through another store than a local directory. The offloaded functions live in
:mod:`zoopipe_core.testing.offload_tasks`, importable on every worker.
"""

from __future__ import annotations

import copy
import hashlib
import re
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from zoopipe_core.engines import Engine, RemoteError
from zoopipe_core.parallel.offload import LocationError, Offload
from zoopipe_core.testing import offload_tasks as tasks
from zoopipe_core.testing.sync import raises


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (or ``root`` itself) by relative path, with its bytes."""
    if root.is_file():
        return {"": root.read_bytes()}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class OffloadContract:
    """The conformance suite of offloaded calls on one engine; subclass it once per engine.

    Override :meth:`make_engine` to return a new, stopped engine with 2 workers. ``self.tmp`` is
    the driver's directory (the local paths), ``self.engine`` is made before each test and shut
    down after it.

    Example:
        >>> from zoopipe_core.engines import MultiProcessEngine
        >>> class TestOffloadOnProcesses(OffloadContract):
        ...     def make_engine(self):
        ...         return MultiProcessEngine(max_workers=2)
        >>> case = TestOffloadOnProcesses()
        >>> case.setup_method()
        >>> case.test_no_deps_and_no_outs()
        >>> case.teardown_method()
    """

    def make_engine(self) -> Engine:
        """A new, stopped engine under test with 2 workers; subclasses override this (the
        contract's one hook, as in MapContract)."""
        raise NotImplementedError(f"{type(self).__name__} must override make_engine()")

    def make_storage(self) -> Any:
        """Where runs store inputs and outputs: by default a directory beside the local paths."""
        return self.tmp / "store"

    def setup_method(self, method: Any = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="zoopipe-offload-test-"))
        self.engine = self.make_engine()

    def teardown_method(self, method: Any = None) -> None:
        self.engine.shutdown()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def offload(self, deps: list[str] = (), outs: list[str] = ()) -> Offload:  # type: ignore[assignment]
        return Offload(deps=deps, outs=outs, engine=self.engine, storage=self.make_storage())

    def data(self, name: str = "data", files: int = 3) -> Path:
        folder = self.tmp / name
        for index in range(files):
            path = folder / ("nested" if index % 2 else "") / f"part-{index}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{name} {index}\n")
        return folder

    # ------------------------------------------------------------------ the round trip

    def test_deps_appear_as_local_paths_and_outs_come_back(self) -> None:
        data = self.data()
        out = self.tmp / "results"
        count = self.offload(["source"], ["target"]).call(tasks.copy_tree, str(data), str(out), suffix="!")
        assert count == 3
        assert tree(out) == {name: content + b"!" for name, content in tree(data).items()}

    def test_two_deps_with_the_same_base_name_do_not_collide(self) -> None:
        first = self.data("a/data")
        second = self.data("b/data")
        (second / "part-0.txt").write_text("only in b\n")
        out = self.tmp / "merged"
        names = self.offload(["first", "second"], ["out"]).call(tasks.merge_two, first, second, out)
        assert names == ["data", "data"]
        assert tree(out / "0") == tree(first)
        assert tree(out / "1") == tree(second)

    def test_dotted_paths_reach_into_a_config_which_is_not_changed(self) -> None:
        config: dict[str, Any] = {
            "data": {"path": str(self.data())},
            "training": {"output_dir": str(self.tmp / "model")},
            "lr": 0.1,
        }
        before = copy.deepcopy(config)
        offload = self.offload(["config.data.path"], ["config.training.output_dir"])
        seen = offload.call(tasks.train, config)
        assert config == before
        assert seen["data"] != config["data"]["path"] and seen["out"] != config["training"]["output_dir"]
        text = (self.tmp / "model" / "model.txt").read_text()
        assert text == "trained on ['nested', 'part-0.txt', 'part-2.txt'] lr=0.1"

    def test_no_deps_and_no_outs(self) -> None:
        assert self.offload().call(tasks.no_paths, 3) == 9

    def test_an_out_may_become_a_single_file(self) -> None:
        out = self.tmp / "report.txt"
        self.offload([], ["out_path"]).call(tasks.write_file_output, out)
        assert out.read_text() == "a single file"

    # ------------------------------------------------------------------ what moves

    def test_an_identical_second_call_moves_no_data(self) -> None:
        data = self.data(files=5)
        out = self.tmp / "results"
        offload = self.offload(["source"], ["target"])
        offload.call(tasks.copy_tree, data, out)
        first = offload.last_run
        assert first is not None and first.inputs_sent == sum(len(v) for v in tree(data).values())
        offload.call(tasks.copy_tree, data, out)
        second = offload.last_run
        assert second is not None
        assert (
            second.inputs_sent,
            second.inputs_fetched,
            second.outputs_stored,
            second.outputs_received,
        ) == (0, 0, 0, 0)
        assert second.run_id == first.run_id
        assert tree(out) == tree(data)

    def test_changing_one_file_moves_one_file(self) -> None:
        data = self.data(files=5)
        out = self.tmp / "results"
        offload = self.offload(["source"], ["target"])
        offload.call(tasks.copy_tree, data, out, suffix="!")
        # New content (never seen by this host's object cache either).
        changed = f"a new first part {uuid.uuid4().hex}\n"
        (data / "part-0.txt").write_text(changed)
        offload.call(tasks.copy_tree, data, out, suffix="!")
        stats = offload.last_run
        assert stats is not None
        moved = (stats.inputs_sent, stats.inputs_fetched, stats.outputs_stored, stats.outputs_received)
        size = len(changed)
        assert moved == (size, size, size + 1, size + 1), moved
        assert tree(out) == {name: content + b"!" for name, content in tree(data).items()}

    # ------------------------------------------------------------------ failures

    def test_a_failing_run_keeps_local_outputs_and_its_original_exception(self) -> None:
        data = self.data()
        out = self.tmp / "results"
        out.mkdir()
        (out / "previous.txt").write_text("from the last good run")
        before = tree(out)
        log = self.tmp / "scratch.txt"
        offload = self.offload(["data_dir"], ["out_dir"])
        error = raises(KeyError, lambda: offload.call(tasks.write_half_then_fail, data, out, str(log)))
        assert "no column 'price' in data" in str(error)
        assert isinstance(error.__cause__, RemoteError)
        assert "write_half_then_fail" in str(error.__cause__)
        assert tree(out) == before
        assert not Path(log.read_text()).exists(), "the worker's scratch directory was not removed"
        half = hashlib.md5(b"half", usedforsecurity=False).hexdigest()
        assert offload.store.missing([half]) == {half}, "a failed run stored its outputs"
        assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".results")) == []

    def test_a_missing_dep_fails_on_the_driver_before_anything_runs(self) -> None:
        offload = self.offload(["source"], ["target"])
        missing = raises(
            FileNotFoundError, lambda: offload.call(tasks.copy_tree, self.tmp / "gone", self.tmp / "out")
        )
        assert re.search(r"dep 'source' of copy_tree is .*gone, which does not exist", str(missing))
        absent = raises(
            LocationError, lambda: self.offload(["config.data.path"]).call(tasks.train, {"data": {}})
        )
        assert "'config.data.path': config.data (dict) has no 'path'" in str(absent)
        unknown = raises(LocationError, lambda: self.offload(["nope"])(tasks.copy_tree))
        assert "'nope' names no parameter of the function" in str(unknown)
        assert not self.engine.is_running, "nothing may be submitted when a dep is missing"

    def test_a_dep_deleted_between_runs_is_an_error_before_submitting(self) -> None:
        data = self.data()
        offload = self.offload(["source"], ["target"])
        offload.call(tasks.copy_tree, data, self.tmp / "out")
        shutil.rmtree(data)
        error = raises(FileNotFoundError, lambda: offload.call(tasks.copy_tree, data, self.tmp / "out"))
        assert "does not exist" in str(error)
        assert tree(self.tmp / "out") != {}

    def test_concurrent_calls_never_share_scratch_or_outputs(self) -> None:
        log = self.tmp / "paths.txt"
        offload = self.offload(["data_dir"], ["out_dir"])
        inputs = [self.data(f"data{i}") for i in range(2)]
        errors: list[BaseException] = []

        def call(index: int) -> None:
            try:
                offload.call(tasks.record_paths, inputs[index], self.tmp / f"out{index}", str(log), delay=0.5)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        for index in range(2):
            assert tree(self.tmp / f"out{index}") == tree(inputs[index])
        lines = log.read_text().split("\n")[:2]
        assert len(set(lines)) == 2 and len({line.split()[0].rsplit("/deps/", 1)[0] for line in lines}) == 2

    def test_a_function_writing_into_its_input_leaves_the_cached_copy_alone(self) -> None:
        data = self.tmp / "input.txt"
        data.write_text("original")
        offload = self.offload(["data_file"])
        offload.call(tasks.overwrite_input, data)
        assert offload.call(tasks.read_file, data) == "original"
        assert data.read_text() == "original"
