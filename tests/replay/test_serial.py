"""A call's results survive the trip through the versioned record workers hand back (Dask, Prefect)."""
from __future__ import annotations

import json

import pytest

from evaluation.recognition import replay_call, stored_ids


@pytest.mark.parametrize("call_id", stored_ids())
def test_a_call_result_round_trips_through_its_record(call_id):
    from pipeline.run.serial import from_record, to_record

    result = replay_call(call_id)
    back = from_record(json.loads(json.dumps(to_record(result), ensure_ascii=False)))
    assert back == result
    assert back.status == "ok" and back.turns and back.escalation and back.summary


def test_a_record_of_another_version_is_refused():
    from pipeline.run.serial import RECORD_VERSION, from_record

    with pytest.raises(ValueError, match="version"):
        from_record({"record_version": RECORD_VERSION + 1, "call_result": {}})
