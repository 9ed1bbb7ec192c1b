"""The shape of the code, checked: `python scripts/check_layout.py` prints each figure and exits 1
on a miss (`make test` runs it).

- modules directly in pipeline/ (at most MAX_TOP_MODULES);
- files with SQL outside the store (pipeline/store/, and web/store.py for the web app's reads);
- import cycles, counting imports inside functions;
- imports against the layering: each part of the product imports only the parts below it
  (LAYERS), and nothing of the product imports evaluation/ or tests/;
- imports inside functions: only of heavy or optional libraries, each with a one-line reason
  (a comment on the line or the line above), never of the project's own modules (but the CLI's
  verbs, which load Prefect or the web app only when asked for, each with its reason);
- README lines (at most MAX_README_LINES);
- test files sharing a name in two test folders (tests/ has no packages: pytest refuses to collect
  both, so a run of one folder passes while `make test` fails).
"""
from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("pipeline", "flows", "web")
CHECKED = PRODUCT + ("evaluation", "scripts")
MAX_TOP_MODULES = 6
MAX_README_LINES = 250
SQL_HOMES = ("pipeline/store/", "web/store.py")
# Lower layers first: a module may import its own layer's modules and those of earlier layers.
LAYERS = (
    ("pipeline.version", "pipeline.records", "pipeline.engines"),
    ("pipeline.config",),
    ("pipeline.intake",),
    ("pipeline.speech", "pipeline.vocabulary"),
    ("pipeline.speakers",),
    ("pipeline.analysis",),
    ("pipeline.store",),
    ("pipeline.outputs",),
    ("pipeline.run",),
    ("pipeline",),  # the public face
    ("web",),
    ("flows",),
    ("evaluation", "scripts"),
)
# Project imports a function may make: the CLI loads Prefect and the web app for the verbs that use them.
LAZY_PROJECT_IMPORTS = {"flows/cli.py", "flows/serve.py"}
_SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET|CREATE\s+(?:TABLE|INDEX|VIEW)"
                  r"|ALTER\s+TABLE|DROP\s+TABLE|ATTACH\s|DETACH\s|PRAGMA\s)", re.S)


