"""Block book-keeping of one run: an explicit state machine, one state per block this run must commit.

    PENDING ──start──► RUNNING ──done──► DONE (committed by the actor, status last)
       ▲                  │
       └──── retry ───────┤  the actor died (RayActorError, a lost node, any Ray system error) or the call
                          │  raised; each counts as an attempt
                          └──► FAILED  after `max_attempts`: the driver commits the block itself, FAILED with
                                       the last error (INVALID where planning refused a dataset)

Reconcile (`requeue`): when nothing is queued or in flight, blocks the store still holds PENDING go back in the
queue while they have attempts left (Ray's retries are an optimisation; the store is the truth).

Pure Python: no Ray, no store.
"""

from __future__ import annotations

from collections import deque
from enum import Enum


class BlockState(Enum):
    PENDING = "pending"  # queued: waiting for an actor
    RUNNING = "running"  # submitted to an actor, not returned
    DONE = "done"  # the actor committed it
    FAILED = "failed"  # given up after max_attempts; the driver committed it FAILED


class BlockBook:
    """The state of every block this run must commit, its attempts and last error, and the queue of PENDING
    blocks (first in, first out; a re-queued block goes to the back)."""

    def __init__(self, blocks: list[int], max_attempts: int):
        self.max_attempts = max_attempts
        self.state = {k: BlockState.PENDING for k in blocks}
        self.attempts = {k: 0 for k in blocks}
        self.errors: dict[int, str] = {}
        self.queue = deque(blocks)

    def pending(self) -> int:
        """Blocks waiting for an actor."""
        return len(self.queue)

    def start(self) -> tuple[int, int]:
        """Take the next PENDING block: (k, its attempt number, from 1)."""
        k = self.queue.popleft()
        self.state[k] = BlockState.RUNNING
        self.attempts[k] += 1
        return k, self.attempts[k]

    def done(self, k: int) -> None:
        self.state[k] = BlockState.DONE

    def retry(self, k: int, error: str) -> bool:
        """A RUNNING block came back without a commit: re-queue it (True), or mark it FAILED after
        max_attempts (False: the caller commits it FAILED)."""
        self.errors[k] = error
        if self.attempts[k] >= self.max_attempts:
            self.state[k] = BlockState.FAILED
            return False
        self.state[k] = BlockState.PENDING
        self.queue.append(k)
        return True

    def requeue(self, blocks: list[int]) -> list[int]:
        """Reconcile: blocks the store still holds PENDING go back in the queue (those with attempts left)."""
        again = []
        for k in blocks:
            if self.state.get(k) in (BlockState.DONE, BlockState.FAILED, None):
                self.state.setdefault(k, BlockState.PENDING)
                self.attempts.setdefault(k, 0)
                if self.attempts[k] < self.max_attempts:
                    self.state[k] = BlockState.PENDING
                    self.queue.append(k)
                    again.append(k)
        return again
