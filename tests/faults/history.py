"""The record of what clients asked for and what they saw.

This module owns the operation record, the thread-safe recorder that fault
tests write into while clients run concurrently, and the JSON-lines file
format that lets a recorded history be checked again later. It knows nothing
about sockets, servers or consistency models: it only records.

Outcomes:
- "ok": the operation completed and its output was observed.
- "fail": the operation definitely did not take effect (for example the
  server rejected it before proposing it).
- "unknown": the client sent the operation and then lost track of it (a
  timeout, a dropped connection). It may take effect at any later time, or
  never, so checkers treat its return time as +infinity.

Times are integers from one monotonic clock in nanoseconds
(`time.monotonic_ns` unless a test injects another clock).
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

OUTCOME_OK = "ok"
OUTCOME_FAIL = "fail"
OUTCOME_UNKNOWN = "unknown"
OUTCOMES = frozenset({OUTCOME_OK, OUTCOME_FAIL, OUTCOME_UNKNOWN})

# Operations one History accepts; invoke() beyond this raises HistoryFullError
# rather than silently dropping records (a dropped record corrupts the check).
HISTORY_OPERATIONS_MAX = 1_000_000

FILE_FORMAT = "tandemkv-history"
FILE_FORMAT_VERSION = 1


class HistoryFullError(RuntimeError):
    """The recorder already holds HISTORY_OPERATIONS_MAX (or its configured
    limit) operations. The test's workload is larger than its history."""


@dataclasses.dataclass(frozen=True)
class Operation:
    """One client operation on one key, as the client saw it.

    `input` and `output` are plain values (None, bool, int, float, str,
    bytes, tuples, frozensets). For a compare-and-set the input is
    `(expected, new)` and the output whether the swap happened. `return_ns`
    is when the client stopped waiting; for an unknown outcome it is only
    informative (see `return_bound_ns`) and may be None.
    """

    op_id: int
    process: int | str
    key: str
    kind: str
    input: Any
    output: Any
    invoke_ns: int
    return_ns: int | None
    outcome: str

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not one of {sorted(OUTCOMES)}")
        if self.outcome != OUTCOME_UNKNOWN:
            if self.return_ns is None:
                raise ValueError(f"operation {self.op_id}: a {self.outcome} outcome needs a return time")
            if self.return_ns < self.invoke_ns:
                raise ValueError(f"operation {self.op_id}: returns before it is invoked")

    @property
    def return_bound_ns(self) -> float:
        """The latest time the operation can take effect: its return time if
        it completed, +infinity if its outcome is unknown."""
        if self.outcome == OUTCOME_UNKNOWN:
            return math.inf
        assert self.return_ns is not None
        return self.return_ns

    def describe(self) -> str:
        """A one-line human reading, e.g. `#7 p2 write('k', 3) -> None ok [10, 12]`."""
        end = "inf" if self.outcome == OUTCOME_UNKNOWN else str(self.return_ns)
        return (
            f"#{self.op_id} p{self.process} {self.kind}({self.key!r}, {self.input!r})"
            f" -> {self.output!r} {self.outcome} [{self.invoke_ns}, {end}]"
        )


@dataclasses.dataclass(frozen=True)
class _Pending:
    op_id: int
    process: int | str
    key: str
    kind: str
    input: Any
    invoke_ns: int


