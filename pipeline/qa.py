"""QA sampling: a reproducible, stratified sample of calls with a prefilled scorecard.

Strata, in the order they are drawn: every call with a regulator/media/legal flag (always in,
even past N); a quota per agent so every agent is reviewed each period; an over-sample of
high-escalation calls; a random baseline filling the rest up to N. A call sampled in any
earlier period is never drawn again. The seed and the plan are stored with the sample and
every row says why the call was drawn.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .datafiles import read_json
from .store import Store, utcnow


@dataclass(frozen=True)
class SamplingPlan:
    n: int = 20
    seed: int = 0
    start: datetime | None = None  # calls started at or after
    end: datetime | None = None  # ...and before
    high_escalation_share: float = 0.3  # of N, drawn from calls at or above the threshold
    high_escalation_threshold: float = 50.0
    per_agent_quota: int = 1
    always_flags: tuple[str, ...] = ("regulator_threat", "media_threat", "legal_threat")


@dataclass(frozen=True)
class SampledCall:
    call_id: str
    agent_id: str | None
    stratum: str  # flagged | agent_quota | high_escalation | random
    reason: str


@dataclass
class Sample:
    sample_id: str
    plan: SamplingPlan
    calls: list[SampledCall] = field(default_factory=list)
    n_candidates: int = 0


def _candidates(store: Store, plan: SamplingPlan) -> pd.DataFrame:
    where, params = ["c.status = 'ok'", "c.call_id NOT IN (SELECT call_id FROM qa_samples)"], []
    if plan.start:
        where.append("c.started_at >= ?")
        params.append(plan.start)
    if plan.end:
        where.append("c.started_at < ?")
        params.append(plan.end)
    return store.query(
        "SELECT c.call_id, c.agent_id, coalesce(e.call_score, 0) AS score, coalesce(e.flags, '[]') AS flags "
        f"FROM calls c LEFT JOIN escalation e USING (call_id) WHERE {' AND '.join(where)} ORDER BY c.call_id", params)


def draw_sample(store: Store, plan: SamplingPlan) -> Sample:
    """Draw (do not store) a sample; the same data, plan and seed always give the same sample."""
    rng = np.random.default_rng(plan.seed)
    pool = _candidates(store, plan)
    sample = Sample(sample_id=f"qa-{utcnow():%Y%m%dT%H%M%S}-s{plan.seed}", plan=plan, n_candidates=len(pool))
    taken: set[str] = set()

    def take(call_id: str, agent, stratum: str, reason: str) -> None:
        taken.add(call_id)
        sample.calls.append(SampledCall(call_id, agent, stratum, reason))

    for row in pool.itertuples():
        hit = sorted(set(json.loads(row.flags)) & set(plan.always_flags))
        if hit:
            take(row.call_id, row.agent_id, "flagged", "flag: " + ", ".join(hit))
    for agent, group in pool.groupby("agent_id", sort=True):
        have = sum(1 for c in sample.calls if c.agent_id == agent)
        free = [r for r in group.itertuples() if r.call_id not in taken]
        for i in rng.permutation(len(free))[: max(0, plan.per_agent_quota - have)]:
            take(free[i].call_id, agent, "agent_quota", f"quota: agent {agent} reviewed every period")
    high = [r for r in pool.itertuples() if r.call_id not in taken and r.score >= plan.high_escalation_threshold]
    n_high = min(len(high), round(plan.n * plan.high_escalation_share))
    for i in sorted(rng.permutation(len(high))[:n_high]):
        take(high[i].call_id, high[i].agent_id, "high_escalation",
             f"escalation {high[i].score:.0f} >= {plan.high_escalation_threshold:.0f}")
    rest = [r for r in pool.itertuples() if r.call_id not in taken]
    for i in sorted(rng.permutation(len(rest))[: max(0, plan.n - len(sample.calls))]):
        take(rest[i].call_id, rest[i].agent_id, "random", "random baseline")
    return sample


def store_sample(store: Store, sample: Sample, scorecards: dict[str, list[dict]]) -> None:
    rows = [{"sample_id": sample.sample_id, "call_id": c.call_id, "agent_id": c.agent_id, "stratum": c.stratum,
             "reason": c.reason, "seed": sample.plan.seed, "plan": json.dumps(asdict(sample.plan), default=str),
             "drawn_at": utcnow(), "scorecard": json.dumps(scorecards.get(c.call_id, []), ensure_ascii=False)}
            for c in sample.calls]
    if rows:
        store.insert_rows("qa_samples", rows)


# --- scorecard prefill -----------------------------------------------------------------

@lru_cache(maxsize=1)
def scorecard_items() -> list[dict]:
    return read_json("qa_scorecard.json")["items"]


def prefill_scorecard(store: Store, call_id: str) -> list[dict]:
    """Each item: prefilled value (pass / fail / n/a) and the evidence behind it."""
    turns = store.query('SELECT role, start, redacted_text AS text FROM turns WHERE call_id = ? ORDER BY start',
                        [call_id]).to_dict("records")
    agent = [t for t in turns if t["role"] == "agent"]
    dyn = store.query("SELECT * FROM dynamics WHERE call_id = ?", [call_id]).to_dict("records")
    summ = store.query("SELECT deadline_promises FROM summaries WHERE call_id = ?", [call_id]).to_dict("records")
    card = []
    for item in scorecard_items():
        evidence: list[dict] = []
        if item["kind"] == "phrase":
            for t in agent:
                found = [p for p in item["phrases"] if p in (t["text"] or "").lower()]
                if found:
                    evidence.append({"time": round(t["start"], 2), "quote": t["text"], "phrases": found})
            value = "pass" if evidence else "fail"
        elif item["kind"] == "deadline":
            deadlines = json.loads(summ[0]["deadline_promises"]) if summ else []
            evidence = [{"time": d["time"], "quote": d["text"]} for d in deadlines]
            value = "fail" if deadlines else "pass"
        elif item["kind"] == "listening" and dyn:
            d = dyn[0]
            talk = (d["agent_talk_s"] or 0) + (d["customer_talk_s"] or 0)
            share = (d["customer_talk_s"] or 0) / talk if talk else 0.0
            evidence = [{"customer_talk_share": round(share, 2), "agent_interruptions": d["agent_interruptions"]}]
            value = "pass" if share >= item["min_customer_share"] and d["agent_interruptions"] <= item["max_agent_interruptions"] else "fail"
        else:
            value = "n/a"
        card.append({"item": item["id"], "label": item["label"], "prefill": value, "evidence": evidence})
    return card


# --- export and reviews -------------------------------------------------------------------

def export_sample(store: Store, sample_id: str, folder: Path) -> tuple[Path, Path]:
    """The sample with its scorecards as CSV and Parquet for the QA team."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = store.query(
        "SELECT s.sample_id, s.call_id, s.agent_id, c.customer_id, c.started_at, s.stratum, s.reason, s.seed, "
        "e.call_score, e.flags, s.scorecard FROM qa_samples s JOIN calls c USING (call_id) "
        "LEFT JOIN escalation e USING (call_id) WHERE s.sample_id = ? ORDER BY s.stratum, s.call_id", [sample_id])
    csv_path, parquet_path = folder / f"{sample_id}.csv", folder / f"{sample_id}.parquet"
    frame.to_csv(csv_path, index=False)
    frame.to_parquet(parquet_path, index=False)
    return csv_path, parquet_path


def record_review(store: Store, sample_id: str, call_id: str, reviewer: str, scores: dict[str, str],
                  comment: str = "") -> None:
    known = {i["id"] for i in scorecard_items()}
    unknown = set(scores) - known
    if unknown:
        raise ValueError(f"unknown scorecard items {sorted(unknown)}; known: {sorted(known)}")
    if store.query("SELECT 1 FROM qa_samples WHERE sample_id = ? AND call_id = ?", [sample_id, call_id]).empty:
        raise ValueError(f"call {call_id} is not in sample {sample_id}")
    store.insert_rows("qa_reviews", [{"sample_id": sample_id, "call_id": call_id, "reviewer": reviewer,
                                      "reviewed_at": utcnow(), "scores": json.dumps(scores), "comment": comment}])


def sample_rows(sample: Sample) -> list[dict]:
    return [{"call_id": c.call_id, "agent_id": c.agent_id or "", "stratum": c.stratum, "reason": c.reason}
            for c in sample.calls]
