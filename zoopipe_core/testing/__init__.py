"""The contract test suites, and what they run: an engine, or a PipeManager on an engine, passes
its suite unchanged.

- :class:`EngineContract` (``engine_contract``): the engine interface's conformance suite.
- :class:`PipeManagerContract` (``manager_contract``): the PipeManager suite, on any engine.
- ``tasks``: the engine suite's tasks, module-level functions workers import by path.
- ``pipes``: the manager suite's schema, input files and transforms.
- ``sync``: waiting for files the driver and workers share (:func:`wait_for`, :func:`touch`).

Example:
    >>> from zoopipe_core.testing import EngineContract, PipeManagerContract, WAIT
    >>> WAIT
    30.0
"""

from __future__ import annotations

from zoopipe_core.testing.engine_contract import EngineContract
from zoopipe_core.testing.manager_contract import PipeManagerContract
from zoopipe_core.testing.pipes import (
    HoldAfterFirstBatch,
    KillOnce,
    LogRecords,
    NeverEnds,
    UserSchema,
    read_lines,
    write_users,
)
from zoopipe_core.testing.sync import WAIT, ContractFailure, raises, touch, wait_for
from zoopipe_core.testing.tasks import (
    UnpicklableTaskError,
    add,
    describe_shared,
    ignore_stop_requests,
    import_attribute,
    kill_own_process,
    raise_unpicklable,
    raise_value_error,
    read_env,
    report_then_wait,
    wait_for_flag,
    wait_for_others,
    where_am_i,
)

__all__ = [
    "WAIT",
    "ContractFailure",
    "EngineContract",
    "HoldAfterFirstBatch",
    "KillOnce",
    "LogRecords",
    "NeverEnds",
    "PipeManagerContract",
    "UnpicklableTaskError",
    "UserSchema",
    "add",
    "describe_shared",
    "ignore_stop_requests",
    "import_attribute",
    "kill_own_process",
    "raise_unpicklable",
    "raise_value_error",
    "raises",
    "read_env",
    "read_lines",
    "report_then_wait",
    "touch",
    "wait_for",
    "wait_for_flag",
    "wait_for_others",
    "where_am_i",
    "write_users",
]
