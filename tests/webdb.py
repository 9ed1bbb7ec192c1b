"""The web app's test database: the replayed sample calls with briefings, the app's users and a QA sample."""
from __future__ import annotations

from pathlib import Path

PASSWORDS = {"hana": ("handler", "handler-pass-1"), "hugo": ("handler", "handler-pass-2"),
             "quinn": ("qa", "qa-pass-12345"), "lee": ("lead", "lead-pass-123"), "ada": ("admin", "admin-pass-12")}
ROLE_USER = {"handler": "hana", "qa": "quinn", "lead": "lee", "admin": "ada"}


def make_web_db(db_path: Path) -> list:
    """The replayed sample calls with briefings, the app's users, and a QA sample with prefilled
    scorecards; returns the replayed CallResults (for tests that write them again)."""
    from evaluation.recognition import replay_call, stored_ids
    from pipeline.outputs.qa import SamplingPlan, draw_sample, prefill_scorecard, store_sample
    from pipeline.run.execute import refresh_briefings, write_result
    from pipeline.store import Store
    from web import auth

    results = [replay_call(c) for c in stored_ids()]
    with Store(db_path) as store:
        for result in results:
            write_result(store, result)
        refresh_briefings(store, results)
        sample = draw_sample(store, SamplingPlan(n=4, seed=1))
        store_sample(store, sample, {c.call_id: prefill_scorecard(store, c.call_id) for c in sample.calls})
    for name, (role, password) in PASSWORDS.items():
        auth.add_user(db_path, name, role, password)
    return results
