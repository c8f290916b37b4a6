"""The import rule of `emomon.kernel`'s docstring, held for every module of the repository.

Imports are read from the source (also those inside functions, and module names written as strings, as in
`import_module("...")` and lazy re-export tables), so a cycle hidden from static tools still fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("emomon", "stream", "detector", "fusion", "training", "benchmarks")
TOP_MODULES = ("app",)

# (layer, group): a module may import its own group and any lower layer; within layers 1 and 3 the groups
# stay apart (stream, detector and fusion never import each other; nor do training and benchmarks).
LAYERS = (
    ("emomon.kernel", 0), ("emomon", 0),  # the `emomon` package itself only re-exports the kernel
    ("stream", 1), ("detector", 1), ("fusion", 1),
    ("emomon.pipeline", 2),
    ("training", 3), ("benchmarks", 3), ("emomon.cluster", 3),
    ("emomon.cli", 4), ("emomon.__main__", 4), ("emomon.commands", 4), ("emomon.webapp", 4), ("app", 4),
)
SEPARATE_GROUPS = {1, 3}


def layer_of(module: str) -> tuple[int, str] | None:
    """The layer and group of one of our modules (None for third-party names); the longest prefix wins."""
    best = None
    for prefix, layer in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[1])):
            best = (layer, prefix)
    if best is None:
        return None
    layer, prefix = best
    return layer, prefix if layer in SEPARATE_GROUPS else f"layer{layer}"


def find_modules(root: Path) -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    for name in TOP_MODULES:
        if (root / f"{name}.py").is_file():
            modules[name] = root / f"{name}.py"
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Our modules that `name` imports: import statements anywhere in the file, plus module-name strings."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in modules:  # `from a.b import C`: the module a.b
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in modules else base)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value \
                and node.value in modules:  # dotted only: "detector" may be a cache folder's name
            add(node.value)  # import_module("benchmarks.suite"), lazy export tables, ...
    return found


def violations(root: Path) -> tuple[list[str], list[list[str]]]:
    """(edges that break the layer rule, import cycles) over the tree at `root`."""
    modules = find_modules(root)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    bad = []
    for source, targets in sorted(graph.items()):
        here = layer_of(source)
        for target in sorted(targets):
            there = layer_of(target)
            if here is None or there is None:
                continue
            if there[0] > here[0] or (there[0] == here[0] and there[1] != here[1]):
                bad.append(f"{source} (layer {here[0]}) imports {target} (layer {there[0]})")
    return bad, cycles(graph)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each a list of module names."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_import_follows_the_layer_rule_without_cycles():
    bad, loops = violations(ROOT)
    assert not bad, "imports against the layer rule (see emomon/kernel/__init__.py):\n" + "\n".join(bad)
    assert not loops, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in loops)


def test_the_rule_covers_every_module():
    unplaced = [m for m in find_modules(ROOT) if layer_of(m) is None]
    assert not unplaced and len(find_modules(ROOT)) > 100


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CLEAN = {
    "emomon/__init__.py": "from emomon.kernel import InputError\n",
    "emomon/kernel/__init__.py": "",
    "emomon/pipeline/__init__.py": "import fusion\nimport detector\n",
    "emomon/cli.py": "import importlib\nimportlib.import_module('training.run')\n",
    "fusion/__init__.py": "from emomon.kernel import InputError\n",
    "detector/__init__.py": "",
    "stream/__init__.py": "",
    "training/__init__.py": "",
    "training/run.py": "from emomon.pipeline import x\nfrom . import helpers\n",
    "training/helpers.py": "",
    "benchmarks/__init__.py": "",
}


def test_checker_accepts_a_clean_tree(tmp_path):
    assert violations(write(tmp_path, CLEAN)) == ([], [])


@pytest.mark.parametrize("rel, text, expected", [
    ("fusion/__init__.py", "from emomon.pipeline import FrameResult\n", "fusion (layer 1) imports emomon.pipeline"),
    ("fusion/__init__.py", "import stream\n", "fusion (layer 1) imports stream (layer 1)"),
    ("stream/__init__.py", "def f():\n    from emomon.cli import main\n", "stream (layer 1) imports emomon.cli"),
    ("training/helpers.py", "import importlib\nimportlib.import_module('emomon.cli')\n",
     "training.helpers (layer 3) imports emomon.cli"),
    ("emomon/__init__.py", "from emomon.pipeline import x\n", "emomon (layer 0) imports emomon.pipeline"),
    ("benchmarks/__init__.py", "from training import run\n", "benchmarks (layer 3) imports training.run"),
])
def test_checker_names_each_planted_violation(tmp_path, rel, text, expected):
    root = write(tmp_path, {**CLEAN, rel: text})
    bad, _ = violations(root)
    assert any(line.startswith(expected) for line in bad), bad


def test_checker_finds_a_cycle_hidden_in_a_string(tmp_path):
    root = write(tmp_path, {**CLEAN, "training/helpers.py": "MODULE = 'training.run'\n"})
    assert violations(root)[1] == [["training.helpers", "training.run"]]
