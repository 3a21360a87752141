"""The ledger: a durable record of every test object a run creates.

An entry is appended and fsynced *before* the request that creates the object, and a
``removed`` entry after the object is gone, so after any interruption (even ``kill -9``)
``scim-readiness cleanup`` knows exactly what may still exist. The file is JSON Lines so a
write torn by a kill loses at most its own last line, which the reader skips.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scim_readiness.config import Config

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["user", "group", "event"]
Channel = Literal["events", "scim"]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    run_id: str
    kind: Kind
    object_id: str  # directory user/group id, or event id
    channel: Channel
    check_id: str
    # never_created: the creating request was provably never accepted (no 2xx for any
    # delivery about the object, and absent by probe where one is configured).
    state: Literal["created", "removed", "unremovable", "never_created"]
    at: float
    details: Mapping[str, Any] = field(default_factory=dict)  # email, org, directory, …

    def to_json(self) -> str:
        return json.dumps(
            {
                "run_id": self.run_id,
                "kind": self.kind,
                "object_id": self.object_id,
                "channel": self.channel,
                "check_id": self.check_id,
                "state": self.state,
                "at": self.at,
                "details": dict(self.details),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, line: str) -> LedgerEntry:
        raw = json.loads(line)
        return cls(
            run_id=str(raw["run_id"]),
            kind=raw["kind"],
            object_id=str(raw["object_id"]),
            channel=raw["channel"],
            check_id=str(raw["check_id"]),
            state=raw["state"],
            at=float(raw["at"]),
            details=dict(raw.get("details") or {}),
        )


# (run id, object id) of every creation this process recorded: only the process that sent an
# object's deliveries knows whether any of them could have been applied (see
# provisioning.close_never_accepted); a later `cleanup` process knows nothing of them.
_RECORDED_HERE: set[tuple[str, str]] = set()


def recorded_by_this_process(entry: LedgerEntry) -> bool:
    return (entry.run_id, entry.object_id) in _RECORDED_HERE


class Ledger:
    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self._lock = threading.Lock()

    def _append(self, entry: LedgerEntry) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (entry.to_json() + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def created(
        self,
        kind: Kind,
        object_id: str,
        *,
        channel: Channel,
        check_id: str,
        **details: Any,
    ) -> None:
        """Record intent to create; call *before* sending the creating request."""
        _RECORDED_HERE.add((self.run_id, object_id))
        self._append(
            LedgerEntry(
                self.run_id, kind, object_id, channel, check_id, "created", time.time(), details
            )
        )

    def removed(self, kind: Kind, object_id: str, *, channel: Channel, check_id: str) -> None:
        self._append(
            LedgerEntry(self.run_id, kind, object_id, channel, check_id, "removed", time.time())
        )

    def never_created(self, kind: Kind, object_id: str, *, channel: Channel, check_id: str) -> None:
        """Close an entry whose creation the target provably never accepted."""
        self._append(
            LedgerEntry(
                self.run_id, kind, object_id, channel, check_id, "never_created", time.time()
            )
        )

    def unremovable(
        self, kind: Kind, object_id: str, *, channel: Channel, check_id: str, reason: str
    ) -> None:
        self._append(
            LedgerEntry(
                self.run_id,
                kind,
                object_id,
                channel,
                check_id,
                "unremovable",
                time.time(),
                {"reason": reason},
            )
        )

    def entries(self) -> Iterator[LedgerEntry]:
        """Every readable entry; a torn last line (killed mid-write) is skipped."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                yield LedgerEntry.from_json(line)
            except (ValueError, KeyError, TypeError):
                continue

    def outstanding(self, run_id: str | None = None) -> list[LedgerEntry]:
        """Objects created and not yet removed (by any run, or by one run)."""
        live: dict[tuple[str, str, str], LedgerEntry] = {}
        for entry in self.entries():
            if run_id is not None and entry.run_id != run_id:
                continue
            key = (entry.run_id, entry.kind, entry.object_id)
            if entry.state == "created":
                live[key] = entry
            elif entry.state in ("removed", "never_created"):
                live.pop(key, None)
            # "unremovable" keeps the object outstanding: a later cleanup may succeed.
        return list(live.values())


def default_ledger_path(config: Config) -> Path:
    base = Path(config.source_path).resolve().parent if config.source_path else Path.cwd()
    if config.ledger_path:
        path = Path(config.ledger_path)
        return path if path.is_absolute() else base / path
    return base / ".scim-readiness" / "ledger.jsonl"
