"""Per-account shares of what a server process does for all accounts.

One tenant must not take everything a process has for all of them (sandbox
slots, waiting places, deferred jobs): each account may hold a part, and
what it asks beyond that part waits or is refused, never another account's
work.  The object server's sandbox pool keeps its own shares
(:mod:`zerocloud.runtime.pool`); :class:`AccountShare` counts the proxy's.
"""

from typing import Dict


def half(count: int) -> int:
    """The default share of one account: half, rounded up."""
    return (count + 1) // 2


class AccountShare:
    """How many of something each account holds; at most ``limit`` each.

    Accounts holding nothing are forgotten, so the table stays as small as
    the work in progress.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._held: Dict[str, int] = {}

    def take(self, account: str) -> bool:
        """One more for ``account``; False (nothing taken) at its limit."""
        held = self._held.get(account, 0)
        if held >= self.limit:
            return False
        self._held[account] = held + 1
        return True

    def give_back(self, account: str) -> None:
        held = self._held.get(account, 0) - 1
        if held > 0:
            self._held[account] = held
        else:
            self._held.pop(account, None)

    def held(self, account: str) -> int:
        return self._held.get(account, 0)
