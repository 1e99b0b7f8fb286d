"""A least-recently-used map bounded by entry count and bytes.

The worker's memos (program identity to digest, loaded modules, ready
programs) would otherwise grow by one entry per distinct program for the
worker's whole life.  Pinned entries (system images: a few, and installed
by the operator) are kept apart and never evicted by user work.
"""

from collections import OrderedDict
from typing import Dict, Generic, Hashable, List, Optional, Tuple, TypeVar

K = TypeVar('K', bound=Hashable)
V = TypeVar('V')


class BoundedLru(Generic[K, V]):
    """At most ``max_entries`` unpinned entries of at most ``max_bytes``
    together (the sizes given to :meth:`put`); the least recently used go
    first.  One entry larger than ``max_bytes`` is kept alone."""

    def __init__(self, max_entries: int, max_bytes: Optional[int] = None):
        if max_entries < 1:
            raise ValueError('max_entries must be at least 1, got %r'
                             % (max_entries,))
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: 'OrderedDict[K, Tuple[V, int]]' = OrderedDict()
        self._pinned: Dict[K, V] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries) + len(self._pinned)

    def keys(self) -> List[K]:
        """Pinned keys, then the others from least recently used."""
        return list(self._pinned) + list(self._entries)

    def get(self, key: K) -> Optional[V]:
        if key in self._pinned:
            return self._pinned[key]
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V, size: int = 0,
            pinned: bool = False) -> None:
        self.discard(key)
        if pinned:
            self._pinned[key] = value
            return
        self._entries[key] = (value, size)
        self.bytes += size
        while len(self._entries) > 1 and (
                len(self._entries) > self.max_entries or
                (self.max_bytes is not None and self.bytes > self.max_bytes)):
            _, (_, evicted) = self._entries.popitem(last=False)
            self.bytes -= evicted

    def discard(self, key: K) -> None:
        self._pinned.pop(key, None)
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry[1]
