"""etcd access for fabriclab. Nothing outside this package imports the etcd client."""
from fabric.store import keys
from fabric.store.client import Absent, Delete, Fenced, Put, Store, StoreUnavailable, Unchanged, Versioned, Watch

__all__ = ["Absent", "Delete", "Fenced", "Put", "Store", "StoreUnavailable", "Unchanged", "Versioned", "Watch", "keys"]
