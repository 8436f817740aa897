"""Dask sends every worker process its own copy of a shared object: wrapping a model for a
DaskEngine is refused up front, rather than copying the weights per worker in silence."""

from __future__ import annotations

import pytest
from zoopipe_dask import DaskEngine
from zoopipe_zerocopy import ModelWrapper
from zoopipe_zerocopy import testing as zc_models


def test_wrapping_for_a_dask_engine_is_refused_with_the_engines_that_share_memory(dask_cluster):
    assert DaskEngine.shares_memory is False
    with (
        DaskEngine(address=dask_cluster.scheduler_address) as engine,
        pytest.raises(ValueError, match=r"its own copy.*'multiprocess', 'ray'"),
    ):
        ModelWrapper.from_model(zc_models.TiedLM(), engine=engine)
