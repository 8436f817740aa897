"""Exceptions raised by zoopipe. Each message says what failed, where, and what to do."""

from __future__ import annotations


class ZoopipeError(Exception):
    """Base class of every zoopipe error."""


class PipelineError(ZoopipeError):
    """A pipe could not run: bad input file, bad configuration, a failed write.

    Nothing has been published under the output's final name when this is raised.
    """


class PluginError(ZoopipeError):
    """A plugin is missing, unknown, or failed to load."""


class ShardingError(ZoopipeError):
    """An input cannot be split into shards, or outputs cannot be sharded or merged.

    Raised by ``PipeManager.parallelize_pipe`` before anything runs; the message says why and
    what to do instead. There is never a silent fallback to one worker.

    Example:
        >>> from zoopipe_core import PyGeneratorInputAdapter
        >>> PyGeneratorInputAdapter([{"a": 1}]).split(2)
        Traceback (most recent call last):
        ...
        zoopipe_core.errors.ShardingError: records from a Python iterable exist only in this process and cannot be split across workers; write them to a file (JSON Lines, CSV) and parallelize a pipe reading that file
    """
