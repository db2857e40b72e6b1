"""Every error code the tool can raise has its own message, in every language: a municipal contact ordering a
closed round is told the round is closed, not that the launch could not be confirmed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from lti_tool.web.errors import MESSAGES, TITLES

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "lti_tool", ROOT / "catalog_sync"]
TRANSLATIONS = ROOT / "lti_tool" / "translations"


def _module_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level string constants (``BUDGET_USED = "budget_used_up"``), by name."""
    constants: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.isupper():
                    constants[target.id] = node.value.value
    return constants


def _module_path(path: Path, node: ast.ImportFrom) -> Path:
    base = path.parent
    for _ in range(max(node.level - 1, 0)):
        base = base.parent
    if node.level == 0:
        base = ROOT
    return base.joinpath(*node.module.split(".")) if node.module else base


def _constants_of(module: Path, cache: dict[Path, dict[str, str]]) -> dict[str, str]:
    file = module.with_suffix(".py") if module.with_suffix(".py").is_file() else module / "__init__.py"
    if file not in cache:
        cache[file] = _module_constants(ast.parse(file.read_text(encoding="utf-8"))) if file.is_file() else {}
    return cache[file]


def _names_in_scope(path: Path, tree: ast.Module, cache) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The constants a file can name: its own and those it imports, and the modules it imports by alias."""
    names = dict(_module_constants(tree))
    modules: dict[str, dict[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = _module_path(path, node)
            for alias in node.names:
                as_module = module / alias.name
                if as_module.with_suffix(".py").is_file() or (as_module / "__init__.py").is_file():
                    modules[alias.asname or alias.name] = _constants_of(as_module, cache)
                elif alias.name in _constants_of(module, cache):
                    names[alias.asname or alias.name] = _constants_of(module, cache)[alias.name]
    return names, modules


def _code_of(value: ast.expr, names: dict[str, str], modules: dict[str, dict[str, str]]) -> str | None:
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    if isinstance(value, ast.Name):
        return names.get(value.id)
    if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
        return modules.get(value.value.id, {}).get(value.attr)
    return None


def _where(path: Path, node: ast.stmt | ast.expr) -> str:
    return f"{path.relative_to(ROOT)}:{node.lineno}"


def _codes_raised() -> dict[str, str]:
    """Every error code in the sources: ``code=...`` in any call (a literal, or a constant such as
    ``rules.BUDGET_USED``), ``code = "..."`` on an error class, and the first argument of
    ``render_error("...")``; with where it was found."""
    found: dict[str, str] = {}
    cache: dict[Path, dict[str, str]] = {}
    for folder in SOURCES:
        for path in sorted(folder.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            names, modules = _names_in_scope(path, tree, cache)
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    for keyword in node.keywords:
                        code = _code_of(keyword.value, names, modules) if keyword.arg == "code" else None
                        if code:
                            found.setdefault(code, _where(path, node))
                    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                    if name == "render_error" and node.args and isinstance(node.args[0], ast.Constant):
                        found.setdefault(node.args[0].value, _where(path, node))
                elif isinstance(node, ast.ClassDef):
                    for statement in node.body:
                        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant) \
                                and any(isinstance(t, ast.Name) and t.id == "code" for t in statement.targets) \
                                and isinstance(statement.value.value, str):
                            found.setdefault(statement.value.value, _where(path, statement))
    return found


def test_the_scan_finds_codes():
    codes = _codes_raised()
    assert {"budget_used_up", "state_invalid", "csrf_invalid"} <= set(codes)


def test_every_code_raised_has_its_own_message():
    missing = {code: where for code, where in _codes_raised().items() if code not in MESSAGES}
    assert not missing, f"error codes without a message in web/errors.py MESSAGES: {missing}"


@pytest.mark.parametrize("locale", ["sv", "nb", "nn"])
def test_every_message_and_title_is_translated(locale):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as handle:
        catalog = read_po(handle)
    untranslated = []
    for text in {str(m._args[0]) if hasattr(m, "_args") else str(m) for m in [*MESSAGES.values(), *TITLES.values()]}:
        message = catalog.get(text)
        if message is None or not message.string or message.fuzzy:
            untranslated.append(text)
    assert not untranslated, f"{locale}: {untranslated}"
