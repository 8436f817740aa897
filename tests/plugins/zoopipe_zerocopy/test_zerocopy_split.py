"""Splitting a model or pipeline into a skeleton and its storages, and joining them: bit-exact
outputs for every dtype, tied weights, buffers, TorchScript, and clear errors."""

from __future__ import annotations

import io
import pickle

import pytest
import torch
from zoopipe_zerocopy import testing as zc_models
from zoopipe_zerocopy.split import find_models, join, split
from zoopipe_zerocopy.torchscript import UnshareableModule


def round_trip(obj, **options):
    parts = split(obj, **options)
    # bytearray copies: the join must not depend on the original's memory.
    return parts, join(parts.skeleton, [bytearray(storage) for storage in parts.storages])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_outputs_are_bit_exact_for_each_dtype_and_tied_weights_stay_tied(dtype):
    torch.manual_seed(1)
    model = zc_models.TiedLM().to(dtype)
    parts, loaded = round_trip(model)
    tokens = torch.tensor([[1, 2, 3], [4, 5, 6]])
    with torch.no_grad():
        assert torch.equal(loaded(tokens), model(tokens))
    assert loaded.head.weight is loaded.embed.weight
    assert loaded.embed.weight.dtype == dtype and loaded.temperature.dtype == dtype
    # The tied weight is stored once: embedding, LayerNorm weight and bias, temperature.
    assert len(parts.storages) == 4
    assert parts.nbytes == sum(t.nbytes for t in [*model.parameters(), *model.buffers()])


def test_buffers_and_recurrent_layers_come_back_exact():
    torch.manual_seed(2)
    model = zc_models.Recurrent()
    model.bn.running_mean.uniform_(-1, 1)
    _, loaded = round_trip(model)
    x = torch.randn(3, 5, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert torch.equal(loaded.bn.running_mean, model.bn.running_mean)
    assert loaded.bn.num_batches_tracked.dtype == torch.int64


def test_a_pipeline_keeps_its_attributes_and_its_properties_are_never_evaluated():
    pipeline = zc_models.Pipeline()
    assert sorted(find_models(pipeline)) == [
        "_private",
        "encoder",
        "heads.a",
        "heads.b",
        "stages.0",
        "stages.1",
    ]
    parts, loaded = round_trip(pipeline)
    assert (loaded.label, loaded.threshold) == ("pipeline-v1", 0.25)
    x = torch.randn(4, 8)
    expected, got = pipeline(x), loaded(x)
    assert all(torch.equal(got[name], expected[name]) for name in expected)
    assert parts.nbytes == sum(t.nbytes for t in zc_models.tensors_of(pipeline))


def test_model_attr_names_shares_only_those_models():
    pipeline = zc_models.Pipeline()
    parts, loaded = round_trip(pipeline, model_attr_names=["encoder"])
    assert parts.nbytes == sum(t.nbytes for t in pipeline.encoder.parameters())
    x = torch.randn(2, 8)
    assert torch.equal(loaded(x)["a"], pipeline(x)["a"])


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match=r"holds no torch\.nn\.Module"):
        split(object.__new__(zc_models.Pipeline))
    with pytest.raises(ValueError, match=r"no torch.nn.Module at 'decoder'"):
        split(zc_models.Pipeline(), model_attr_names=["encoder", "decoder"])
    with pytest.raises(ValueError, match="is itself a Linear"):
        split(torch.nn.Linear(2, 2), model_attr_names=["weight"])
    with pytest.raises(TypeError, match="cannot find models in a int"):
        split(3)


def test_torchscript_modules_share_their_parameters_and_buffers():
    torch.manual_seed(3)
    eager = zc_models.TiedLM()
    for scripted in (torch.jit.script(eager), torch.jit.trace(eager, torch.tensor([[1, 2]]))):
        parts, loaded = round_trip(scripted)
        assert isinstance(loaded, torch.jit.ScriptModule)
        tokens = torch.tensor([[3, 4, 5]])
        assert torch.equal(loaded(tokens), scripted(tokens))
        # Only code travels in the skeleton: the weights are all among the shared storages.
        assert parts.nbytes >= eager.embed.weight.nbytes
        assert loaded.embed.weight.data_ptr() == loaded.head.weight.data_ptr()
        # The caller's module is unchanged by the save.
        assert torch.equal(scripted(tokens), eager(tokens))


class CapturesATensor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.table = torch.randn(600, 600)  # a plain attribute: tracing bakes it in as a constant

    def forward(self, x):
        return x @ self.table


def test_a_torchscript_module_whose_tensors_are_graph_constants_is_refused_not_copied():
    traced = torch.jit.trace(CapturesATensor(), torch.randn(1, 600))
    with pytest.raises(UnshareableModule, match=r"graph constants.*register_buffer"):
        split(traced)


def test_a_pipeline_holding_a_scripted_model_pickles_it_without_weights():
    pipeline = zc_models.Pipeline()
    pipeline.encoder = torch.jit.script(pipeline.encoder)
    parts, loaded = round_trip(pipeline)
    x = torch.randn(2, 8)
    assert torch.equal(loaded(x)["b"], pipeline(x)["b"])
    assert parts.nbytes == sum(t.nbytes for t in zc_models.tensors_of(pipeline))
    with pytest.raises(RuntimeError, match="serialize"):  # pickle alone cannot take it
        pickle.dump(pipeline.encoder, io.BytesIO())


def test_the_skeleton_carries_no_weights():
    model = torch.nn.Sequential(*[torch.nn.Linear(256, 256) for _ in range(4)])  # 1 MiB of weights
    parts = split(model)
    assert parts.nbytes == 4 * (256 * 256 + 256) * 4
    assert len(parts.skeleton) < 5_000
