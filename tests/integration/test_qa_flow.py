"""The QA sampling flow under Prefect: it publishes the sample, and explains an empty one."""
import io
import json
import shutil
from pathlib import Path

import pandas as pd

from pipeline.config.keys import unseal
from pipeline.outputs.qa import scorecard_items


def test_qa_flow_publishes_the_sample_and_explains_an_empty_one(prefect_harness, replayed, tmp_path):
    from prefect.artifacts import Artifact

    from flows.qa_sample import qa_sample

    db = tmp_path / "copy.duckdb"
    shutil.copy2(replayed, db)
    result = qa_sample(n=3, seed=5, db_path=str(db))
    assert result["n"] >= 3 and {"en-2002", "zh-1001-b"} <= {c["call_id"] for c in result["calls"]}  # flagged
    assert Path(result["parquet"]).parent == tmp_path / "out" / "qa"  # next to the database
    sealed = Path(result["parquet"])  # sealed with the database key: export_files defaults to encrypted
    assert sealed.name.endswith(".parquet.enc") and not sealed.read_bytes().startswith(b"PAR1")
    exported = pd.read_parquet(io.BytesIO(unseal(sealed.read_bytes())))
    assert {f"prefill_{i['id']}" for i in scorecard_items()} <= set(exported.columns)
    table = Artifact.get("qa-sample").data
    assert "en-2002" in (table if isinstance(table, str) else json.dumps(table))
    qa_sample(n=3, seed=5, db_path=str(db))
    empty = qa_sample(n=3, seed=5, db_path=str(db))
    assert empty["n"] == 0 and "already sampled" in empty["why_empty"]
