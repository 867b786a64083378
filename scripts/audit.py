"""Known vulnerabilities in the locked pins: pip-audit over the lock files, judged strictly.

pip-audit says "No known vulnerabilities found" and exits 0 even when it could audit nothing (a
machine that reaches the package index but not its vulnerability API). Here a pin with an
advisory fails naming the advisory, and an audit that reached no service says so instead of
passing quietly; `AUDIT_REQUIRED=1` makes that a failure too (set it where CI has the network).

    python scripts/audit.py requirements.txt requirements/torch.txt
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NOT_REACHED = 3
"""Exit status when no pin could be looked up and AUDIT_REQUIRED=1."""


@dataclass
class Verdict:
    status: int
    lines: list[str] = field(default_factory=list)


def judge(report: dict[str, Any], *, required: bool) -> Verdict:
    """The verdict on pip-audit's JSON report (`pip-audit -f json`)."""
    deps = report.get("dependencies") or []
    found: list[str] = []
    skipped: list[str] = []
    for dep in deps:
        if dep.get("skip_reason"):
            skipped.append(f"{dep.get('name')}: {dep['skip_reason']}")
            continue
        for vuln in dep.get("vulns") or []:
            aliases = [a for a in vuln.get("aliases") or [] if a != vuln.get("id")]
            also = f" ({', '.join(aliases)})" if aliases else ""
            fix = ", ".join(vuln.get("fix_versions") or []) or "no fixed release yet"
            found.append(
                f"{dep.get('name')}=={dep.get('version')}: {vuln.get('id')}{also}; fixed in {fix}"
            )
    audited = len(deps) - len(skipped)
    if found:
        return Verdict(
            1,
            [f"audit: {len(found)} known vulnerabilit{'y' if len(found) == 1 else 'ies'}:"]
            + [f"  {line}" for line in found]
            + ["  raise the pin (pyproject.toml if the range excludes the fix), then make lock"],
        )
    if deps and not audited:
        why = skipped[0].split(": ", 1)[1]
        verdict = "failed" if required else "not done"
        return Verdict(
            NOT_REACHED if required else 0,
            [
                f"audit {verdict}: the vulnerability service answered for none of the "
                f"{len(deps)} pins (first reason: {why}); run `make audit` where PyPI's JSON "
                "API is reachable"
            ],
        )
    lines = [f"audit: {audited} pins checked, no known vulnerabilities"]
    lines += [f"  not audited: {s}" for s in skipped]
    return Verdict(0, lines)


def public_pins(path: Path) -> str:
    """The torch pin without its local build label (+cpu): advisories name public versions."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line.split("+", 1)[0])
    return "\n".join(out) + "\n"


def run_pip_audit(requirements: Path) -> list[dict[str, Any]]:
    """pip-audit's dependencies for one requirements file (pip refuses a mix of hashed and
    unhashed pins in one run, so each file is its own run)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp, "report.json")
        cmd = [
            sys.executable,
            "-m",
            "pip_audit",
            "-r",
            str(requirements),
            "--disable-pip",
            "--no-deps",
            "--vulnerability-service",
            "pypi",
            "--timeout",
            "20",
            "--progress-spinner",
            "off",
            "-f",
            "json",
            "-o",
            str(report),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if not report.exists():
            sys.stderr.write(proc.stderr[-2000:])
            raise SystemExit(f"audit: pip-audit failed on {requirements} ({proc.returncode})")
        deps: list[dict[str, Any]] = json.loads(report.read_text(encoding="utf-8"))["dependencies"]
        return deps


def audit_files(paths: list[Path]) -> dict[str, Any]:
    deps: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(paths):
            if "--hash=" not in path.read_text(encoding="utf-8"):
                plain = Path(tmp, f"plain-{i}.txt")
                plain.write_text(public_pins(path), encoding="utf-8")
                path = plain
            deps += run_pip_audit(path)
    return {"dependencies": deps}


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    report = audit_files([Path(a) for a in argv])
    verdict = judge(report, required=os.environ.get("AUDIT_REQUIRED") == "1")
    print("\n".join(verdict.lines))
    return verdict.status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
