"""The package layout, checked rather than described: names declared once, imports in the
direction of the data flow, modules and functions small.

The exception lists below name modules that other work is still splitting or moving; they may only
shrink (a test fails when an entry is no longer needed, so a fixed module leaves the list).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mrpn import registry

SRC = Path(__file__).resolve().parents[1] / "src" / "mrpn"

# Files allowed to spell a modality or model-kind name: the registry and each modality's own code.
NAMES_HOME = {"registry.py", "features/video.py", "features/audio.py", "features/spectrogram.py"}
NAMES_EXCEPTIONS = {
    "models/fusion.py": "FusionNet's own variants n0/n1/n2 (eqs. 7-9), which the registry's kinds name",
    "data/media.py": "'v' is the V plane of a YUV frame, not a modality",
    "synth/voice.py": "'a' is a vowel",
}

# Import layers: a module may import its own layer or lower ones, never a higher one.
LAYERS = [
    ("io", "progress", "features", "argtypes", "provenance"),
    ("registry", "checkpoint"),
    ("config", "config_checks"),
    ("data",),
    ("models",),
    ("training", "evaluation", "baselines"),
    ("inference",),
    ("cli", "demo", "synth", "fuzzy", "api", "serve"),
]
# On top of the layers: evaluation never imports training (or the reverse) and inference never training.
FORBIDDEN = {"inference": {"training"}, "evaluation": {"training"}, "training": {"evaluation.report"},
             "data": {"models", "training", "evaluation", "inference"}}

MAX_MODULE_LINES = 400
MODULE_EXCEPTIONS: dict[str, str] = {}
MAX_FUNCTION_LINES = 80
FUNCTION_EXCEPTIONS: dict[str, str] = {}


def _modules() -> list[tuple[str, Path]]:
    return sorted((p.relative_to(SRC).as_posix(), p) for p in SRC.rglob("*.py"))


def _layer(name: str) -> int | None:
    """Layer of a module given as a dotted path under mrpn ("data.loader")."""
    for i, heads in enumerate(LAYERS):
        if name.split(".")[0] in heads or name in heads:
            return i
    return None


def _imports(path: Path) -> list[str]:
    """Modules under mrpn imported by this file, anywhere in it (function-level imports count too)."""
    out = []
    pkg = ".".join(path.relative_to(SRC).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name[5:] for a in node.names if a.name.startswith("mrpn.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1] if pkg else []
                mod = ".".join(base + ([node.module] if node.module else []))
                out.append(mod)
            elif node.module and (node.module == "mrpn" or node.module.startswith("mrpn.")):
                mod = node.module[5:]
                out += [a.name for a in node.names] if not mod else [mod]
    return [m for m in out if m and m != "__version__"]


def test_no_modality_or_kind_name_outside_the_registry():
    names = set(registry.MODALITIES) | set(registry.KINDS)
    names |= {m + suffix for m in registry.MODALITIES for suffix in ("_len", "_feat")}
    found = {}
    for rel, path in _modules():
        if rel in NAMES_HOME or rel in NAMES_EXCEPTIONS:
            continue
        hits = sorted({(n.lineno, n.value) for n in ast.walk(ast.parse(path.read_text()))
                       if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in names})
        if hits:
            found[rel] = hits
    assert not found, f"modality/kind names spelled out (use mrpn.registry): {found}"


def test_name_exceptions_are_still_needed():
    names = set(registry.MODALITIES) | set(registry.KINDS)
    for rel in NAMES_EXCEPTIONS:
        path = SRC / rel
        if not path.is_file():
            continue  # moved by other work: the entry goes when that lands
        consts = {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)}
        assert consts & names, f"{rel} no longer spells a registry name: remove it from NAMES_EXCEPTIONS"


def test_imports_follow_the_data_flow():
    bad = []
    for rel, path in _modules():
        me = rel.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        mine = _layer(me)
        for imp in _imports(path):
            theirs = _layer(imp)
            if mine is not None and theirs is not None and theirs > mine:
                bad.append(f"{rel} imports mrpn.{imp} (layer {LAYERS[theirs]} above {LAYERS[mine]})")
            for head, banned in FORBIDDEN.items():
                if me.split(".")[0] == head and any(imp == b or imp.startswith(b + ".") for b in banned):
                    bad.append(f"{rel} imports mrpn.{imp} ({head} must not import {sorted(banned)})")
    assert not bad, "\n".join(bad)


def test_every_module_has_a_layer():
    missing = [rel for rel, _ in _modules()
               if rel != "__init__.py" and _layer(rel.removesuffix(".py").replace("/", ".")) is None]
    assert not missing, f"add these to LAYERS: {missing}"


@pytest.mark.parametrize("limit, exceptions, what", [(MAX_MODULE_LINES, MODULE_EXCEPTIONS, "module"),
                                                     (MAX_FUNCTION_LINES, FUNCTION_EXCEPTIONS, "function")])
def test_modules_and_functions_are_small(limit, exceptions, what):
    too_big, still_needed = [], set()
    for rel, path in _modules():
        text = path.read_text()
        if what == "module":
            sizes = [(rel, len(text.splitlines()))]
        else:
            sizes = [(f"{rel}:{n.name}", n.end_lineno - n.lineno + 1) for n in ast.walk(ast.parse(text))
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for name, n in sizes:
            if n > limit:
                if rel in exceptions:
                    still_needed.add(rel)
                else:
                    too_big.append(f"{name}: {n} lines")
    assert not too_big, f"{what}s over {limit} lines: {too_big}"
    stale = [rel for rel in exceptions if (SRC / rel).is_file() and rel not in still_needed]
    assert not stale, f"no longer over {limit} lines, remove from the {what} exceptions: {stale}"
