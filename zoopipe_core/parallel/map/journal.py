"""The checkpoint journal of a parallel map: what was computed survives a crash and is not computed again.

The file is append-only: a header (a magic line, then one JSON line with the format version and
a fingerprint of the function), then frames. A frame holds the ``(key, ok, value)`` entries of one
batch: 4-byte big-endian payload length, 4-byte CRC32 of the payload, the payload (one pickle
of the entry list). Workers build the frames (:func:`encode_entries`), so the driver only appends
bytes: a checkpoint costs the driver one write per batch, not work per item.

A run killed while writing leaves a torn last frame; opening the journal again drops it with a
warning (its items are computed again). Keys are stable across processes and interpreter runs
(:func:`item_key`), and so is the fingerprint (:func:`function_fingerprint`): a journal written by
another function is refused, never silently mixed in.

>>> import tempfile, pathlib
>>> tmp = tempfile.TemporaryDirectory()
>>> path = pathlib.Path(tmp.name) / "square.journal"
>>> def square(x):
...     return x * x
>>> fp = function_fingerprint(square)
>>> with Journal.open(path, fp, "square") as journal:
...     journal.write(encode_entries([(item_key(x), True, square(x)) for x in (2, 3)]))
>>> with Journal.open(path, fp, "square") as journal:
...     journal.recorded == {"i:2": (True, 4), "i:3": (True, 9)}
True
>>> tmp.cleanup()
"""

from __future__ import annotations

import datetime
import functools
import json
import pickle
import struct
import threading
import types
import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

JOURNAL_FORMAT = 2
#: The formats this version reads: 2 added frames that store a slice of a range by its bounds.
READABLE_FORMATS = frozenset({1, 2})

# The first line of every journal: a file that does not start with it is no journal of ours.
_MAGIC = b"ZOOPIPE-MAP-JOURNAL\n"
_FRAME_HEAD = struct.Struct(">II")  # payload length, CRC32 of the payload
# Pickle protocol of the frames and of argument digests: fixed, so equal inputs give equal bytes.
_PICKLE_PROTOCOL = 4
# Strings and bytes longer than this are hashed in keys, so a key stays small in the journal.
_LONG = 64
# Arguments a frame may store as they are (their keys are derived when read back).
_SCALAR_ARGS = frozenset({int, float, bool, type(None), str, bytes})
_SIZED = frozenset({str, bytes})


class CheckpointMismatch(ValueError):
    """The checkpoint file was written by another function, in another format, or is no journal.

    >>> issubclass(CheckpointMismatch, ValueError)
    True
    """


# ---------------------------------------------------------------------------------------------
# The fingerprint and the label of a function


def _digest() -> Any:
    import hashlib  # here, not at the top: a worker that only writes frames never needs it

    return hashlib.blake2b(digest_size=16)


def _feed_const(h: Any, value: Any) -> None:
    """Feed one constant of a code object into ``h``, the same bytes in every process: nested code
    is digested like the function's own, and frozensets (``x in {"a", "b"}``) are sorted, since
    their iteration order follows the per-process string hash."""
    if isinstance(value, types.CodeType):
        h.update(b"C")
        _feed_code(h, value)
    elif isinstance(value, tuple):
        h.update(b"T%d(" % len(value))
        for item in value:
            _feed_const(h, item)
        h.update(b")")
    elif isinstance(value, frozenset):
        parts = []
        for item in value:
            sub = _digest()
            _feed_const(sub, item)
            parts.append(sub.digest())
        h.update(b"F%d(" % len(parts))
        for part in sorted(parts):
            h.update(part)
        h.update(b")")
    else:
        text = f"{type(value).__name__}:{value!r}".encode("utf-8", "surrogatepass")
        h.update(b"V%d:" % len(text))
        h.update(text)


def _feed_code(h: Any, code: types.CodeType) -> None:
    h.update(b"%d:" % len(code.co_code))
    h.update(code.co_code)
    _feed_const(h, tuple(code.co_consts))
    _feed_const(h, tuple(code.co_names))


