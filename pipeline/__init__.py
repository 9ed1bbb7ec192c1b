"""callbrief: call-recording analysis for complaint handling. Knows nothing of Prefect.

The names a user calls:

    process_folder(input_dir, db_path)       every new recording of a folder, into the database
    process_recording(recording, spec)       one recording through every stage (a CallResult)
    brief(store, customer_id)                a customer's pre-callback briefing, written and returned
    sample_for_qa(store, plan)               a stratified QA sample with prefilled scorecards
    open_store(path)                         the DuckDB database (pipeline.store.Store)

Everything else is in the stage packages: intake, speech, vocabulary, speakers, analysis,
outputs, run and store (docs/architecture.md).
"""
from importlib import import_module

from pipeline.version import __version__

# Loaded on first use: `import pipeline.records` (the web app, the CLI's light verbs) must not
# load every stage and the recognition libraries behind them.
_PUBLIC = {"process_folder": ("pipeline.run.execute", "run_batch"),
           "process_recording": ("pipeline.run.stages", "process_recording"),
           "brief": ("pipeline.outputs.briefing", "write_briefing"),
           "sample_for_qa": ("pipeline.outputs.qa", "sample_for_qa"),
           "SamplingPlan": ("pipeline.outputs.qa", "SamplingPlan"),
           "open_store": ("pipeline.store", "Store")}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    module, attr = _PUBLIC[name]
    return getattr(import_module(module), attr)
