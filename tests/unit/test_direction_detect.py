"""Call direction: the manifest column (a bad value refuses its row only) and detection from the
opening of a call on the hand-written labelled openings and the team's conversations."""
from __future__ import annotations

import json
from pathlib import Path

from evaluation.eval_direction import CONVERSATIONS, OPENINGS, _timed, judge, load
from pipeline.analysis.direction import call_direction, detect_direction, load_cues
from pipeline.intake.manifest import read_manifest
from pipeline.records import CallMetadata, Direction, Turn


def test_a_bad_direction_refuses_its_row_only_with_a_one_line_reason(tmp_path: Path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("call_id,file,customer_id,case_id,direction\n"
                        "k1,a.wav,C1,K-1,inbound\n"
                        "k2,b.wav,C1,K-1,Callback\n"
                        "k3,c.wav,C1,K-1,call-back\n"
                        "k4,d.wav,C1,K-1,\n", encoding="utf-8")
    read = read_manifest(manifest)
    assert {r.metadata.call_id: r.metadata.direction for r in read.rows} == {"k1": "inbound", "k2": "callback",
                                                                              "k4": None}
    (bad,) = read.rejected
    assert (bad.line, bad.field) == (4, "direction") and "\n" not in str(bad)
    assert "'call-back'" in str(bad) and "inbound, outbound, callback" in str(bad)
    assert read.refused_files == [("c.wav", 4)]


def test_a_json_manifest_takes_the_direction_too(tmp_path: Path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps([{"call_id": "k1", "file": "a.wav", "direction": "outbound"},
                                    {"call_id": "k2", "file": "b.wav", "direction": 3}]), encoding="utf-8")
    read = read_manifest(manifest)
    assert [r.metadata.direction for r in read.rows] == ["outbound"]
    assert [r.field for r in read.rejected] == ["direction"]


def test_the_manifest_wins_over_detection():
    greeting = [Turn("agent", None, 0.3, 3.0, "Thank you for calling Ruihe Bank, how can I help you?")]
    assert call_direction(CallMetadata("k1", direction="callback"), greeting).source == "manifest"
    found = call_direction(CallMetadata("k1"), greeting)
    assert (found.direction, found.source) == (Direction.INBOUND, "detected") and found.confidence > 0.9


def test_detection_on_the_labelled_openings_and_conversations():
    openings, conversations = judge(load(OPENINGS)), judge(load(CONVERSATIONS))
    assert len(openings) >= 12 and {r["truth"] for r in openings} == set(Direction)
    for results, at_least in ((openings, 0.9), (conversations, 0.85)):
        right = sum(r["truth"] == r["detected"] for r in results)
        assert right >= at_least * len(results), [r for r in results if r["truth"] != r["detected"]]
        # The costly mistake: an inbound complaint taken for a callback leaves the complaint's clock.
        assert not [r for r in results if r["truth"] == "inbound" and r["detected"] == "callback"]
        assert all(0 < r["confidence"] <= 1 for r in results)


def test_evidence_is_a_masked_quote_with_its_time():
    call = {"language": "zh", "turns": [
        {"role": "customer", "start": 0.5, "text": "喂？"},
        {"role": "agent", "start": 1.2, "text": "您好，这里是瑞和银行，就您尾号4111111111111111的信用卡年费投诉给您回电。"}]}
    found = detect_direction(_timed(call))
    assert found.direction == Direction.CALLBACK and found.time == 1.2
    assert "4111111111111111" not in found.quote and "回电" in found.quote
    assert "calling_back" in found.cues and "customer_answers" in found.cues


def test_no_cue_leaves_the_prior():
    found = detect_direction([Turn("customer", None, 0.0, 2.0, "嗯嗯")])
    assert (found.direction, found.confidence, found.quote, found.time) == ("inbound", 0.7, "", None)
    assert detect_direction([]).direction == Direction.INBOUND
    prior = load_cues().prior
    assert abs(sum(prior.values()) - 1) < 1e-9
