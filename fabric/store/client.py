"""The only code in fabriclab that talks to etcd.

Every read-modify-write is a compare-and-swap transaction on mod revisions
(`Store.commit`); there are no etcd locks. Connection failures surface as
`StoreUnavailable`, and a failed transaction writes nothing.
"""
from __future__ import annotations

import builtins
import copy

import dataclasses
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit

import grpc
from pyetcd import events as etcd_events
from pyetcd import exceptions as etcd_exc
from pyetcd.client import Endpoint, MultiEndpointEtcd3Client

from fabric.model import Record
from fabric.pki import Credential
from fabric.store import keys

R = TypeVar("R", bound=Record)
T = TypeVar("T")
S = TypeVar("S")

ETCD_CALL_TIMEOUT_S = 5.0
ENDPOINT_RETRY_AFTER_S = 0.5
DEFAULT_ENDPOINT = "http://127.0.0.1:2379"
PAGE_SIZE = 500           # keys per read of a prefix (records of a few KB: well below gRPC's 4 MiB message)


class StoreUnavailable(Exception):
    """etcd did not answer; nothing was written by the call that raised it."""


class Fenced(StoreUnavailable):
    """A write of a fenced store (`Store.fenced`) whose fence no longer holds: this process is no longer the
    leader it was when the store was fenced. Nothing was written."""


@dataclasses.dataclass(frozen=True)
class Versioned(Generic[R]):
    key: str
    value: R
    mod_revision: int


@dataclasses.dataclass(frozen=True)
class Absent:
    """Compare: the key does not exist."""
    key: str


@dataclasses.dataclass(frozen=True)
class Unchanged:
    """Compare: the key still has this mod revision (0 = still absent)."""
    key: str
    mod_revision: int


Compare = Absent | Unchanged


@dataclasses.dataclass(frozen=True)
class Put:
    key: str
    value: Record
    lease: int | None = None


@dataclasses.dataclass(frozen=True)
class Delete:
    key: str
    prefix: bool = False


@runtime_checkable
class Follower(Protocol):
    """What keeps a copy of part of the store (fabric.store.informer): told of this connection's own writes as
    they commit, before its watch reports them, so that what a process wrote it reads back at once."""

    def written(self, ops: Sequence[Put | Delete], revision: int) -> None: ...


def _versioned(kv: Any, cls: type[R]) -> Versioned[R]:
    """A record as etcd returned it (a KeyValue), decoded."""
    return Versioned(kv.key.decode(), cls.from_json(bytes(kv.value)), int(kv.mod_revision))


