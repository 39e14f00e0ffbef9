"""What converging a VM can fail with, told apart by whether trying again later may succeed."""
from __future__ import annotations


class Fault(Exception):
    """`temporary`: the same call may succeed later (a daemon restarting, storage coming back); otherwise
    the request itself is refused and only a change of it helps."""

    def __init__(self, message: str, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary
