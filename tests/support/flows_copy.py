"""A copy of the bot's flows in the test's own folder, for tests that write into FLOWS_DIR
(the review inbox's labels)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.review import trainfile

FLOWS = Path(__file__).resolve().parents[2] / "flows"


@pytest.fixture
def flows_copy(tmp_path: Path) -> Path:
    out = tmp_path / "flows"
    shutil.copytree(FLOWS, out)
    (out / trainfile.FILE_NAME).unlink(missing_ok=True)
    return out
