"""Small models, pipelines and worker-side probes for testing zero-copy sharing: importable by
every worker process (Ray's workers cannot import a test folder).

Example:
    >>> import torch
    >>> from zoopipe_zerocopy import ModelWrapper
    >>> wrapper = ModelWrapper.from_model(TiedLM())
    >>> sorted(where_weights_live(wrapper.load())["places"])
    ['embed.weight', 'norm.bias', 'norm.weight']
    >>> wrapper.release()
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from zoopipe_zerocopy import cow


class TiedLM(torch.nn.Module):
    """An embedding tied to the output layer, a LayerNorm, and a buffer.

    Example:
        >>> model = TiedLM()
        >>> model.head.weight is model.embed.weight, model(torch.tensor([[1, 2]])).shape
        (True, torch.Size([1, 2, 50]))
    """

    def __init__(self, vocabulary: int = 50, width: int = 16):
        super().__init__()
        self.embed = torch.nn.Embedding(vocabulary, width)
        self.norm = torch.nn.LayerNorm(width)
        self.head = torch.nn.Linear(width, vocabulary, bias=False)
        self.head.weight = self.embed.weight
        self.register_buffer("temperature", torch.tensor([0.5]))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.embed(tokens))) / self.temperature


class Recurrent(torch.nn.Module):
    """An LSTM and a BatchNorm (running statistics are buffers) in eval mode.

    Example:
        >>> Recurrent()(torch.zeros(2, 3, 8)).shape
        torch.Size([2, 12])
    """

    def __init__(self) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(8, 12, batch_first=True)
        self.bn = torch.nn.BatchNorm1d(12)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.bn(out[:, -1])


class Pipeline:
    """What users call a pipeline: models as attributes, private attributes, in a dict and a
    list, next to plain attributes and a property that must never be evaluated.

    Example:
        >>> sorted(Pipeline()(torch.zeros(1, 8)))
        ['a', 'b']
    """

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.encoder = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 8))
        self._private = torch.nn.Linear(8, 8)
        self.heads = {"a": torch.nn.Linear(8, 2), "b": torch.nn.Linear(8, 3)}
        self.stages = [torch.nn.Linear(8, 8), torch.nn.Tanh()]
        self.label = "pipeline-v1"
        self.threshold = 0.25

    @property
    def expensive(self) -> None:
        raise AssertionError("a property of the pipeline was evaluated")

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            hidden = self._private(self.encoder(x))
            for stage in self.stages:
                hidden = stage(hidden)
            return {name: head(hidden) for name, head in self.heads.items()}


def tensors_of(pipeline: Pipeline) -> list[torch.Tensor]:
    modules = [pipeline.encoder, vars(pipeline)["_private"], *pipeline.heads.values(), *pipeline.stages]
    return [t for module in modules for t in [*module.parameters(), *module.buffers()]]


def where_weights_live(loaded: torch.nn.Module) -> dict[str, object]:
    """This process's pid and, for each parameter, the shared file and offset its bytes map."""
    places = {}
    for name, tensor in loaded.named_parameters():
        mapping = cow.mapping_of(tensor.data_ptr())
        places[name] = (mapping.inode, mapping.offset + tensor.data_ptr() - mapping.start, mapping.path)
    return {"pid": os.getpid(), "places": places}


def load_and_locate(wrapper) -> dict[str, object]:
    return where_weights_live(wrapper.load())


def write_in_place(wrapper, value: float) -> float:
    """Add ``value`` in place to the first weight in this worker; return what it now reads."""
    model = wrapper.load()
    with torch.no_grad():
        model.embed.weight.add_(value)
        model.load_state_dict({name: t + 0 for name, t in model.state_dict().items()})
        return float(model.embed.weight[0, 0])


def write_while_another_reads(wrapper, folder: str, writer: bool) -> float:
    """Two workers at once: the writer adds 10 in place, then the reader reads what it sees."""
    import pathlib
    import time

    model = wrapper.load()
    meet(folder, 2)
    signal = pathlib.Path(folder, "written")
    if writer:
        with torch.no_grad():
            model.embed.weight.add_(10.0)
        signal.touch()
    else:
        while not signal.exists():
            time.sleep(0.02)
    return float(model.embed.weight[0, 0])


def first_weight(wrapper) -> float:
    with torch.no_grad():
        return float(wrapper.load().embed.weight[0, 0])


def run_tied(wrapper, tokens: list[list[int]]) -> torch.Tensor:
    with torch.no_grad():
        return wrapper.load()(torch.tensor(tokens))


def meet(folder: str, count: int, timeout: float = 60.0) -> None:
    """Wait until ``count`` processes have called this with the same folder (a file barrier), so
    that tasks are known to run in distinct worker processes at once."""
    import pathlib
    import time

    pathlib.Path(folder, str(os.getpid())).touch()
    deadline = time.monotonic() + timeout
    while len(list(pathlib.Path(folder).iterdir())) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(list(pathlib.Path(folder).iterdir()))} of {count} workers met")
        time.sleep(0.02)


def locate_after_meeting(wrapper, folder: str, count: int) -> dict[str, object]:
    """Load, then wait for the other workers: each report comes from a distinct process."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = wrapper.load()
    meet(folder, count)
    report = where_weights_live(model)
    report["warnings"] = [str(w.message) for w in caught]
    return report


class Scorer:
    """A pipe transform holding a wrapper: scores each record with the shared model.

    Example:
        >>> from zoopipe_zerocopy import ModelWrapper
        >>> wrapper = ModelWrapper.from_model(TiedLM())
        >>> [sorted(record) for record in Scorer(wrapper)([{"token": 3}])]
        [['best', 'pid', 'token']]
        >>> wrapper.release()
    """

    def __init__(self, wrapper) -> None:
        self.wrapper = wrapper

    def __call__(self, records: list[dict]) -> list[dict]:
        model = self.wrapper.load()
        with torch.no_grad():
            logits = model(torch.tensor([[r["token"]] for r in records]))
        return [
            {**r, "best": int(row[0].argmax()), "pid": os.getpid()}
            for r, row in zip(records, logits, strict=True)
        ]


def driver_memory_of_wrapping(prelude: str = "") -> tuple[int, int, str]:
    """In a Python of its own: run ``prelude``, then wrap a 192 MiB model with
    ``ModelWrapper.from_model(model)``. Returns the model's bytes, how much the process's peak
    resident memory grew while wrapping, and where the weights went (the wrapper's repr)."""
    script = "\n".join(
        [
            "import resource, torch",
            "from zoopipe_zerocopy import ModelWrapper",
            prelude,
            "model = torch.nn.Sequential(*[torch.nn.Linear(2048, 2048) for _ in range(12)])",
            "size = sum(p.nbytes for p in model.parameters())",
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024",
            "wrapper = ModelWrapper.from_model(model)",
            "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024",
            "print(size, peak - before, repr(wrapper), sep='\\n')",
            "wrapper.release()",
        ]
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        raise RuntimeError(f"the measuring driver failed: {run.stderr[-3000:]}")
    size, growth, where = run.stdout.strip().splitlines()[-3:]
    return int(size), int(growth), where
