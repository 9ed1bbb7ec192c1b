"""QA sampling flow: draw the period's sample, prefill scorecards, store, export, publish."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_table_artifact

from pipeline.qa import SamplingPlan, draw_sample, export_sample, prefill_scorecard, sample_rows, store_sample
from pipeline.store import DEFAULT_DB, Store

DEFAULT_EXPORT = Path(__file__).resolve().parent.parent / "data" / "out" / "qa"


@flow(name="qa-sample")
def qa_sample(n: int = 20, seed: int = 0, start: str | None = None, end: str | None = None,
              db_path: str = str(DEFAULT_DB), export_dir: str = str(DEFAULT_EXPORT)) -> dict:
    plan = SamplingPlan(n=n, seed=seed, start=datetime.fromisoformat(start) if start else None,
                        end=datetime.fromisoformat(end) if end else None)
    with Store(db_path) as store:
        sample = draw_sample(store, plan)
        cards = {c.call_id: prefill_scorecard(store, c.call_id) for c in sample.calls}
        store_sample(store, sample, cards)
        csv_path, parquet_path = export_sample(store, sample.sample_id, Path(export_dir))
    create_table_artifact(key="qa-sample", table=sample_rows(sample) or [{"call_id": "", "stratum": "none drawn"}],
                          description=f"{sample.sample_id}: {len(sample.calls)} of {sample.n_candidates} candidate calls")
    return {"sample_id": sample.sample_id, "n": len(sample.calls), "csv": str(csv_path), "parquet": str(parquet_path),
            "calls": sample_rows(sample)}
