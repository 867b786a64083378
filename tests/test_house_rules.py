"""House rules import-linter cannot express: only `gateway/` uses aiohttp's web server; the core
and the adapters read no environment variables."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_only_gateway_uses_aiohttp_web() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("core", "adapters", "integrations", "config")
        for p in (ROOT / folder).rglob("*.py")
        if any(n == "aiohttp.web" or n.startswith("aiohttp.web.") for n in imports(p))
    ]
    assert offenders == []


def test_adapters_and_core_read_no_environment() -> None:
    """Settings are typed and checked at start-up in config/; the core and the adapters get
    theirs passed in. (Integrations read the secrets an HTTP action names, by design.)"""
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("core", "adapters")
        for p in (ROOT / folder).rglob("*.py")
        if "os.environ" in p.read_text(encoding="utf-8")
        or "os.getenv" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []
