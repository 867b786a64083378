"""House rules import-linter cannot express: only `gateway/` uses aiohttp's web server; the core
and the adapters read no environment variables; every public class of the core says what it is
for."""

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


def sources(*folders: str) -> list[Path]:
    """The Python files of `folders`; each must have some, or a rule over them passes by
    looking at nothing (a folder moved or renamed)."""
    found = {folder: sorted((ROOT / folder).rglob("*.py")) for folder in folders}
    assert all(found.values()), f"no Python files in {[f for f, ps in found.items() if not ps]}"
    return [p for ps in found.values() for p in ps]


def uses_aiohttp_web(path: Path) -> bool:
    return any(n == "aiohttp.web" or n.startswith("aiohttp.web.") for n in imports(path))


def reads_environment(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return "os.environ" in text or "os.getenv" in text


def test_only_gateway_uses_aiohttp_web() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in sources("core", "adapters", "integrations", "config")
        if uses_aiohttp_web(p)
    ]
    assert offenders == []
    # The check sees an import where there is one (else the rule above could never fail).
    assert uses_aiohttp_web(ROOT / "gateway" / "webhooks.py")


def test_adapters_and_core_read_no_environment() -> None:
    """Settings are typed and checked at start-up in config/; the core and the adapters get
    theirs passed in. (Integrations read the secrets an HTTP action names, by design.)"""
    offenders = [
        str(p.relative_to(ROOT)) for p in sources("core", "adapters") if reads_environment(p)
    ]
    assert offenders == []
    assert any(reads_environment(p) for p in sources("config")), "the check finds config's reads"


def undocumented_classes(source: str) -> list[str]:
    """The public classes of a module (at its top level) without a docstring."""
    return [
        node.name
        for node in ast.parse(source).body
        if isinstance(node, ast.ClassDef)
        and not node.name.startswith("_")
        and ast.get_docstring(node) is None
    ]


def test_every_public_class_of_the_core_has_a_docstring() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}: {name}"
        for p in sources("core")
        for name in undocumented_classes(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    # The check finds a class without one, and leaves private and documented ones alone.
    known = 'class Bare:\n    x: int\n\nclass _Private:\n    pass\n\nclass Told:\n    """Why."""\n'
    assert undocumented_classes(known) == ["Bare"]