def _name_of(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__name__
    return f"{module}.{qualname}"


def function_fingerprint(fn: Callable[..., Any]) -> str:
    """A fingerprint of ``fn``: equal for the same code in any process or interpreter run, different
    when its code changes.

    Python functions: module, qualified name and a digest of their bytecode, constants (nested
    functions included) and names. ``functools.partial``: the function's fingerprint and a digest
    of the pickled arguments. A callable instance: its class's ``__call__``. Builtins: module and
    qualified name. No ``id()`` or string ``hash()``, which change from one process to the next.

    >>> def square(x):
    ...     return x * x
    >>> function_fingerprint(square) == function_fingerprint(square)
    True
    >>> function_fingerprint(square).split(":")[0]
    'zoopipe_core.parallel.map.journal.square'
    >>> function_fingerprint(len)
    'builtins.len'
    >>> function_fingerprint(functools.partial(pow, 2)) != function_fingerprint(functools.partial(pow, 3))
    True
    """
    if isinstance(fn, functools.partial):
        try:
            bound = _canonical((fn.args, fn.keywords))
        except Exception as exc:
            raise TypeError(
                f"cannot fingerprint {function_label(fn)} for a checkpoint: its bound arguments "
                f"do not pickle ({type(exc).__name__}: {exc}); bind them inside a module-level function instead"
            ) from exc
        return f"partial({function_fingerprint(fn.func)}):{_blake2b_hex(bound)}"
    if isinstance(fn, types.MethodType):
        return function_fingerprint(fn.__func__)
    code = getattr(fn, "__code__", None)
    if isinstance(code, types.CodeType):
        h = _digest()
        _feed_code(h, code)
        return f"{_name_of(fn)}:{h.hexdigest()}"
    if isinstance(fn, type | types.BuiltinFunctionType | types.BuiltinMethodType) or not callable(fn):
        return _name_of(fn)
    call = type(fn).__call__  # a callable instance: the code of its class's method
    if isinstance(getattr(call, "__code__", None), types.CodeType):
        return f"{_name_of(type(fn))}()/{function_fingerprint(call)}"
    return _name_of(fn)


def function_label(fn: Callable[..., Any]) -> str:
    """A human name for ``fn`` in messages.

    >>> function_label(len)
    'builtins.len'
    >>> function_label(functools.partial(pow, 2))
    'functools.partial(builtins.pow)'
    """
    if isinstance(fn, functools.partial):
        return f"functools.partial({function_label(fn.func)})"
    if isinstance(fn, types.MethodType | types.FunctionType | types.BuiltinFunctionType | type):
        return _name_of(fn)
    return f"{_name_of(type(fn))} instance"


# ---------------------------------------------------------------------------------------------
# Keys of arguments

_SCALARS = (int, str, bytes, float, bool, type(None))


def _is_plain(value: Any) -> bool:
    """True for values of the fast path: exact scalars and tuples of them, whose repr is stable."""
    t = type(value)
    if t is tuple:
        return all(_is_plain(v) for v in value)
    return t in _SCALARS and not (t is int and value.bit_length() > 128)


def _canonical(value: Any) -> bytes:
    """Bytes equal for equal arguments in any process: containers are walked so that dict
    insertion order and set iteration order (per-process string hashing) do not count; any other
    object is pickled."""
    t = type(value)
    if _is_plain(value):
        return b"r" + repr(value).encode("utf-8", "surrogatepass")
    if t is tuple or t is list:
        return (
            b"%c%d(" % (b"t" if t is tuple else b"l", len(value)) + b"".join(_framed(v) for v in value) + b")"
        )
    if t is dict:
        items = sorted(_framed(k) + _framed(v) for k, v in value.items())
        return b"d%d(" % len(items) + b"".join(items) + b")"
    if t is set or t is frozenset:
        members = sorted(_framed(v) for v in value)
        return b"%c%d(" % (b"s" if t is set else b"f", len(members)) + b"".join(members) + b")"
    return b"p" + pickle.dumps(value, protocol=_PICKLE_PROTOCOL)


def _framed(value: Any) -> bytes:
    data = _canonical(value)
    return b"%d:" % len(data) + data


def _hashed(tag: str, data: bytes) -> str:
    return f"{tag}:{_blake2b_hex(data)}"


def _blake2b_hex(data: bytes) -> str:
    digest = _digest()
    digest.update(data)
    return str(digest.hexdigest())


def item_key(arg: Any, key: Callable[[Any], Any] | None = None) -> str:
    """The journal key of one argument: equal across processes and interpreter runs for equal
    arguments, type-tagged so that ``1``, ``1.0``, ``True`` and ``"1"`` differ.

    With ``key``, ``key(arg)`` names the argument; it must return a ``str``, an ``int`` or
    ``bytes`` (written as hex). Without it, scalars, tuples of scalars and dicts of them are
    written out (long ones hashed); any other argument is a blake2b digest of its pickle, with the
    dicts and sets it is made of put in a canonical order first. An object of another class is
    pickled as it is: one that holds a set of strings may pickle differently in another process
    (the set's order follows the per-process string hash), so give such arguments a ``key``.

    >>> item_key(42), item_key("abc"), item_key(1.0), item_key(None), item_key((1, "a"))
    ('i:42', 's:abc', 'f:1.0', 'n:', "t:(1, 'a')")
    >>> item_key({"b": 2, "a": 1}), item_key({"a": 1, "b": 2})
    ("d:[('a', 1), ('b', 2)]", "d:[('a', 1), ('b', 2)]")
    >>> item_key({"a": {1, 2}}) == item_key({"a": {2, 1}})
    True
    >>> item_key({"id": 7, "name": "x"}, key=lambda d: d["id"])
    '7'
    """
    if key is not None:
        k = key(arg)
        if isinstance(k, str):
            return k
        if isinstance(k, int):
            return str(k)
        if isinstance(k, bytes):
            return k.hex()
        raise TypeError(
            f"the checkpoint key of argument {_short_repr(arg)} is {type(k).__name__} {_short_repr(k)}: "
            "key must return a str, int or bytes that names the argument"
        )
    t = type(arg)
    # Fast paths, no hashing: the common arguments of a map.
    if t is int:
        if arg.bit_length() <= 128:
            return f"i:{arg}"
        return _hashed("I", b"%x" % arg)
    if t is str:
        if len(arg) <= _LONG:
            return f"s:{arg}"
        return _hashed("S", arg.encode("utf-8", "surrogatepass"))
    if t is float:
        return f"f:{arg!r}"
    if t is bool:
        return "b:1" if arg else "b:0"
    if arg is None:
        return "n:"
    if t is bytes:
        if len(arg) <= _LONG // 2:
            return f"x:{arg.hex()}"
        return _hashed("X", arg)
    if t is tuple and _is_plain(arg):
        text = repr(arg)
        if len(text) <= _LONG:
            return f"t:{text}"
        return _hashed("T", text.encode("utf-8", "surrogatepass"))
    if t is dict and all(type(k) is str and _is_plain(v) for k, v in arg.items()):
        # Keyword arguments: sorted, so that insertion order does not count.
        text = repr(sorted(arg.items()))
        if len(text) <= _LONG:
            return f"d:{text}"
        return _hashed("D", text.encode("utf-8", "surrogatepass"))
    try:
        data = _canonical(arg)
    except RecursionError:
        raise
    except Exception as exc:
        raise TypeError(
            f"cannot make a checkpoint key of argument {_short_repr(arg)}: it does not pickle "
            f"({type(exc).__name__}: {exc}); pass key= to ParallelMap, a function that returns a "
            "stable str, int or bytes naming each argument"
        ) from exc
    return _hashed("p", data)


def _short_repr(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Frames


def encode_entries(entries: Sequence[tuple[str, bool, Any]]) -> bytes:
    """One journal frame holding ``(key, ok, value)`` entries: 4-byte big-endian payload length,
    4-byte CRC32 of the payload, then the payload, one pickle of the whole list (one pickle per
    frame, not per item, is what keeps checkpoints cheap).

    >>> frame = encode_entries([("i:2", True, 4)])
    >>> len(frame) == 8 + int.from_bytes(frame[:4], "big")
    True
    >>> encode_entries([("i:1", True, 1), ("i:2", True, lambda: 0)])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: the result of the item with checkpoint key 'i:2' does not pickle ...
    """
    items = entries if isinstance(entries, list) else list(entries)
    try:
        payload = pickle.dumps(items, protocol=_PICKLE_PROTOCOL)
    except Exception as exc:
        raise _unpicklable(items, exc) from exc
    if len(payload) >= 1 << 32:
        raise ValueError(
            f"a journal frame of {len(items)} entries is {len(payload)} bytes, over the 4 GiB a frame "
            "holds; use a smaller batch_size"
        )
    return _FRAME_HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def encode_batch(
    args: Sequence[Any],
    values: Sequence[Any],
    failures: dict[int, Any],
    key: Callable[[Any], Any] | None = None,
    *,
    kinds: set[type] | None = None,
) -> bytes:
    """One journal frame holding a whole batch, by column: ``values[i]`` is the result of
    ``args[i]``, or ``failures[i]`` its failure. Framed as :func:`encode_entries`.

    A batch of plain scalar arguments (ints, floats, short strings...) stores the arguments
    themselves, whose keys the reader derives: a checkpoint then costs the worker one pickle of
    three lists, not a key and a tuple per item; a slice of a range (how a map over ``range(n)``
    sends its batches) is stored as its first value and count. Any other batch stores its
    keys. ``kinds``, the set of the arguments' types when the caller has it, saves looking at
    them again.

    >>> frame = encode_batch([2, 3], [4, None], {1: "failed"})
    >>> _decode(frame[8:]) == [("i:2", True, 4), ("i:3", False, "failed")]
    True
    """
    if key is None and _range_slice(args):
        columns: tuple[Any, ...] = ("range", (args[0], len(args)), list(values), dict(failures))
    elif key is None and _all_short_scalars(args, kinds):
        columns = ("args", list(args), list(values), dict(failures))
    else:
        columns = ("keys", [item_key(a, key) for a in args], list(values), dict(failures))
    try:
        payload = pickle.dumps(columns, protocol=_PICKLE_PROTOCOL)
    except Exception as exc:
        keys = columns[1] if columns[0] == "keys" else [item_key(a) for a in args]
        raise _unpicklable(list(zip(keys, [True] * len(keys), values, strict=True)), exc) from exc
    if len(payload) >= 1 << 32:
        raise ValueError(
            f"a journal frame of {len(values)} entries is {len(payload)} bytes, over the 4 GiB a frame "
            "holds; use a smaller batch_size"
        )
    return _FRAME_HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def batch_outputs(frame: bytes) -> tuple[list[Any], dict[int, Any]]:
    """The values and failures (by position) of a frame :func:`encode_batch` made.

    >>> batch_outputs(encode_batch(["a", "b"], [1, None], {1: "failed"}))
    ([1, None], {1: 'failed'})
    """
    _layout, _names, values, failures = pickle.loads(memoryview(frame)[_FRAME_HEAD.size :])
    return values, failures


def _range_slice(args: Sequence[Any]) -> bool:
    """True when ``args`` is a slice of a range of step 1 (a map over ``range(n)`` sends its
    batches as such slices), so its bounds say it all."""
    return isinstance(args, range) and args.step == 1 and len(args) > 0


def _all_short_scalars(args: Sequence[Any], kinds: set[type] | None = None) -> bool:
    """True when every argument is a scalar a frame may store as it is (strings and bytes only
    when short). Type by type, at C speed: this runs once per batch on the worker."""
    if kinds is None:
        kinds = set(map(type, args))
    if not kinds <= _SCALAR_ARGS:
        return False
    if kinds & _SIZED:
        return max(len(a) for a in args if type(a) in _SIZED) <= _LONG
    return True


def _decode(payload: bytes) -> list[tuple[str, bool, Any]]:
    """The ``(key, ok, value)`` entries of a frame's payload, of either layout."""
    data = pickle.loads(payload)
    if isinstance(data, list):  # encode_entries
        return data
    layout, names, values, failures = data
    if layout == "range":
        first, count = names
        names = range(first, first + count)
    keys = names if layout == "keys" else [item_key(a) for a in names]
    return [(k, False, failures[i]) if i in failures else (k, True, values[i]) for i, k in enumerate(keys)]


def _unpicklable(items: list[tuple[str, bool, Any]], exc: Exception) -> Exception:
    """The error naming the first entry that does not pickle (found only once pickling failed)."""
    for k, _ok, value in items:
        try:
            pickle.dumps(value, protocol=_PICKLE_PROTOCOL)
        except Exception as cause:
            return TypeError(
                f"the result of the item with checkpoint key {k!r} does not pickle "
                f"({type(cause).__name__}: {cause}), so it cannot be written to the checkpoint; "
                "return a picklable value or run without checkpoint_path"
            )
    return TypeError(f"journal entries do not pickle ({type(exc).__name__}: {exc})")


# ---------------------------------------------------------------------------------------------
# The journal file


class JournalClosed(ValueError):
    """A frame was written to a journal already closed (its map run ended)."""


class Journal:
    """An open checkpoint journal: what earlier runs recorded, and appending new frames.

    ``recorded`` maps each key to ``(ok, value)``; a later entry of a key wins.

    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(tmp.name) / "runs" / "f.journal"
    >>> with Journal.open(path, "fp-1", "mod.f") as journal:
    ...     journal.write(encode_entries([("i:1", True, "one"), ("i:2", False, ValueError("bad"))]))
    >>> with Journal.open(path, "fp-1", "mod.f") as journal:
    ...     journal.recorded["i:1"]
    (True, 'one')
    >>> Journal.open(path, "fp-2", "mod.g")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    zoopipe_core.parallel.map.journal.CheckpointMismatch: ... was written by mod.f, another function...
    >>> tmp.cleanup()
    """

    def __init__(self, path: Path, file: IO[bytes], recorded: dict[str, tuple[bool, Any]]) -> None:
        self.path = path
        self.recorded = recorded
        self._file: IO[bytes] | None = file
        self._lock = threading.Lock()  # the map's loop writes; close() may come from another thread

    @classmethod
    def open(cls, path: str | Path, fingerprint: str, function_name: str) -> Journal:
        """Open the journal at ``path`` for ``function_name`` (whose fingerprint is
        ``fingerprint``), creating it with its header when missing or empty, and read what it
        recorded. See the class docstring."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes() if path.exists() else b""
        if data and _torn_header(data):
            warnings.warn(
                f"checkpoint journal {path}: its header is incomplete (a run stopped while creating "
                f"it; {len(data)} bytes); starting it afresh",
                RuntimeWarning,
                stacklevel=2,
            )
            data = b""
        if not data:
            header = {
                "format": JOURNAL_FORMAT,
                "function": function_name,
                "fingerprint": fingerprint,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            }
            with open(path, "wb") as f:
                f.write(_MAGIC + json.dumps(header).encode() + b"\n")
            return cls(path, open(path, "ab"), {})
        start = _check_header(path, data, fingerprint, function_name)
        recorded, end = _read_frames(path, data, start)
        if end < len(data):
            # Cut the torn frame off, so that what is appended next starts at a frame boundary.
            with open(path, "r+b") as f:
                f.truncate(end)
        return cls(path, open(path, "ab"), recorded)

    def write(self, frame: bytes) -> None:
        """Append one frame made by :func:`encode_entries`, and flush it to the operating system.
        Thread-safe."""
        with self._lock:
            if self._file is None:
                raise JournalClosed(f"checkpoint journal {self.path} is closed; cannot write to it")
            self._file.write(frame)
            self._file.flush()

    def close(self) -> None:
        """Close the file; closing again does nothing."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, {len(self.recorded)} recorded)"


def _torn_header(data: bytes) -> bool:
    """True when ``data`` is the beginning of a header cut short: the magic line or the JSON line
    without its end (a run stopped while creating the file; nothing was recorded yet)."""
    if len(data) < len(_MAGIC):
        return _MAGIC.startswith(data)
    return data.startswith(_MAGIC) and b"\n" not in data[len(_MAGIC) :]


def _check_header(path: Path, data: bytes, fingerprint: str, function_name: str) -> int:
    """Check the header of ``data`` against this function; return where the frames start."""
    import json

    advice = "delete the file to start over, or choose another checkpoint_path"
    if not data.startswith(_MAGIC):
        raise CheckpointMismatch(
            f"checkpoint file {path} is not a zoopipe map journal (it begins with {data[:20]!r}); "
            f"{advice} (it is left untouched)"
        )
    end = data.index(b"\n", len(_MAGIC))
    try:
        header = json.loads(data[len(_MAGIC) : end])
        written_format, written_by, written_fp = header["format"], header["function"], header["fingerprint"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointMismatch(
            f"checkpoint file {path} has an unreadable journal header ({type(exc).__name__}: {exc}); {advice}"
        ) from exc
    if written_format not in READABLE_FORMATS:
        readable = " and ".join(map(str, sorted(READABLE_FORMATS)))
        raise CheckpointMismatch(
            f"checkpoint file {path} was written by {written_by} in journal format {written_format}; this "
            f"version of zoopipe reads formats {readable}, for {function_name}; {advice}"
        )
    if written_fp != fingerprint:
        whose = (
            f"another version of {function_name} (its code or bound arguments changed)"
            if written_by == function_name
            else f"{written_by}, another function"
        )
        raise CheckpointMismatch(
            f"checkpoint file {path} was written by {whose}, not by this {function_name}, so its results "
            f"cannot be reused; {advice}"
        )
    return end + 1


def _read_frames(path: Path, data: bytes, pos: int) -> tuple[dict[str, tuple[bool, Any]], int]:
    """The entries of the frames of ``data`` from ``pos``, and where the last whole frame ends.
    A torn last frame is dropped with a warning; a bad frame before the end is corruption."""
    recorded: dict[str, tuple[bool, Any]] = {}
    size = len(data)
    head = _FRAME_HEAD.size
    while pos < size:
        problem = None
        if size - pos < head:
            problem = "its frame header is cut short"
        else:
            length, crc = _FRAME_HEAD.unpack_from(data, pos)
            end = pos + head + length
            if end > size:
                problem = f"it is cut short ({size - pos - head} of its {length} bytes)"
            elif zlib.crc32(data[pos + head : end]) != crc:
                if end < size:
                    raise ValueError(
                        f"checkpoint journal {path} is corrupt: the frame at byte {pos} fails its CRC check "
                        "and more frames follow it; delete the file to start over"
                    )
                problem = "it fails its CRC check"
        if problem is not None:
            warnings.warn(
                f"checkpoint journal {path}: the last record, at byte {pos}, is torn ({problem}; a run "
                f"stopped while writing it); dropped its {size - pos} bytes, its items will be computed again",
                RuntimeWarning,
                stacklevel=3,
            )
            return recorded, pos
        try:
            entries = _decode(data[pos + head : end])
        except Exception as exc:
            raise ValueError(
                f"checkpoint journal {path}: the frame at byte {pos} cannot be read back "
                f"({type(exc).__name__}: {exc}); if a module its results need is missing, install it, "
                "otherwise delete the file to start over"
            ) from exc
        recorded.update((k, (ok, value)) for k, ok, value in entries)
        pos = end
    return recorded, pos
