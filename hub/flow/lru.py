"""A bounded least-recently-used map that counts its hits, misses and evictions.

Past its capacity it drops the entry used longest ago, one at a time: a working set a little
larger than the capacity loses a little, never everything at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    """At most ``capacity`` entries; :meth:`get` makes an entry the most recently used."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"an LRU cache holds at least 1 entry, not {capacity}")
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()  # python steps may render from threads

    def get(self, key: K) -> V | None:
        """The value of ``key`` (now the most recently used), or None, counted as a hit or a miss."""
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` as the most recently used; drop the least recently used past the capacity."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            self._trim()

    def resize(self, capacity: int) -> None:
        """A new capacity; the least recently used entries past it are dropped now."""
        if capacity < 1:
            raise ValueError(f"an LRU cache holds at least 1 entry, not {capacity}")
        with self._lock:
            self.capacity = capacity
            self._trim()

    def _trim(self) -> None:
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)
            self.evictions += 1

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def hit_rate(self) -> float | None:
        """Hits over lookups since the start, or None before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None
