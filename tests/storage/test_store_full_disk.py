"""A full disk is the machine's fault, not the lenses' (issue 11, point 7): a commit that hits ENOSPC raises an
error classified ENVIRONMENT and leaves its block PENDING (never FAILED, never half-committed); once space is
freed the same commit succeeds and the store verifies. The disk is a real 1 MiB tmpfs, mounted in a private mount
namespace (`unshare --mount`), and filled for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent("""
    import errno, json, os, sys
    from synthetic_blocks import block_arguments, make_store
    from storage.errors import classify
    from storage.store import ResultStore

    disk = sys.argv[1]
    store = make_store(os.path.join(disk, "run.zarr"))
    store.write_block(0, **block_arguments(store, 0))
    filler = os.path.join(disk, "filler")
    with open(filler, "wb", buffering=0) as f:  # take every free byte
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    f.write(b"x" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    report = {}
    try:
        store.write_block(1, **block_arguments(store, 1))
        report["full"] = "committed"
    except Exception as e:
        report["full"] = [getattr(e, "errno", None), classify(e).name, classify(e).status.name]
    report["pending_when_full"] = ResultStore.open_existing(store.url).pending_blocks()
    os.remove(filler)  # space is freed: the same commit again
    store.write_block(1, **block_arguments(store, 1))
    reopened = ResultStore.open_existing(store.url)
    report["pending_after"] = reopened.pending_blocks()
    report["corrupt_after"] = reopened.verify_blocks([0, 1])
    print(json.dumps(report))
""")


def private_tmpfs_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null || "
                            "mount -t tmpfs -o size=64k tmpfs /tmp"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not private_tmpfs_available(), reason="needs a private mount namespace (unshare --mount: root "
                                                           "or user namespaces) to mount a small tmpfs")
def test_a_commit_on_a_full_disk_leaves_its_block_pending_and_succeeds_once_space_is_freed(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.dirname(os.path.abspath(__file__))])}
    shell = f'mount -t tmpfs -o size=1m tmpfs "{disk}" && exec "{sys.executable}" -c "$0" "{disk}"'
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", shell, SCRIPT],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["full"] == [28, "ENVIRONMENT", "PENDING"]  # ENOSPC: commit nothing, retry on resume
    assert report["pending_when_full"] == list(range(1, 24))  # block 1 is not half-committed: it is PENDING
    assert report["pending_after"] == list(range(2, 24))
    assert report["corrupt_after"] == {}
