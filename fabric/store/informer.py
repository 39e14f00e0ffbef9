"""A prefix of the store kept in memory: listed at one revision, then kept current by a watch from the next.

What the controller reads on every request (the nodes, their allocations) is served from here instead of
from etcd: a create reads no prefix. The cache may lag the store by the watch's delay, never more: every
write is still a compare-and-swap on the store, so a decision made on a stale view fails its transaction,
and `refresh(key)` brings the keys it compared up to date before the next attempt.

A watch can lose changes: the stream breaks (etcd restarted, a partition) or etcd compacts its history past
what the watch still had to send. The informer then watches again from the last revision it applied, and
when that revision is compacted, lists the prefix anew at one revision (`relists` counts how often) and
watches from there: what it holds is again exactly the store's, as of one revision.
"""
from __future__ import annotations

import bisect
import builtins
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from fabric.model import Record
from fabric.store.client import (Absent, Delete, Event, Put, Store, Unchanged, Versioned, Watch, WatchLost,
                                 prefix_end)

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Record)

RECOVER_BACKOFF_S = (0.1, 5.0)      # first and longest wait between attempts to watch again
MAX_TOMBSTONES = 1024


class Informer(Generic[R]):
    def __init__(self, store: Store, prefix: str, cls: type[R]) -> None:
        self.store = store
        self.prefix = prefix
        self.cls = cls
        self.revision = 0                 # the store revision this view is complete up to
        self.relists = 0
        self._items: dict[str, Versioned[R]] = {}
        self._keys: builtins.list[str] = []          # the keys of _items, sorted: ranges without a sort
        self._gone: dict[str, int] = {}   # key -> revision it was deleted at (a late event must not revive it)
        self._lock = threading.RLock()
        self._watch: Watch | None = None
        self._generation = 0              # events of an older watch are ignored
        self._stopped = True
        self._listeners: list[Callable[[str], None]] = []
        self._start_lock = threading.Lock()
        self._started = False

    # ----- reads -----

    def get(self, key: str) -> Versioned[R] | None:
        with self._lock:
            return self._items.get(key)

    def list(self) -> list[Versioned[R]]:
        with self._lock:
            return [self._items[k] for k in self._keys]

    def under(self, prefix: str) -> builtins.list[Versioned[R]]:
        """The records whose keys start with `prefix`, in key order."""
        with self._lock:
            first = bisect.bisect_left(self._keys, prefix)
            last = bisect.bisect_left(self._keys, prefix_end(prefix)) if prefix else len(self._keys)
            return [self._items[k] for k in self._keys[first:last]]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call `listener(key)` (in the watch's thread: keep it short) for every key that changes."""
        with self._lock:
            self._listeners = [*self._listeners, listener]

    def remove_listener(self, listener: Callable[[str], None]) -> None:
        with self._lock:
            self._listeners = [x for x in self._listeners if x is not listener]

    # ----- keeping current -----

    def start(self) -> Informer[R]:
        """List and watch, once (a started view is returned as it is); raises StoreUnavailable (and holds
        nothing) when etcd does not answer."""
        with self._start_lock:
            if self._started:
                return self
            with self._lock:
                self._stopped = False
            self._relist()               # etcd is never called holding the lock: the watch's thread takes it
            self._watch_from_revision()
            self._started = True
        return self

    def stop(self) -> None:
        """Stop watching; what is held stays readable (and goes stale)."""
        with self._lock:
            self._stopped = True
            self._generation += 1
            watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()

    def resume(self) -> None:
        """Watch again from the last revision applied, as after a lost stream (relisting when etcd has
        compacted past it)."""
        with self._lock:
            self._stopped = False
        self._recover(WatchLost("resumed"))

    def lookup(self, key: str) -> Versioned[R] | None:
        """The key from memory; when it is not held there, from the store (a record another controller made a
        moment ago is found: a miss is never taken for an absence)."""
        found = self.get(key)
        return found if found is not None else self.refresh(key)

    def written(self, ops: Sequence[Put | Delete], revision: int) -> None:
        """This connection's own committed writes, applied before the watch brings them."""
        for op in ops:
            if isinstance(op, Put):
                if op.key.startswith(self.prefix) and isinstance(op.value, self.cls):
                    self._apply(op.key, Versioned(op.key, op.value, revision), revision, complete=False)
            elif op.prefix and (op.key.startswith(self.prefix) or self.prefix.startswith(op.key)):
                for held in self.under(op.key):
                    self._apply(held.key, None, revision, complete=False)
            elif op.key.startswith(self.prefix):
                self._apply(op.key, None, revision, complete=False)

    def refresh(self, key: str) -> Versioned[R] | None:
        """The key as the store holds it now, applied here (a compare-and-swap on it just failed)."""
        found, revision = self.store.get_at(key, self.cls)
        self._apply(key, found, found.mod_revision if found else revision, complete=False)
        return self.get(key)

    def _relist(self) -> None:
        """The prefix as of one revision R; what this view already holds newer than R (this process's writes,
        refreshed keys) is kept, and so are deletions newer than R."""
        items, revision = self.store.snapshot(
            self.prefix, self.cls, lambda key, exc: log.warning("%s: unreadable record left out: %s", key, exc))
        with self._lock:
            before = self._items
            fresh = {v.key: v for v in items}
            fresh |= {k: v for k, v in before.items() if v.mod_revision > revision}
            self._gone = {k: r for k, r in self._gone.items() if r > revision}
            for k, r in self._gone.items():
                if k in fresh and fresh[k].mod_revision < r:
                    del fresh[k]
            self._items = fresh
            self._keys = sorted(fresh)
            self.revision = revision
            self.relists += 1
            changed = [k for k in before.keys() | fresh.keys() if _revision(before.get(k)) != _revision(fresh.get(k))]
        for key in changed:
            self._tell(key)

    def _watch_from_revision(self) -> None:
        with self._lock:
            self._generation += 1
            generation, since = self._generation, self.revision + 1
        watch = self.store.watch_events(self.prefix, since, lambda got: self._on_events(generation, got))
        with self._lock:
            if generation == self._generation:
                self._watch = watch
                return
        watch.cancel()                   # stopped meanwhile

    def _on_events(self, generation: int, got: builtins.list[Event] | WatchLost) -> None:
        with self._lock:
            if generation != self._generation or self._stopped:
                return
            if isinstance(got, WatchLost):
                self._generation += 1
                self._watch = None
        if isinstance(got, WatchLost):
            log.warning("watch of %s lost at revision %d: %s", self.prefix, self.revision, got)
            threading.Thread(target=self._recover, args=(got,), name=f"informer{self.prefix}", daemon=True).start()
            return
        for e in got:
            if e.value is None:
                self._apply(e.key, None, e.mod_revision, complete=True)
            else:
                try:
                    value = self.cls.from_json(e.value)
                except (ValueError, TypeError, KeyError) as exc:
                    log.warning("%s: unreadable record at revision %d: %s", e.key, e.mod_revision, exc)
                    continue
                self._apply(e.key, Versioned(e.key, value, e.mod_revision), e.mod_revision, complete=True)

    def _apply(self, key: str, found: Versioned[R] | None, revision: int, complete: bool) -> None:
        """The key as of `revision` (found None: absent then), unless what is held is newer. `complete`: a
        watch event, so the whole prefix is now known up to `revision` (a refresh of one key is not)."""
        with self._lock:
            if complete:
                self.revision = max(self.revision, revision)
                if len(self._gone) > MAX_TOMBSTONES:     # only a refresh's can be newer than the watch
                    self._gone = {k: r for k, r in self._gone.items() if r > self.revision}
            elif revision <= self.revision:
                return                  # the watch has brought this key's state as of then, or newer
            held = self._items.get(key)
            if revision <= max(held.mod_revision if held else 0, self._gone.get(key, 0)):
                return
            if found is None:
                if held is None:
                    self._gone[key] = revision
                    return
                del self._items[key]
                del self._keys[bisect.bisect_left(self._keys, key)]
                self._gone[key] = revision
            else:
                if held is None:
                    bisect.insort(self._keys, key)
                self._items[key] = found
                self._gone.pop(key, None)
        self._tell(key)

    def _tell(self, key: str) -> None:
        for listener in self._listeners:
            try:
                listener(key)
            except Exception:  # noqa: BLE001 - one listener's fault must not stop the view
                log.exception("listener of %s failed on %s", self.prefix, key)

    def _recover(self, lost: WatchLost) -> None:
        """Watch again from the last revision applied; relist first when that revision is compacted."""
        wait = RECOVER_BACKOFF_S[0]
        while True:
            with self._lock:
                if self._stopped:
                    return
            try:
                if lost.compacted:
                    self._relist()
                    log.info("%s relisted at revision %d (%d keys)", self.prefix, self.revision, len(self))
                self._watch_from_revision()
                return
            except WatchLost as exc:
                lost = exc
            except Exception as exc:  # noqa: BLE001 - etcd down, a watch not created in time: never give up
                log.warning("watch of %s: %s; trying again in %.1f s", self.prefix, exc, wait)
                time.sleep(wait)
                wait = min(wait * 2, RECOVER_BACKOFF_S[1])


def _revision(held: Versioned[R] | None) -> int:
    return held.mod_revision if held else 0


def informed(store: Store, prefix: str, cls: type[R]) -> Informer[R]:
    """The prefix kept in memory for everything using this connection, started on first use. Raises
    StoreUnavailable when it cannot start (the next call tries again)."""
    inf = store.shared(f"informer:{prefix}", lambda: Informer(store, prefix, cls))
    if inf.cls is not cls:
        raise TypeError(f"{prefix} is informed as {inf.cls.__name__}, not {cls.__name__}")
    return inf.start()


def refresh_compared(store: Store, compares: Sequence[Absent | Unchanged]) -> None:
    """After a failed transaction: the compared keys read afresh into the views that hold them, so that the next
    attempt decides on what the store holds now."""
    for c in compares:
        for obj in store.shared_objects():
            if isinstance(obj, Informer) and c.key.startswith(obj.prefix):
                obj.refresh(c.key)
