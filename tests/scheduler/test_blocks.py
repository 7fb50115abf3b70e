"""The driver's block state machine (scheduler.blocks.BlockBook), without Ray: PENDING → RUNNING → DONE, back to
PENDING at the end of the queue when a call comes back without a commit, FAILED after max_attempts, and the
reconcile pass that re-queues what the store still holds PENDING."""

from __future__ import annotations

from scheduler.blocks import BlockBook, BlockState

PENDING, RUNNING, DONE, FAILED = BlockState.PENDING, BlockState.RUNNING, BlockState.DONE, BlockState.FAILED


def test_blocks_start_in_queue_order_and_each_start_is_an_attempt():
    book = BlockBook([4, 1, 7], max_attempts=3)
    assert book.state == {4: PENDING, 1: PENDING, 7: PENDING} and book.pending() == 3
    assert [book.start(), book.start()] == [(4, 1), (1, 1)]
    assert book.state == {4: RUNNING, 1: RUNNING, 7: PENDING}
    book.done(1)
    assert book.start() == (7, 1)
    assert book.pending() == 0
    assert book.state == {4: RUNNING, 1: DONE, 7: RUNNING} and book.attempts == {4: 1, 1: 1, 7: 1}


def test_a_block_that_comes_back_uncommitted_goes_to_the_back_until_its_attempts_run_out():
    book = BlockBook([0, 1], max_attempts=2)
    book.start()
    assert book.retry(0, "actor lensfleet-fit-0 died: node lost") is True  # attempt 1 of 2: again, behind block 1
    assert book.state[0] == PENDING and list(book.queue) == [1, 0]
    assert book.start() == (1, 1) and book.start() == (0, 2)
    assert book.retry(0, "ValueError: injected fault") is False  # attempt 2 of 2: the caller commits it FAILED
    assert book.state[0] == FAILED and book.attempts[0] == 2 and book.errors[0] == "ValueError: injected fault"
    assert book.pending() == 0
    book.done(1)
    assert book.state == {0: FAILED, 1: DONE}


def test_reconcile_requeues_store_pending_blocks_with_attempts_left_including_ones_not_in_the_run():
    book = BlockBook([0, 1, 2], max_attempts=2)
    for _ in range(3):
        book.start()
    book.done(0)
    book.done(1)
    book.retry(2, "first")
    book.start()
    book.retry(2, "second")  # FAILED after 2 attempts
    # the store says 0 (DONE here, but its commit did not land), 2 (FAILED, no attempts left) and 5 (never in
    # this run's book) are PENDING
    assert book.requeue([0, 2, 5]) == [0, 5]
    assert list(book.queue) == [0, 5] and book.state[0] == book.state[5] == PENDING
    assert book.attempts[5] == 0 and book.state[2] == FAILED
    assert book.start() == (0, 2) and book.start() == (5, 1)
    assert book.requeue([0, 5]) == []  # RUNNING: not touched