class History:
    """A thread-safe recorder of concurrent operations.

    Each client thread calls `invoke()` just before sending a request and
    exactly one of `ok()`, `fail()` or `unknown()` with the returned handle
    after it learns (or gives up on) the result. Operations still pending
    when `operations()` is called are reported as unknown.

    Example:
        history = History(seed=42)
        handle = history.invoke(process=1, key="k", kind="write", input=5)
        history.ok(handle)
        history.save(Path("run.jsonl"))
    """

    def __init__(
        self,
        seed: int | None = None,
        *,
        operations_max: int = HISTORY_OPERATIONS_MAX,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        assert operations_max > 0
        self.seed = seed
        self.operations_max = operations_max
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self._next_id = 0
        self._pending: dict[int, _Pending] = {}
        self._completed: list[Operation] = []

    def invoke(self, process: int | str, key: str, kind: str, input: Any = None) -> int:
        """Record that `process` is about to send `kind` on `key`; returns
        the handle to complete it with."""
        with self._lock:
            if self._next_id >= self.operations_max:
                raise HistoryFullError(f"history holds its limit of {self.operations_max} operations")
            op_id = self._next_id
            self._next_id += 1
            self._pending[op_id] = _Pending(op_id, process, key, kind, freeze(input), self._clock_ns())
            return op_id

    def ok(self, handle: int, output: Any = None) -> Operation:
        """The operation completed and returned `output`."""
        return self._complete(handle, output, OUTCOME_OK)

    def fail(self, handle: int, output: Any = None) -> Operation:
        """The operation definitely did not take effect."""
        return self._complete(handle, output, OUTCOME_FAIL)

    def unknown(self, handle: int, output: Any = None) -> Operation:
        """The client lost track of the operation after sending it."""
        return self._complete(handle, output, OUTCOME_UNKNOWN)

    def _complete(self, handle: int, output: Any, outcome: str) -> Operation:
        with self._lock:
            pending = self._pending.pop(handle, None)
            if pending is None:
                raise KeyError(f"handle {handle} is not pending (never invoked or already completed)")
            operation = Operation(
                op_id=pending.op_id,
                process=pending.process,
                key=pending.key,
                kind=pending.kind,
                input=pending.input,
                output=freeze(output),
                invoke_ns=pending.invoke_ns,
                return_ns=self._clock_ns(),
                outcome=outcome,
            )
            self._completed.append(operation)
            return operation

    def operations(self) -> tuple[Operation, ...]:
        """Every operation so far, ordered by id; pending ones as unknown."""
        with self._lock:
            still_pending = [
                Operation(p.op_id, p.process, p.key, p.kind, p.input, None, p.invoke_ns, None, OUTCOME_UNKNOWN)
                for p in self._pending.values()
            ]
            every = self._completed + still_pending
        return tuple(sorted(every, key=lambda operation: operation.op_id))

    def save(self, path: Path, metadata: dict[str, Any] | None = None) -> None:
        """Write the history (pending operations as unknown) to `path`."""
        save_history(path, self.operations(), seed=self.seed, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class SavedHistory:
    """A history read back from a file: the seed that drove the run, any
    metadata the test stored, and the operations in id order."""

    seed: int | None
    metadata: dict[str, Any]
    operations: tuple[Operation, ...]


def save_history(
    path: Path,
    operations: Iterable[Operation],
    *,
    seed: int | None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write a header line (format, version, seed, metadata) and then one
    JSON object per operation."""
    header = {"format": FILE_FORMAT, "version": FILE_FORMAT_VERSION, "seed": seed, "metadata": metadata or {}}
    lines = [json.dumps(header, sort_keys=True)]
    for operation in operations:
        record = dataclasses.asdict(operation)
        record["input"] = encode_value(operation.input)
        record["output"] = encode_value(operation.output)
        lines.append(json.dumps(record, sort_keys=True))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_history(path: Path) -> SavedHistory:
    """Read a file written by `save_history`."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines:
        raise ValueError(f"{path}: empty history file")
    header = json.loads(lines[0])
    if header.get("format") != FILE_FORMAT or header.get("version") != FILE_FORMAT_VERSION:
        raise ValueError(f"{path}: not a {FILE_FORMAT} v{FILE_FORMAT_VERSION} file")
    operations = tuple(_decode_operation(json.loads(line)) for line in lines[1:] if line.strip())
    return SavedHistory(seed=header["seed"], metadata=header["metadata"], operations=operations)


def _decode_operation(record: dict[str, Any]) -> Operation:
    record["input"] = decode_value(record["input"])
    record["output"] = decode_value(record["output"])
    return Operation(**record)


def freeze(value: Any) -> Any:
    """Make a value hashable: lists become tuples, sets frozensets."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item) for item in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(freeze(item) for item in value)
    return value


def encode_value(value: Any) -> Any:
    """A JSON-able form of a frozen value. Tuples become lists; bytes and
    frozensets become tagged objects so decoding restores them exactly."""
    if isinstance(value, bytes):
        return {"bytes_hex": value.hex()}
    if isinstance(value, frozenset):
        return {"set": sorted((encode_value(item) for item in value), key=repr)}
    if isinstance(value, tuple):
        return [encode_value(item) for item in value]
    assert value is None or isinstance(value, (bool, int, float, str)), f"cannot encode {value!r}"
    return value


def decode_value(value: Any) -> Any:
    """The inverse of `encode_value`."""
    if isinstance(value, list):
        return tuple(decode_value(item) for item in value)
    if isinstance(value, dict):
        if "bytes_hex" in value:
            return bytes.fromhex(value["bytes_hex"])
        return frozenset(decode_value(item) for item in value["set"])
    return value
