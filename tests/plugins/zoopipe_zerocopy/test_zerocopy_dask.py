"""Dask sends every worker process its own copy of a shared object: a wrapper shared through a
DaskEngine says so when it loads, rather than copying the weights per worker in silence."""

from __future__ import annotations

from zoopipe_dask import DaskEngine
from zoopipe_zerocopy import ModelWrapper
from zoopipe_zerocopy import testing as zc_models


def test_a_wrapper_shared_through_dask_refuses_to_load_a_private_copy(dask_cluster):
    with DaskEngine(address=dask_cluster.scheduler_address) as engine:
        wrapper = ModelWrapper.from_model(zc_models.TiedLM(), engine=engine)
        assert "DaskEngine.share" in repr(wrapper)
        failure = engine.submit(zc_models.first_weight, wrapper).exception()
    assert isinstance(failure, RuntimeError)
    assert "private copy, not as shared memory" in str(failure)
    assert "multiprocess" in str(failure)
