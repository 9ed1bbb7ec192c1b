"""Intake flow: one pass over the arrival folder (new complete recordings processed, alerts raised
and delivered). Deployed on a short interval (`callbrief intake --serve`, needs a Prefect server);
`callbrief intake` runs the same pass in a polling loop without Prefect. The work is in
`pipeline.run.watch`."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from pipeline.config.settings import load_settings
from pipeline.run.watch import intake_pass
from pipeline.store import DEFAULT_DB


@flow(name="intake", log_prints=True)
def intake(input_dir: str | None = None, db_path: str = str(DEFAULT_DB), model: str = "base",
           settings_path: str | None = None) -> dict:
    settings = load_settings(settings_path)
    folder = input_dir or settings.intake_dir
    if not folder:
        raise ValueError("no intake folder: pass input_dir or set intake_dir in the settings")
    report = intake_pass(Path(folder), Path(db_path), settings, model)
    get_run_logger().info(report.line())
    d = report.deliveries
    return {"new_files": [str(p) for p in report.new_files], "still_arriving": len(report.incomplete),
            "calls": [{"call_id": r.call_id, "status": r.status, "error": r.error or ""} for r in report.results],
            "alerts_delivered": d.delivered if d else 0, "alerts_pending": d.pending if d else 0}


def serve(input_dir: str, db_path: str, model: str, interval_seconds: float, settings_path: str | None = None) -> None:
    intake.serve(name="callbrief-intake", interval=interval_seconds,
                 parameters={"input_dir": input_dir, "db_path": db_path, "model": model,
                             "settings_path": settings_path})


if __name__ == "__main__":
    intake()
