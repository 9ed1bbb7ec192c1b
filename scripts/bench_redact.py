"""redact() throughput on the sample transcripts (stored recognition runs + data/samples truth).

CPU time, best of 15 passes of 40 repetitions, so other load on a shared machine matters less.
Usage, from the repository root:
    python scripts/bench_redact.py                       # this checkout's pipeline/analysis/redact.py
    git show beae484:pipeline/analysis/redact.py > /tmp/redact_old.py
    python scripts/bench_redact.py /tmp/redact_old.py    # an older version, same texts
"""
from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load(path: str | None):
    sys.path.insert(0, str(ROOT))
    if not path:
        import pipeline.analysis.redact as module

        return module
    spec = importlib.util.spec_from_file_location("redact_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def sample_texts() -> list[str]:
    texts = []
    for p in sorted((ROOT / "tests" / "recognition").glob("*.json")):
        texts += [s["text"] for s in json.loads(p.read_text(encoding="utf-8"))["transcript"]["segments"]]
    for p in sorted((ROOT / "data" / "samples" / "truth").glob("*.json")):
        texts += [t["text"] for t in json.loads(p.read_text(encoding="utf-8"))["turns"]]
    return texts


def chars_per_second(module, texts: list[str], reps: int = 40) -> float:
    module.redact(texts[0])  # data files loaded, patterns compiled
    best = float("inf")
    for _ in range(15):
        t0 = time.process_time()
        for _ in range(reps):
            for text in texts:
                module.redact(text)
        best = min(best, time.process_time() - t0)
    return sum(map(len, texts)) * reps / best


def main(argv: list[str]) -> None:
    module = load(argv[0] if argv else None)
    from tests.unit.test_redact import ISSUE_9_LEAKS  # importable once load() put the root on the path

    texts = sample_texts()
    print(f"{module.__file__}: sample transcripts ({len(texts)} texts, {sum(map(len, texts))} chars) "
          f"{chars_per_second(module, texts):,.0f} chars/s; issue-9 numbers only (digit-dense) "
          f"{chars_per_second(module, [t for t, _ in ISSUE_9_LEAKS]):,.0f} chars/s")


if __name__ == "__main__":
    main(sys.argv[1:])