def prefix_end(prefix: str) -> str:
    """The first key after every key that starts with `prefix`."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return raw.decode()


class Store:
    """A connection to an etcd cluster (one or more client URLs)."""

    def __init__(self, endpoints: str = DEFAULT_ENDPOINT, timeout_s: float = ETCD_CALL_TIMEOUT_S,
                 tls: Credential | None = None, page_size: int = PAGE_SIZE) -> None:
        """`endpoints`: http://HOST:PORT or https://HOST:PORT URLs, comma-separated; https needs `tls`, a
        credential of etcd's CA (the member's certificate verified against it, this one presented)."""
        eps = []
        creds = grpc.ssl_channel_credentials(tls.ca.encode(), tls.key.encode(), tls.certificate.encode()) \
            if tls else None
        for url in endpoints.split(","):
            parts = urlsplit(url.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
                raise ValueError(f"etcd endpoint {url!r}: expected https://HOST:PORT (or http:// on loopback)")
            if parts.scheme == "https" and creds is None:
                raise ValueError(f"etcd endpoint {url!r}: https needs an etcd client credential")
            eps.append(Endpoint(parts.hostname, parts.port, secure=parts.scheme == "https", creds=creds,
                                time_retry=ENDPOINT_RETRY_AFTER_S))
        self.endpoints = endpoints
        self.page_size = page_size
        self._client = MultiEndpointEtcd3Client(endpoints=eps, timeout=timeout_s, failover=True)
        self._lock = threading.Lock()
        self._fence: Unchanged | None = None
        self._shared: dict[str, Any] = {}          # shared with fenced views of this connection

    def fenced(self, fence: Unchanged) -> Store:
        """This connection, with every write made conditional on `fence` (a leader's key, unchanged since it
        was elected): once another process leads, this one's writes change nothing. Reads and leases are as
        they are. Closing it closes the connection it shares."""
        view = copy.copy(self)
        view._fence = fence
        return view

    def close(self) -> None:
        for obj in self.shared_objects():
            obj.stop()
        self._client.close()

    def shared(self, name: str, make: Callable[[], S]) -> S:
        """The object `name` shared by everything using this connection (its fenced views too), made by
        `make()` on first use; stopped (its `stop()`) when the connection closes."""
        with self._lock:
            found = self._shared.get(name)
            if found is None:
                found = self._shared[name] = make()
            return found

    def shared_objects(self) -> builtins.list[Any]:
        with self._lock:
            return list(self._shared.values())

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (etcd_exc.ConnectionFailedError, etcd_exc.ConnectionTimeoutError, etcd_exc.NoServerAvailableError,
                etcd_exc.WatchTimedOut, etcd_exc.InternalServerError, ValueError) as exc:
            raise StoreUnavailable(f"etcd at {self.endpoints} is unavailable ({exc or type(exc).__name__})") from None
        except grpc.RpcError as exc:
            raise StoreUnavailable(f"etcd at {self.endpoints}: {exc.code().name}") from None

    # ----- reads -----

    def get(self, key: str, cls: type[R]) -> Versioned[R] | None:
        value, meta = self._call(lambda: self._client.get(key))
        if value is None:
            return None
        return Versioned(key, cls.from_json(value), int(meta.mod_revision))

    def _range(self, prefix: str, keys_only: bool = False) -> builtins.list[tuple[str, bytes, int]]:
        return self._range_at(prefix, keys_only)[0]

    def _range_at(self, prefix: str, keys_only: bool = False) -> tuple[builtins.list[tuple[str, bytes, int]], int]:
        """(key, value, mod revision) of every key under a prefix, in order, and the revision they were read
        at: read in pages of at most `page_size` keys all at the revision of the first page (one consistent
        view, however many pages): no reply grows with the prefix. A page too big for a gRPC message is asked
        again at half the size."""
        out: builtins.list[tuple[str, bytes, int]] = []
        start, end, revision, limit = prefix, prefix_end(prefix), 0, self.page_size
        while True:
            def page() -> Any:
                try:
                    return self._client.get_range_response(start, end, sort_order="ascend", limit=limit,
                                                           revision=revision or None, keys_only=keys_only)
                except grpc.RpcError as exc:
                    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and limit > 1:
                        return None
                    raise
            resp = self._call(page)
            if resp is None:
                limit //= 2
                continue
            revision = revision or int(resp.header.revision)
            out += [(kv.key.decode(), bytes(kv.value), int(kv.mod_revision)) for kv in resp.kvs]
            if not resp.more or not resp.kvs:
                return out, revision
            start = resp.kvs[-1].key.decode() + "\0"

    def snapshot(self, prefix: str, cls: type[R],
                 unreadable: Callable[[str, Exception], None] | None = None) -> tuple[builtins.list[Versioned[R]], int]:
        """Every record under a prefix as of one revision, and that revision (a watch from the next one
        misses nothing). A record that does not decode raises, or with `unreadable` is left out and told."""
        out = []
        items, revision = self._range_at(prefix)
        for key, value, rev in items:
            try:
                out.append(Versioned(key, cls.from_json(value), rev))
            except (ValueError, TypeError, KeyError) as exc:
                if unreadable is None:
                    raise
                unreadable(key, exc)
        return out, revision

    def page(self, prefix: str, after: str, limit: int, cls: type[R]) -> tuple[builtins.list[Versioned[R]], bool]:
        """At most `limit` records under a prefix whose keys come after `after` ("" : from the first), in key
        order, in one read; and whether more follow."""
        start = after + "\0" if after else prefix
        resp = self._call(lambda: self._client.get_range_response(start, prefix_end(prefix), sort_order="ascend",
                                                                 limit=limit))
        return [_versioned(kv, cls) for kv in resp.kvs], bool(resp.more)

    def get_at(self, key: str, cls: type[R]) -> tuple[Versioned[R] | None, int]:
        """The record (None: absent) and the store's revision when it was read."""
        resp = self._call(lambda: self._client.get_range_response(key, None))
        return (_versioned(resp.kvs[0], cls) if resp.kvs else None), int(resp.header.revision)

    def list(self, prefix: str, cls: type[R]) -> list[Versioned[R]]:
        return self.snapshot(prefix, cls)[0]

    def key_list(self, prefix: str) -> builtins.list[str]:     # (`list` is a method of this class)
        """The keys under a prefix, in order (what a test or a check compares before and after)."""
        return [key for key, _, _ in self._range(prefix, keys_only=True)]

    def raw_items(self, prefix: str) -> builtins.list[tuple[str, bytes]]:
        """(key, stored bytes) under a prefix, in order: what is kept, whatever record it is (for checks)."""
        return [(key, value) for key, value, _ in self._range(prefix)]

    def lease_of(self, key: str) -> int | None:
        """The lease a key lives under (0: none); None when the key does not exist."""
        value, meta = self._call(lambda: self._client.get(key))
        return None if value is None else int(meta.lease_id)

    def count(self, prefix: str) -> int:
        resp = self._call(lambda: self._client.get_range_response(prefix, prefix_end(prefix), count_only=True))
        return int(resp.count)

    def revision(self, key: str) -> int:
        """The key's mod revision, 0 when it does not exist."""
        value, meta = self._call(lambda: self._client.get(key))
        return 0 if value is None else int(meta.mod_revision)

    def get_raw(self, key: str) -> str | None:
        value, _ = self._call(lambda: self._client.get(key))
        return None if value is None else value.decode()

    def fabric_id(self) -> str:
        """This fabric's identity (made by the first process to ask): it marks the domains the fabric owns."""
        import uuid
        return self.put_raw_if_absent(keys.FABRIC_ID, str(uuid.uuid4()))

    # ----- writes -----

    def put(self, key: str, value: Record, lease: int | None = None) -> None:
        self._write(Put(key, value, lease))

    def _write(self, op: Put | Delete) -> None:
        """One unconditional write (conditional on the fence in a fenced store)."""
        if not self.commit([], [op]):
            raise Fenced(f"not written ({op.key}): this process no longer leads ({self._fence.key if self._fence else ''} "
                         f"changed)")

    def put_raw_if_absent(self, key: str, value: str) -> str:
        """Write value when key is absent; return what the key holds afterwards."""
        self._call(lambda: self._client.put_if_not_exists(key, value))
        stored = self.get_raw(key)
        assert stored is not None
        return stored

    def commit(self, compares: Sequence[Compare], ops: Iterable[Put | Delete]) -> bool:
        """Apply every op atomically if every compare holds; False (nothing written) otherwise."""
        ops = list(ops)
        tx = self._client.transactions
        cmp = []
        for c in [*compares, *([self._fence] if self._fence else [])]:
            if isinstance(c, Absent):
                cmp.append(tx.create(c.key) == 0)
            else:
                cmp.append(tx.mod(c.key) == c.mod_revision)
        success = []
        for op in ops:
            if isinstance(op, Put):
                success.append(tx.put(op.key, op.value.to_json(), lease=op.lease))
            elif op.prefix:
                success.append(tx.delete(op.key, range_end=prefix_end(op.key)))
            else:
                success.append(tx.delete(op.key))
        ok, responses = self._call(lambda: self._client.transaction(compare=cmp, success=success, failure=[]))
        if ok and responses:
            revision = max(int(getattr(r, r.WhichOneof("response")).header.revision) for r in responses)
            for obj in self.shared_objects():
                if isinstance(obj, Follower):
                    obj.written(ops, revision)
        return bool(ok)

    def delete(self, key: str) -> None:
        self._write(Delete(key))

    def delete_prefix(self, prefix: str) -> None:
        self._write(Delete(prefix, prefix=True))

    # ----- the etcd cluster itself -----

    def add_member(self, peer_url: str) -> None:
        """Announce a new member (it then starts with --initial-cluster-state existing)."""
        self._call(lambda: self._client.add_member([peer_url]))

    def member_names(self) -> builtins.list[str]:
        return self._call(lambda: sorted(m.name or "(starting)" for m in self._client.members))

    # ----- leases and watches -----

    def grant_lease(self, ttl_s: int) -> int:
        lease = self._call(lambda: self._client.lease(ttl_s))
        return int(lease.id)

    def refresh_lease(self, lease_id: int) -> int:
        """Keep a lease alive; returns the TTL left (0 or less: the lease is gone)."""
        replies = self._call(lambda: list(self._client.refresh_lease(lease_id)))
        return int(replies[0].TTL) if replies else 0

    def revoke_lease(self, lease_id: int) -> None:
        self._call(lambda: self._client.revoke_lease(lease_id))

    def watch_prefix(self, prefix: str, callback: Callable[[], None]) -> Watch:
        """Call `callback()` (no payload: re-read state) on any change under prefix.

        When the watch stream breaks (etcd restarted, connection lost) the
        callback is called once more and `Watch.broken` becomes True: the
        caller makes a new watch. Callers also re-read state on a timer.
        """
        watch = Watch(self)

        def on_event(response: object) -> None:
            if isinstance(response, Exception):
                watch.broken = True
            callback()
        watch.watch_id = self._call(lambda: self._client.add_watch_prefix_callback(prefix, on_event))
        return watch

    def compact(self, revision: int) -> None:
        """Discard the history before `revision` (what etcd's periodic auto-compaction does)."""
        self._call(lambda: self._client.compact(revision))

    def watch_events(self, prefix: str, start_revision: int,
                     callback: Callable[[builtins.list[Event] | WatchLost], None]) -> Watch:
        """Call `callback(events)` with every change under prefix from `start_revision` on, in revision order;
        `callback(WatchLost(...))` once when the watch ends (the stream broke, or etcd compacted past what the
        watch had still to send). Raises WatchLost(compacted=True) when `start_revision` is already compacted."""
        watch = Watch(self)

        def on_response(response: object) -> None:
            if isinstance(response, etcd_exc.RevisionCompactedError):
                watch.broken = True
                callback(WatchLost(f"etcd compacted its history to revision {response.compacted_revision}",
                                   compacted=True))
            elif isinstance(response, Exception) or response is None:
                watch.broken = True
                callback(WatchLost(f"the watch stream ended ({response or 'closed'})"))
            else:
                callback([Event(e.key.decode(), bytes(e.value) if isinstance(e, etcd_events.PutEvent) else None,
                                int(e.mod_revision)) for e in getattr(response, "events", [])])
        try:
            watch.watch_id = self._call(lambda: self._client.add_watch_prefix_callback(
                prefix, on_response, start_revision=start_revision))
        except etcd_exc.RevisionCompactedError as exc:
            raise WatchLost(f"revision {start_revision} is compacted (etcd keeps from {exc.compacted_revision})",
                            compacted=True) from None
        return watch


@dataclasses.dataclass(frozen=True)
class Event:
    """One change seen by a watch: `value` None for a delete; `mod_revision` the change's revision."""
    key: str
    value: bytes | None
    mod_revision: int


class WatchLost(Exception):
    """A watch that may have missed changes: re-read (a relist when `compacted`) and watch again."""

    def __init__(self, message: str, compacted: bool = False) -> None:
        super().__init__(message)
        self.compacted = compacted


class Watch:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.watch_id: object = None
        self.broken = False

    def cancel(self) -> None:
        try:
            self._store._client.cancel_watch(self.watch_id)
        except Exception:  # noqa: BLE001 - cancelling a dead watch is fine
            pass