@dataclass
class Report:
    top_modules: list[str] = field(default_factory=list)
    sql_outside_store: list[str] = field(default_factory=list)
    cycles: list[list[str]] = field(default_factory=list)
    upward: list[str] = field(default_factory=list)
    function_imports: list[str] = field(default_factory=list)
    readme_lines: int = 0
    test_names_twice: list[str] = field(default_factory=list)

    @property
    def misses(self) -> list[str]:
        out = []
        if len(self.top_modules) > MAX_TOP_MODULES:
            out.append(f"{len(self.top_modules)} modules directly in pipeline/ (at most {MAX_TOP_MODULES})")
        out += [f"SQL outside the store: {f}" for f in self.sql_outside_store]
        out += ["import cycle: " + " -> ".join(c + c[:1]) for c in self.cycles]
        out += [f"import against the layers: {u}" for u in self.upward]
        out += [f"import inside a function: {f}" for f in self.function_imports]
        if self.readme_lines > MAX_README_LINES:
            out.append(f"README has {self.readme_lines} lines (at most {MAX_README_LINES})")
        out += [f"test file name in two folders: {n}" for n in self.test_names_twice]
        return out


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(root: Path = ROOT, packages=CHECKED) -> dict[str, Path]:
    return {module_name(p, root): p for package in packages for p in sorted((root / package).rglob("*.py"))
            if ".venv" not in p.parts}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the project module imported ("" when not the project's)
    name: str  # what the statement names
    line: int
    in_function: bool
    reason: bool  # a comment on the line or the line above


def imports(modules: dict[str, Path]) -> list[Import]:
    out = []
    for module, path in modules.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        is_package = path.name == "__init__.py"

        def visit(node, in_function: bool) -> None:
            for child in ast.iter_child_nodes(node):
                inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    reason = _has_reason(lines, child.lineno)
                    targets = {}
                    for name in _names(child, module, is_package):
                        targets.setdefault(_resolve(name, modules), name)  # one entry per module imported
                    # `from package import module` names the module, not the package as well.
                    targets = {t: n for t, n in targets.items()
                               if not any(o != t and o.startswith(t + ".") for o in targets)}
                    out.extend(Import(module, target, name, child.lineno, in_function, reason)
                               for target, name in targets.items())
                visit(child, inside)
        visit(ast.parse(text), False)
    return out


def _has_reason(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, or heading the group of import lines it belongs to."""
    if "#" in lines[lineno - 1]:
        return True
    k = lineno - 2
    while k >= 0 and lines[k].strip().startswith(("import ", "from ")):
        if "#" in lines[k]:
            return True
        k -= 1
    return k >= 0 and lines[k].strip().startswith("#")


def _names(node, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    return [f"{base}.{a.name}" for a in node.names] + [base]


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The project module an imported name lives in ("" for another library's)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def layer_of(module: str) -> int | None:
    best = None
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (i, len(prefix))
    return best[0] if best else None


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def sql_strings(path: Path) -> bool:
    """The file has a string literal that is SQL."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    strings = [t.string for t in tokens if t.type == tokenize.STRING or t.type == getattr(tokenize, "FSTRING_MIDDLE", -1)]
    return any(_SQL.search(s) for s in strings)


def check(root: Path = ROOT) -> Report:
    report = Report()
    report.top_modules = sorted(p.name for p in (root / "pipeline").glob("*.py"))
    product = source_files(root, PRODUCT)
    for module, path in product.items():
        relative = path.relative_to(root).as_posix()
        if not relative.startswith(SQL_HOMES) and sql_strings(path):
            report.sql_outside_store.append(relative)
    modules = source_files(root)
    found = imports(modules)
    graph: dict[str, set[str]] = {}
    for imp in found:
        if imp.target and imp.target != imp.module:
            graph.setdefault(imp.module, set()).add(imp.target)
    # A package's __init__ and its own modules are one unit for cycles (the face imports its parts).
    report.cycles = [c for c in find_cycles(graph) if not _package_and_parts(c)]
    for imp in found:
        if not imp.target or imp.target == imp.module:
            continue
        mine, theirs = layer_of(imp.module), layer_of(imp.target)
        if mine is not None and theirs is not None and theirs > mine:
            report.upward.append(f"{imp.module} imports {imp.target} (line {imp.line})")
        path = modules[imp.module].relative_to(root).as_posix()
        if imp.in_function and imp.module.split(".")[0] in PRODUCT and path not in LAZY_PROJECT_IMPORTS:
            report.function_imports.append(f"{path}:{imp.line} {imp.target} (a project module)")
    seen = set()
    for imp in found:
        path = modules[imp.module].relative_to(root).as_posix()
        if (imp.in_function and not imp.target and not imp.reason and imp.module.split(".")[0] in PRODUCT
                and (path, imp.line) not in seen):
            seen.add((path, imp.line))
            report.function_imports.append(f"{path}:{imp.line} {imp.name.split('.')[0]} (no reason given)")
    readme = root / "README.md"
    report.readme_lines = len(readme.read_text(encoding="utf-8").splitlines()) if readme.exists() else 0
    seen: dict[str, str] = {}
    for test in sorted((root / "tests").rglob("test_*.py")):
        where = test.parent.relative_to(root).as_posix()
        if test.name in seen and seen[test.name] != where:
            report.test_names_twice.append(f"{test.name} ({seen[test.name]}, {where})")
        seen.setdefault(test.name, where)
    return report


def _package_and_parts(component: list[str]) -> bool:
    return len(component) == 2 and (component[1].startswith(component[0] + ".")
                                    or component[0].startswith(component[1] + "."))


def main() -> int:
    report = check()
    print(f"modules directly in pipeline/: {len(report.top_modules)} ({', '.join(report.top_modules)}); "
          f"at most {MAX_TOP_MODULES}")
    print(f"files with SQL outside the store: {len(report.sql_outside_store)}")
    print(f"import cycles (imports inside functions counted): {len(report.cycles)}")
    print(f"imports against the layers: {len(report.upward)}")
    print(f"imports inside functions without a reason, or of the project: {len(report.function_imports)}")
    print(f"README lines: {report.readme_lines}; at most {MAX_README_LINES}")
    print(f"test file names in two folders: {len(report.test_names_twice)}")
    for miss in report.misses:
        print(f"  miss: {miss}")
    return 1 if report.misses else 0


if __name__ == "__main__":
    sys.exit(main())
