"""`callbrief`: the same verbs as the flows, for people without a Prefect server."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.store import DEFAULT_DB

DEFAULT_INPUT = Path(__file__).resolve().parent.parent / "data" / "samples"


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pipeline.batch import run_batch

    bar = tqdm(desc="calls", unit="call")

    def progress(result):
        bar.update(1)
        bar.set_postfix_str(f"{result.call_id}: {result.status}")

    run, results = run_batch(Path(args.input), Path(args.db), model=args.model, workers=args.workers,
                             reprocess=args.reprocess, on_result=progress)
    bar.close()
    for r in sorted(results, key=lambda r: r.call_id):
        lang = r.transcript.language if r.transcript else "-"
        print(f"{r.call_id:24} {r.status:6} {lang:3} {r.recording.duration or 0:6.1f}s {r.error or ''}")
    print(f"run {run.run_id}: {run.n_processed} processed, {run.n_failed} failed, {run.n_skipped} skipped, "
          f"{run.n_missing} missing manifest files; {run.audio_seconds:.0f} s audio in {run.wall_seconds:.1f} s "
          f"-> {args.db}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from flows.nightly import nightly

    print(f"serving nightly on cron '{args.cron}' (Ctrl-C to stop)")
    nightly.serve(name="callbrief-nightly", cron=args.cron,
                  parameters={"input_dir": args.input, "db_path": args.db, "model": args.model})
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from pipeline.bench import main as bench_main

    return bench_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callbrief", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="process every new recording in a folder (the nightly job)")
    run.add_argument("--input", default=str(DEFAULT_INPUT), help="folder of recordings (+ manifest.csv/json)")
    run.add_argument("--db", default=str(DEFAULT_DB), help="DuckDB file")
    run.add_argument("--model", default="base", help="Whisper model name or CTranslate2 directory")
    run.add_argument("--workers", type=int, default=2, help="calls transcribed at once")
    run.add_argument("--reprocess", action="store_true", help="process again what is already stored")
    run.set_defaults(func=cmd_run)
    serve = sub.add_parser("serve", help="run the nightly flow on a schedule")
    serve.add_argument("--cron", default="0 2 * * *", help="cron schedule (default 02:00 daily)")
    serve.add_argument("--input", default=str(DEFAULT_INPUT))
    serve.add_argument("--db", default=str(DEFAULT_DB))
    serve.add_argument("--model", default="base")
    serve.set_defaults(func=cmd_serve)
    bench = sub.add_parser("bench", help="measure speed and memory per stage")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
