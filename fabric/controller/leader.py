"""Which controller runs the background work: an election on an etcd lease.

Every controller serves the API; the reconcilers, retention and deployments run in one of them, the leader. A
controller becomes leader by creating the leader key under a lease of its own (a transaction: the key must
be absent), and stays leader while it renews that lease every TTL/3. The others try again every
CAMPAIGN_EVERY_S; when the leader dies its lease expires within LEADER_TTL_S and the key with it, and
another wins.

A leader works through a fenced store (`Store.fenced`): every write it makes holds only while the leader key
is the one it created. So a leader that stalls (a long pause, a lost connection) and comes back after
another took over cannot change anything, even before it notices; and it steps down by itself when it has
not renewed its lease for STEP_DOWN_S, before the lease can run out. Stopping (SIGTERM) resigns at once:
the lease is revoked and another controller leads within CAMPAIGN_EVERY_S.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from fabric.model import Record, now
from fabric.store import Absent, Put, Store, StoreUnavailable, Unchanged, keys

log = logging.getLogger(__name__)

LEADER_TTL_S = 6
RENEW_EVERY_S = LEADER_TTL_S / 3
STEP_DOWN_S = LEADER_TTL_S / 2       # unrenewed this long: stop working (the lease lasts LEADER_TTL_S)
CAMPAIGN_EVERY_S = 0.5


@dataclasses.dataclass(frozen=True)
class LeaderRecord(Record):
    name: str              # the controller's name (--name)
    since: str
    lease: int = 0


def leader(store: Store) -> LeaderRecord | None:
    found = store.get(keys.LEADER, LeaderRecord)
    return found.value if found else None


class Election:
    def __init__(self, store: Store, name: str, ttl_s: int = LEADER_TTL_S) -> None:
        self.store = store
        self.name = name
        self.ttl_s = ttl_s
        self.lease = 0

    def campaign(self) -> Unchanged | None:
        """One attempt; the fence of this term when won (the leader key as this controller wrote it)."""
        lease = self.store.grant_lease(self.ttl_s)
        rec = LeaderRecord(name=self.name, since=now(), lease=lease)
        if not self.store.commit([Absent(keys.LEADER)], [Put(keys.LEADER, rec, lease=lease)]):
            self.store.revoke_lease(lease)
            return None
        won = self.store.get(keys.LEADER, LeaderRecord)
        if won is None or won.value != rec:        # expired already (a very slow etcd): not leading
            return None
        self.lease = lease
        return Unchanged(won.key, won.mod_revision)

    def renew(self) -> bool:
        """Whether this controller still leads (its lease renewed)."""
        return self.lease != 0 and self.store.refresh_lease(self.lease) > 0

    def resign(self) -> None:
        if self.lease:
            try:
                self.store.revoke_lease(self.lease)
            except StoreUnavailable:
                pass        # it expires by itself
            self.lease = 0


def lead_when_elected(election: Election, stop: threading.Event,
                      work: Callable[[Store, threading.Event], None]) -> None:
    """Until `stop`: campaign; when elected, run `work(fenced store, deposed)` in a thread of its own while
    the lease is renewed; when it is not (or `stop`), set `deposed`, wait for `work` to return, and campaign
    again."""
    while not stop.is_set():
        try:
            fence = election.campaign()
        except StoreUnavailable as exc:
            log.warning("election: %s", exc)
            fence = None
        if fence is None:
            stop.wait(CAMPAIGN_EVERY_S)
            continue
        log.info("leading: %s runs the background work (lease %x)", election.name, election.lease)
        deposed = threading.Event()
        worker = threading.Thread(target=work, args=(election.store.fenced(fence), deposed), name="leader-work",
                                  daemon=True)
        worker.start()
        renewed = time.monotonic()
        while not stop.is_set() and worker.is_alive():
            stop.wait(RENEW_EVERY_S)
            try:
                if not election.renew():
                    log.warning("leading: the lease of %s is gone; stepping down", election.name)
                    break
                renewed = time.monotonic()
            except StoreUnavailable as exc:
                if time.monotonic() - renewed > STEP_DOWN_S:
                    log.warning("leading: lease not renewed for %.1f s (%s); stepping down",
                                time.monotonic() - renewed, exc)
                    break
        deposed.set()
        worker.join()
        election.resign()
        log.info("%s no longer leads", election.name)
