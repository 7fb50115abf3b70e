"""A resume can tell which committed lenses' files changed since they were planned (issue 11, point 10): each
block records its lenses' input fingerprints; `changed_inputs` compares them with this run's."""

from __future__ import annotations

from synthetic_blocks import block_arguments, make_store


def test_changed_inputs_lists_the_committed_blocks_whose_lenses_files_changed(tmp_path):
    store = make_store(str(tmp_path / "run.zarr"))
    ids = store.read_array("id").tolist()
    planned = [f"fp-{i}" for i in ids]
    planned[store.block_slice(2).start] = ""  # a lens whose files could not be listed at planning
    for k in range(4):
        arguments = block_arguments(store, k)
        arguments["results"]["input_fingerprint"] = planned[store.block_slice(k)]
        store.write_block(k, **arguments)
    assert store.changed_inputs(planned) == {}

    now = list(planned)
    b1, b3, b5 = store.block_slice(1), store.block_slice(3), store.block_slice(5)
    now[b1.start] = now[b1.start + 2] = "fp-replaced"  # two lenses of block 1 ...
    now[b3.stop - 1] = "fp-replaced"  # ... one of block 3 ...
    now[b5.start] = "fp-replaced"  # ... and one of block 5, which is not committed: it will be fitted anyway
    now[store.block_slice(0).start] = ""  # unknown now: never counts as a change
    now[store.block_slice(2).start] = "fp-known-now"  # unknown then: never counts either
    assert store.changed_inputs(now) == {1: [ids[b1.start], ids[b1.start + 2]], 3: [ids[b3.stop - 1]]}
