"""The contenders of the benchmark scenarios.

Each module exposes ``build(job, **options) -> TimedBody``: anything that must not be timed
(pre-parsing for the floor, say) happens inside ``build``; the returned zero-argument callable is
the timed work and returns ``(valid_count, error_count)``. A contender whose third-party package
is missing fails at import with ImportError, which the runner reports as "not installed".
"""
