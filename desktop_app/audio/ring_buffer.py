"""A single-producer, single-consumer ring buffer of float32 samples.

The audio callback (producer) only copies into preallocated memory; a worker thread (consumer)
drains it. Positions are plain integers that only ever grow, each written by one side: under the
GIL, reading the other side's integer is safe without a lock.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Fixed-capacity ring of mono float32 samples."""

    def __init__(self, capacity: int) -> None:
        self._data = np.zeros(capacity, dtype=np.float32)
        self.capacity = capacity
        self.written = 0  # total samples the producer wrote (producer-owned)
        self.read = 0  # total samples the consumer read (consumer-owned)
        self.overruns = 0  # samples dropped because the consumer fell behind (producer-owned)

    def write(self, samples: np.ndarray) -> None:
        """Copy ``samples`` in (producer side; never allocates a buffer)."""
        count = samples.shape[0]
        free = self.capacity - (self.written - self.read)
        if count > free:
            self.overruns += count - free
            count = free
        start = self.written % self.capacity
        first = min(count, self.capacity - start)
        self._data[start : start + first] = samples[:first]
        if count > first:
            self._data[: count - first] = samples[first:count]
        self.written += count

    def available(self) -> int:
        """Samples waiting to be read."""
        return self.written - self.read

    def read_into(self, out: np.ndarray) -> int:
        """Move up to ``len(out)`` samples into ``out`` (consumer side); returns how many."""
        count = min(out.shape[0], self.available())
        start = self.read % self.capacity
        first = min(count, self.capacity - start)
        out[:first] = self._data[start : start + first]
        if count > first:
            out[first:count] = self._data[: count - first]
        self.read += count
        return count
