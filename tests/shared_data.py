"""Where the tests find the project's shared data: ../shared beside the checkout, the nearest folder named
`shared` with a `reference` folder in it above this file (a git worktree may sit one folder deeper than the main
checkout). PyAutoLens's reference numbers must be there; the real cutouts (`REAL`) may be absent, and the tests
that read them skip."""

from __future__ import annotations

from pathlib import Path


def _shared() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "reference").is_dir():
            return parent / "shared"
    raise FileNotFoundError(f"no shared/reference folder above {Path(__file__).parent}: the tests read PyAutoLens's "
                            "reference numbers from ../shared beside the checkout")


SHARED = _shared()
REFERENCE = SHARED / "reference"
REFERENCE2 = SHARED / "reference2"
REAL = SHARED / "real"
SLACS = REAL / "slacs"
EUCLID = REAL / "euclid_q1" / "102018665_NEG570040238507752998"
