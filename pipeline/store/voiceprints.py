"""Agent voiceprints, one row per source (an enrolment recording, or one stereo call's agent
channel). Biometric: deletable (`callbrief agents forget`), never exported."""
from __future__ import annotations

import json

import numpy as np

from pipeline.store.calls import utcnow


class VoiceprintsTable:
    """Mixed into `Store`: the voiceprints table (pipeline.speakers.voiceprints combines the sources)."""

    def add_voiceprint_source(self, agent_id: str, source: str, embedding, seconds: float) -> None:
        """Add (or replace) one source of an agent's voiceprint. Idempotent per (agent, source);
        inside a call's transaction when one is open in this thread."""
        self.execute("INSERT OR REPLACE INTO voiceprints (agent_id, source, embedding, seconds, added_at) "
                     "VALUES (?, ?, ?, ?, ?)", [agent_id, source, [float(x) for x in embedding], float(seconds), utcnow()])

    def voiceprint_sources(self, agent_ids: list[str] | None = None) -> dict[str, list[tuple[np.ndarray, float]]]:
        """agent_id -> [(embedding, seconds of speech)] per source."""
        by_agent: dict[str, list] = {}
        with self.session() as conn:
            found = conn.execute("SELECT agent_id, embedding, seconds FROM voiceprints").fetchall()
        for agent_id, embedding, seconds in found:
            if agent_ids is None or agent_id in agent_ids:
                by_agent.setdefault(agent_id, []).append((np.asarray(embedding, dtype=np.float32), seconds))
        return by_agent

    def list_voiceprints(self) -> list[dict]:
        """Who has a voiceprint, from how much speech and how many sources (never the embedding)."""
        with self.session() as conn:
            found = conn.execute("SELECT agent_id, count(*), sum(seconds), max(added_at), list(source ORDER BY source) "
                                 "FROM voiceprints GROUP BY agent_id ORDER BY agent_id").fetchall()
        return [{"agent_id": a, "n_sources": n, "seconds": round(s, 1), "updated_at": str(t), "sources": json.dumps(src)}
                for a, n, s, t, src in found]

    def forget_voiceprint(self, agent_id: str) -> int:
        """Delete every source of an agent's voiceprint; returns how many were deleted."""
        with self.transaction() as conn:
            n = conn.execute("SELECT count(*) FROM voiceprints WHERE agent_id = ?", [agent_id]).fetchone()[0]
            conn.execute("DELETE FROM voiceprints WHERE agent_id = ?", [agent_id])
        return int(n)
