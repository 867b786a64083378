"""`flows check` prints file:line: reason and exits non-zero; `test` needs the real model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.cli import main
from tests.support.flows_nlu import FLOWS


def test_flows_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "check", str(FLOWS)]) == 0
    assert "OK (15 flows" in capsys.readouterr().out


def test_flows_check_lists_each_mistake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "flows"
    shutil.copytree(FLOWS, target)
    path = target / "support.yml"
    text = path.read_text()
    text = text.replace("when: {intent: thanks}", "when: {intent: thank}")
    text = text.replace("- handoff: support", "- handoff: support\n      - say: never")
    path.write_text(text)
    assert main(["flows", "check", str(target)]) == 1
    out = capsys.readouterr().out.splitlines()
    lines = text.splitlines()
    when_line = lines.index("    when: {intent: thank}") + 1
    never_line = lines.index("      - say: never") + 1
    assert f"{path}:{when_line}: undefined intent 'thank'" in out
    assert f"{path}:{never_line}: unreachable step in flow 'human'" in out
    assert out[-1] == f"2 mistake(s) in {target}"


def test_flows_check_names_a_file_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bot.yml").write_bytes(b"flows:\n  x: \xff\xfe\n")
    assert main(["flows", "check", str(tmp_path)]) == 1
    assert f"{tmp_path}/bot.yml:2: not UTF-8 text" in capsys.readouterr().out


def test_stories_from_a_missing_path_are_refused_before_the_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test", str(tmp_path / "nope")]) == 2
    assert "no such story file or directory" in capsys.readouterr().err


def test_flows_check_on_a_file_says_to_give_the_folder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["flows", "check", str(FLOWS / "support.yml")]) == 1
    assert "a file, not a directory" in capsys.readouterr().out
