"""The shape of the code holds (scripts/check_layout.py, which `make test` also runs on its own):
no import cycle, counting the imports inside functions; each part imports only the parts below
it; nothing of the product imports evaluation/ or tests/; SQL only in the store; imports in
functions only of heavy or optional libraries, each with its reason; a README of one screen."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_layout", ROOT / "scripts" / "check_layout.py")
layout = importlib.util.module_from_spec(_spec)
sys.modules["check_layout"] = layout  # its dataclasses look themselves up there
_spec.loader.exec_module(layout)


def test_the_layout_checks_hold_on_this_checkout():
    report = layout.check(ROOT)
    assert len(report.top_modules) <= layout.MAX_TOP_MODULES
    assert report.misses == []


def test_the_import_graph_is_read_from_function_bodies_too():
    found = layout.imports(layout.source_files(ROOT))
    inside = {(i.module, i.target) for i in found if i.in_function}
    # The CLI loads Prefect only for the verbs that run flows: an import inside a function, seen.
    assert ("flows.cli", "flows.nightly") in inside
    assert len({i.module for i in found}) > 60


def test_the_cycle_finder_sees_a_cycle_through_any_edge():
    assert layout.find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layout.find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_layers_refuse_an_upward_import(tmp_path):
    # A copy of the checks on a small tree: pipeline/records.py importing the store is refused,
    # as is pipeline importing web, and SQL outside the store.
    (tmp_path / "pipeline" / "store").mkdir(parents=True)
    (tmp_path / "web").mkdir()
    (tmp_path / "README.md").write_text("callbrief\n")
    (tmp_path / "pipeline" / "__init__.py").write_text("")
    (tmp_path / "pipeline" / "store" / "__init__.py").write_text('SQL = "SELECT 1 FROM calls"\n')
    (tmp_path / "pipeline" / "records.py").write_text("from pipeline.store import SQL\nimport web.app\n")
    (tmp_path / "web" / "__init__.py").write_text("")
    (tmp_path / "web" / "app.py").write_text('def page(conn):\n    return conn.execute("SELECT * FROM calls")\n')
    report = layout.check(tmp_path)
    assert report.upward == ["pipeline.records imports pipeline.store (line 1)", "pipeline.records imports web.app (line 2)"]
    assert report.sql_outside_store == ["web/app.py"]


def test_a_function_import_needs_a_reason_and_never_of_the_project(tmp_path):
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "README.md").write_text("x\n")
    (tmp_path / "pipeline" / "__init__.py").write_text("")
    (tmp_path / "pipeline" / "a.py").write_text("def f():\n    import torch\n    from pipeline import b\n")
    (tmp_path / "pipeline" / "b.py").write_text("def g():\n    import torch  # heavy: loaded on first use\n")
    report = layout.check(tmp_path)
    assert report.function_imports == ["pipeline/a.py:3 pipeline.b (a project module)",
                                       "pipeline/a.py:2 torch (no reason given)"]


def test_a_test_file_name_in_two_folders_is_refused(tmp_path):
    """pytest collects tests/ without packages: two test_x.py in two folders stop `make test`."""
    for folder in ("unit", "replay"):
        (tmp_path / "tests" / folder).mkdir(parents=True)
        (tmp_path / "tests" / folder / "test_direction.py").write_text("")
    (tmp_path / "tests" / "unit" / "test_other.py").write_text("")
    (tmp_path / "README.md").write_text("callbrief\n")
    report = layout.check(tmp_path)
    assert report.test_names_twice == ["test_direction.py (tests/replay, tests/unit)"]
    assert any("test_direction.py" in m for m in report.misses)
