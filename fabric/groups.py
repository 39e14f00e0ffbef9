"""Resource groups, as every provider looks them up."""
from __future__ import annotations

from fabric.core import ids
from fabric.core.errors import ArmError
from fabric.model import ResourceGroupRecord
from fabric.store import Store, keys
from fabric.store.informer import informed


def require_group(store: Store, name: str) -> ResourceGroupRecord:
    """The group called `name` (case-insensitive), or InvalidParameter / ResourceGroupNotFound."""
    ids.check_resource_group_name(name)
    found = informed(store, keys.RESOURCE_GROUPS, ResourceGroupRecord).lookup(keys.resource_group(name))
    if found is None:
        raise ArmError("ResourceGroupNotFound", f"Resource group '{name}' could not be found.", "resourceGroupName")
    return found.value
