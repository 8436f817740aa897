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
