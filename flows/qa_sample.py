"""QA sampling flow: draw the period's sample, prefill scorecards, store, export, publish."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_table_artifact

from pipeline.config.settings import load_settings
from pipeline.outputs.qa import (
    SamplingPlan,
    export_sample,
    sample_for_qa,
    sample_rows,
    why_empty,
)
from pipeline.store import DEFAULT_DB, Store


@flow(name="qa-sample")
def qa_sample(n: int = 20, seed: int = 0, start: str | None = None, end: str | None = None,
              db_path: str = str(DEFAULT_DB), export_dir: str | None = None) -> dict:
    """Draw, prefill, store and export a sample; the export goes next to the database unless
    `export_dir` is given. An empty sample is not stored and says why."""
    settings = load_settings()
    plan = SamplingPlan.for_policy(settings.policy, n=n, seed=seed,
                                   start=datetime.fromisoformat(start) if start else None,
                                   end=datetime.fromisoformat(end) if end else None)
    export = Path(export_dir) if export_dir else Path(db_path).resolve().parent / "out" / "qa"
    with Store(db_path) as store:
        sample = sample_for_qa(store, plan)
        if not sample.calls:
            reason = why_empty(store, plan)
            create_table_artifact(key="qa-sample", table=[{"call_id": "", "stratum": "none drawn", "reason": reason}],
                                  description=f"0 of {sample.n_candidates} candidate calls: {reason}")
            return {"sample_id": None, "n": 0, "why_empty": reason, "calls": []}
        csv_path, parquet_path = (export_sample(store, sample.sample_id, export, settings.export_files)
                                  if settings.export_files != "none" else (None, None))  # exports off by policy
    create_table_artifact(key="qa-sample", table=sample_rows(sample) or [{"call_id": "", "stratum": "none drawn"}],
                          description=f"{sample.sample_id}: {len(sample.calls)} of {sample.n_candidates} candidate calls")
    return {"sample_id": sample.sample_id, "n": len(sample.calls), "csv": csv_path and str(csv_path),
            "parquet": parquet_path and str(parquet_path),
            "calls": sample_rows(sample)}
