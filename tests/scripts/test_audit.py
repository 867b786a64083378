"""scripts/audit.py: a pin with an advisory fails naming it; an audit that reached nothing is
never reported as clean."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("audit", ROOT / "scripts" / "audit.py")
assert _spec is not None and _spec.loader is not None
audit: Any = importlib.util.module_from_spec(_spec)
sys.modules["audit"] = audit  # dataclasses look their module up there
_spec.loader.exec_module(audit)


def dep(name: str, version: str, vulns: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": name, "version": version, "vulns": vulns or []}


def skipped(name: str) -> dict[str, Any]:
    return {"name": name, "skip_reason": f"Dependency not found on PyPI: {name}"}


def test_a_vulnerable_pin_fails_naming_the_advisory() -> None:
    vuln = {"id": "PYSEC-2023-74", "aliases": ["CVE-2023-32681"], "fix_versions": ["2.31.0"]}
    report = {"dependencies": [dep("requests", "2.30.0", [vuln]), dep("idna", "3.7")]}
    verdict = audit.judge(report, required=False)
    assert verdict.status == 1
    text = "\n".join(verdict.lines)
    assert "requests==2.30.0: PYSEC-2023-74 (CVE-2023-32681); fixed in 2.31.0" in text
    assert "idna" not in text


def test_clean_pins_pass_and_say_how_many_were_checked() -> None:
    report = {"dependencies": [dep("idna", "3.7"), dep("yarl", "1.9"), skipped("local-pkg")]}
    verdict = audit.judge(report, required=True)
    assert verdict.status == 0
    assert verdict.lines[0] == "audit: 2 pins checked, no known vulnerabilities"
    assert any("local-pkg" in line for line in verdict.lines[1:])


def test_an_audit_that_reached_nothing_is_not_reported_clean() -> None:
    report = {"dependencies": [skipped("idna"), skipped("yarl")]}
    relaxed = audit.judge(report, required=False)
    assert relaxed.status == 0
    assert relaxed.lines[0].startswith("audit not done:")
    assert "no known vulnerabilities" not in relaxed.lines[0]
    strict = audit.judge(report, required=True)
    assert strict.status == audit.NOT_REACHED
    assert strict.lines[0].startswith("audit failed:")


def test_the_torch_pin_is_audited_as_its_public_version(tmp_path: Path) -> None:
    pins = tmp_path / "torch.txt"
    pins.write_text("# the build the lock was resolved against\ntorch==2.13.0+cpu\n")
    assert audit.public_pins(pins) == "torch==2.13.0\n"
