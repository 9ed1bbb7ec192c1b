"""`callbrief`: the same verbs as the flows, for people without a Prefect server."""
from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

from pipeline.config.paths import DEFAULT_INPUT, PROJECT_ROOT
from pipeline.config.settings import SettingsError, load_settings
from pipeline.outputs.alerts import channels_from_settings, deliver_due
from pipeline.outputs.briefing import NoCalls, write_briefing
from pipeline.outputs.qa import (
    QAError,
    SamplingPlan,
    export_sample,
    record_review,
    sample_for_qa,
    sample_rows,
    why_empty,
)
from pipeline.run.retention import nightly_purge, purge
from pipeline.speakers.voiceprints import EnrolmentError, enrol
from pipeline.store import DEFAULT_DB, Store

# What `callbrief run` exits with, so a scheduler can tell a clean night from a bad one.
EXIT_CODES = {"completed": 0, "completed_with_failures": 3, "failed": 2, "cancelled": 130}
WAIT_FOR_BATCH_SECONDS = 12 * 3600.0  # `run --wait`: another batch on the database finishes first


def cmd_run(args: argparse.Namespace) -> int:
    if args.dask_address or args.dask_workers > 1:
        from flows.nightly import run_nightly  # Prefect (seconds of import): only for the verbs that run flows

        load_settings(args.settings)  # a bad file is one line from main(), before a cluster starts

        run = run_nightly(dask_address=args.dask_address, dask_workers=args.dask_workers, input_dir=args.input,
                          db_path=args.db, model=args.model, reprocess=args.reprocess, settings_path=args.settings,
                          preset=args.preset)
        print(f"run {run['run_id']} {run['status']}: {run['n_processed']} processed, {run['n_failed']} failed, "
              f"{run['n_skipped']} skipped on Dask -> {args.db}")
        return EXIT_CODES.get(run["status"], 2)

    from tqdm import tqdm  # the progress bar: only for `run`

    from pipeline.run.execute import (  # the recognition libraries: only for verbs that process calls
        RunStopped,
        run_batch,
    )
    from pipeline.speech.asr import PRESETS

    settings = load_settings(args.settings)  # the centre's zone, policy, models; errors reported by main()
    bars = []  # made once the plan knows how many calls there are
    done_of: dict[str, float] = {}  # call id -> fraction of it counted on the bar
    lock = threading.Lock()  # calls report from the pool's threads

    def advance(call_id: str, fraction: float, postfix: str) -> None:
        with lock:
            step = fraction - done_of.get(call_id, 0.0)
            if step > 0:
                done_of[call_id] = fraction
                bars[0].update(step)
            bars[0].set_postfix_str(postfix)

    def transcribing(rec, seconds):
        # Within a long call the bar moves with the seconds transcribed (each finished call is 1).
        if rec.duration:
            advance(rec.call_id, min(0.99, seconds / rec.duration),
                    f"{rec.call_id}: {seconds / 60:.1f}/{rec.duration / 60:.1f} min")

    def progress(result):
        advance(result.call_id, 1.0, f"{result.call_id}: {result.status}")

    def planned(plan):
        for line in plan.rejected:
            print(f"refused: {line}", file=sys.stderr)
        print(f"{plan.n_found} recordings: {len(plan.todo)} to process "
              f"({sum(r.size_bytes for r in plan.todo) / 1e6:.1f} MB), {len(plan.skipped)} already done", file=sys.stderr)
        for rec, call_id in plan.copies:
            print(f"same audio as call {call_id}: {rec.path.name} (recorded as another path of it)", file=sys.stderr)
        for rec in plan.claimed:
            print(f"left to the run processing it now: {rec.call_id}", file=sys.stderr)
        bars.append(tqdm(total=len(plan.todo), desc="calls", unit="call", unit_scale=True,
                         bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} [{elapsed}<{remaining}{postfix}]"))

    try:
        run, results = run_batch(Path(args.input), Path(args.db), model=args.model, workers=args.workers,
                                 reprocess=args.reprocess, options=PRESETS[args.preset], on_result=progress,
                                 on_plan=planned, settings=settings,
                                 on_progress=transcribing, wait_seconds=WAIT_FOR_BATCH_SECONDS if args.wait else 0.0)
    except RunStopped as stopped:  # recorded as cancelled: say what was written, then exit 130
        run, results = stopped.execution.run, stopped.execution.results
    for bar in bars:
        bar.close()
    for r in sorted(results, key=lambda r: r.call_id):
        lang = r.transcript.language if r.transcript else "-"
        print(f"{r.call_id:24} {r.status:6} {lang:3} {r.recording.duration or 0:6.1f}s {r.error or ''}")
    print(f"run {run.run_id} {run.status}: {run.n_processed} processed, {run.n_failed} failed, {run.n_skipped} "
          f"skipped, {run.n_missing} missing manifest files, {run.n_rejected} refused; {run.audio_seconds:.0f} s "
          f"audio in {run.wall_seconds:.1f} s -> {args.db}")
    if run.status in ("failed", "cancelled"):
        print(f"callbrief: {run.message.splitlines()[0] if run.message else run.status}", file=sys.stderr)
    else:  # the nightly job's last step: raw data past its retention period goes
        for line in nightly_purge(Store(Path(args.db)), settings):
            print(line, file=sys.stderr)
    return EXIT_CODES.get(run.status, 2)


def cmd_brief(args: argparse.Namespace) -> int:
    from pipeline.run.execute import run_batch  # the recognition libraries: only for the verbs that process calls

    settings = load_settings(args.settings)  # a SettingsError is reported by main()
    customer = args.customer.strip()
    # The customer's calls not processed yet come first (but those a running batch has claimed:
    # it is processing them now); the briefing is written once, below.
    claimed: list = []
    run, results = run_batch(Path(args.input), Path(args.db), model=args.model, workers=1, flow="brief",
                             customer_id=customer, refresh=False, settings=settings,
                             on_plan=lambda plan: claimed.extend(plan.claimed))
    if results:
        print(f"processed {len(results)} new call(s) in {run.wall_seconds:.1f} s", file=sys.stderr)
    if claimed:
        print(f"{len(claimed)} newer call(s) are being processed by the running batch", file=sys.stderr)
    store = Store(Path(args.db))
    with store.session():
        try:
            brief, markdown = write_briefing(store, customer, settings=settings, language=args.lang,
                                             pending=len(claimed))
        except NoCalls as exc:
            pending = f"; {len(claimed)} call(s) are being processed by the running batch" if claimed else ""
            print(f"callbrief: {exc}{pending}", file=sys.stderr)
            return 1
    print(brief.to_json() if args.json else markdown)
    return 0


def cmd_qa(args: argparse.Namespace) -> int:
    """QA verbs; bad input (dates, JSON, items, values, ids) ends in one line on stderr, exit 2."""
    def fail(message: str) -> int:
        print(f"callbrief qa {args.qa_verb}: {message}", file=sys.stderr)
        return 2

    if args.qa_verb == "sample":
        try:
            start = datetime.fromisoformat(args.start) if args.start else None
            end = datetime.fromisoformat(args.end) if args.end else None
        except ValueError as exc:
            return fail(f"bad date ({exc}); use ISO 8601, e.g. 2026-11-20 or 2026-11-20T08:00")
        if args.n < 1:
            return fail("-n must be at least 1")
    if args.qa_verb == "review":
        try:
            scores = json.loads(args.scores)
        except json.JSONDecodeError as exc:
            return fail(f"--scores is not valid JSON ({exc.msg} at character {exc.pos}): {args.scores}")
    if not Path(args.db).exists():
        return fail(f"database {args.db} does not exist")
    with Store(Path(args.db)) as store:
        try:
            if args.qa_verb == "sample":

                # The policy's review level and threat flags; a SettingsError is reported by main().
                policy = load_settings(args.settings).policy
                plan = SamplingPlan.for_policy(policy, n=args.n, seed=args.seed, start=start, end=end,
                                               callbacks=args.callbacks)
                sample = sample_for_qa(store, plan)
                if not sample.calls:
                    print(f"0 of {sample.n_candidates} candidate calls: {why_empty(store, plan)}")
                    return 0
                print(f"{sample.sample_id}: {len(sample.calls)} of {sample.n_candidates} candidate calls (seed {args.seed})")
                for row in sample_rows(sample):
                    print(f"  {row['call_id']:20} {row['agent_id']:8} {row['stratum']:16} {row['reason']}")
            elif args.qa_verb == "export":
                out = Path(args.out) if args.out else Path(args.db).resolve().parent / "out" / "qa"
                for path in export_sample(store, args.sample_id, out, load_settings(getattr(args, "settings", None)).export_files):
                    print(path)
            else:
                replaced = record_review(store, args.sample_id, args.call_id, args.reviewer, scores, args.comment)
                print(f"review of {args.call_id} by {args.reviewer} {'updated' if replaced else 'stored'}")
        except QAError as exc:
            return fail(str(exc))
    return 0


def cmd_intake(args: argparse.Namespace) -> int:
    from pipeline.run.watch import watch  # the recognition libraries: only for the verbs that process calls

    settings = load_settings(args.settings)  # a SettingsError is reported by main()
    folder = args.input or settings.intake_dir
    if not folder or not Path(folder).is_dir():
        print(f"callbrief: intake folder {folder or '(none)'} does not exist (--input or intake_dir setting)",
              file=sys.stderr)
        return 2
    if args.serve:
        from flows.intake import serve  # Prefect (seconds of import): only for `intake --serve`

        print(f"serving intake on {folder} every {settings.intake_interval_seconds:g} s (Ctrl-C to stop)")
        serve(folder, args.db, args.model, settings.intake_interval_seconds, args.settings)
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    print(f"watching {folder} every {settings.intake_interval_seconds:g} s -> {args.db} (Ctrl-C to stop)",
          file=sys.stderr)
    try:
        watch(Path(folder), Path(args.db), settings, args.model, max_passes=1 if args.once else None,
              on_pass=lambda report: print(report.line(), flush=True))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)  # a SettingsError is reported by main()
    with Store(Path(args.db)) as store:
        if args.alerts_verb == "deliver":
            report = deliver_due(store, channels_from_settings(settings), retry_seconds=settings.alert_retry_seconds)
            for error in report.errors:
                print(f"  failed: {error}", file=sys.stderr)
            nxt = store.next_delivery_due()
            print(f"{report.delivered} delivered, {report.failed} failed (will retry), {report.pending} pending"
                  + (f"; next attempt due {nxt:%Y-%m-%d %H:%M:%S} UTC" if nxt else ""))
            return 0
        alerts = store.latest_alerts(args.limit)
    for r in alerts:
        print(f"{r['raised_at']:%Y-%m-%d %H:%M} UTC  {r['kind']:16} {r['customer_id'] or '-':8} {r['call_id']:20} "
              f"{r['deliveries'] or 'no channel'}  {r['evidence'][:60]}")
    if not alerts:
        print("no alerts")
    return 0


def cmd_agents(args: argparse.Namespace) -> int:
    """Agent voiceprints: enrol from a recording, list who has one, forget one (biometric data)."""
    with Store(Path(args.db)) as store:
        if args.agents_verb == "enroll":
            try:
                vp = enrol(store, args.agent_id, Path(args.file))
            except EnrolmentError as exc:
                print(f"callbrief: {exc}", file=sys.stderr)
                return 1
            print(f"{vp.agent_id}: voiceprint from {vp.n_sources} source(s), {vp.seconds:.0f} s of speech")
        elif args.agents_verb == "list":
            for row in store.list_voiceprints():
                print(f"{row['agent_id']:12} {row['n_sources']:3} source(s) {row['seconds']:7.1f} s  "
                      f"updated {row['updated_at']}")
        else:
            n = store.forget_voiceprint(args.agent_id)
            if not n:
                print(f"callbrief: no voiceprint for agent {args.agent_id}", file=sys.stderr)
                return 1
            print(f"{args.agent_id}: voiceprint deleted ({n} source(s))")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """`audit verify`: recompute the audit log's chain (pipeline/store/audit.py)."""
    db = Path(args.db)
    if not db.is_file():
        print(f"callbrief: no database at {db}", file=sys.stderr)
        return 2
    check = Store(db).verify_audit()  # a writer: an audit log from before the chain is chained first
    if check.ok:
        last = f"; last hash {check.last_hash}" if check.last_hash else ""
        print(f"audit log OK: {check.rows} row{'' if check.rows == 1 else 's'}, chain verified{last}")
        return 0
    where = f"at row {check.broken_id}" if check.broken_id is not None else f"after row {check.rows}"
    print(f"callbrief: audit log BROKEN {where}: {check.reason}", file=sys.stderr)
    return 1


def cmd_purge(args: argparse.Namespace) -> int:
    """`purge`: delete the raw data past the settings' retention periods (pipeline/run/retention.py)."""
    settings = load_settings(args.settings)  # a bad period is a SettingsError, reported by main(): nothing deleted
    db = Path(args.db)
    if not db.is_file():
        print(f"callbrief: no database at {db}", file=sys.stderr)
        return 2
    report = purge(Store(db), settings, dry_run=args.dry_run)
    for line in report.lines():
        print(line)
    return 1 if report.problems else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from flows.serve import serve_nightly  # Prefect (seconds of import): only for `serve`

    if args.web:  # the web app beside the schedule, in the same process

        web_args = argparse.Namespace(db=args.db, host=None, port=None, settings=args.settings)
        threading.Thread(target=cmd_web, args=(web_args,), daemon=True, name="callbrief-web").start()
    timezone = args.timezone or load_settings(args.settings).timezone  # a SettingsError is reported by main()
    serve_nightly(args.cron, timezone, {"input_dir": args.input, "db_path": args.db, "model": args.model,
                                        "settings_path": args.settings}, port=args.port)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """`make bench` from the CLI: the measurement code lives in the checkout's evaluation/, not
    in the installed package."""
    if not (PROJECT_ROOT / "evaluation" / "bench.py").is_file():
        print("callbrief: bench runs from a source checkout (evaluation/ is not installed); use `make bench` there",
              file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, "-m", "evaluation.bench", *args.rest], cwd=PROJECT_ROOT)


def cmd_users(args: argparse.Namespace) -> int:
    from web import auth  # argon2 and the web app's sessions: only for `users`

    def new_password() -> str:
        if args.password_stdin:
            return sys.stdin.readline().rstrip("\n")
        first = getpass.getpass(f"new password for {args.name}: ")
        if first != getpass.getpass("again: "):
            raise auth.UserError("the two passwords differ")
        return first

    try:
        if args.users_verb == "add":
            auth.add_user(Path(args.db), args.name, args.role, new_password(), args.lang)
            print(f"user {args.name} added ({args.role}, {args.lang})")
        elif args.users_verb == "passwd":
            auth.set_password(Path(args.db), args.name, new_password())
            print(f"password of {args.name} changed; their open sessions ended")
        elif args.users_verb == "disable":
            auth.set_disabled(Path(args.db), args.name, not args.enable)
            print(f"user {args.name} {'enabled' if args.enable else 'disabled'}")
        else:
            for u in auth.list_users(Path(args.db)):
                state = "disabled" if u["disabled"] else ("locked" if u["locked_until"] else "active")
                print(f"{u['username']:20} {u['role']:8} {u['lang']:3} {state}")
    except auth.UserError as exc:
        print(f"callbrief: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """The database key: make one, encrypt a plain database with it, say where it comes from,
    open a sealed file (an export) for a person."""
    from pipeline.config import keys
    from pipeline.store.encryption import encrypt_database

    load_settings(getattr(args, "settings", None))  # encrypt_database and db_key_file; errors from main()
    try:
        if args.keys_verb == "init":
            path, made = keys.init_key(Path(args.key_file) if args.key_file else None, args.if_missing,
                                       db_folders=(Path(DEFAULT_DB).parent,))
            print(f"database key {'made' if made else 'already'} at {path}"
                  + (" (mode 600; back it up apart from the data: without it the database cannot be read)" if made else ""))
        elif args.keys_verb == "encrypt-db":
            done = encrypt_database(Path(args.db), keep_plain=args.keep_plain)
            total = sum(done.tables.values())
            print(f"{done.path} encrypted: {len(done.tables)} tables, {total} rows, the same counts as before"
                  + (f"; the plain copy is kept at {done.kept_plain}" if done.kept_plain else ""))
        elif args.keys_verb == "show":
            key = keys.database_key()
            print(f"key: {key.source}" if key.key else key.source)
            print(f"database {args.db}: " + ("opens" if Store(args.db, read_only=True).query("SELECT 1 AS one").one[0] == 1
                                             else "?"))
        else:  # decrypt
            source = Path(args.file)
            data = keys.unseal(source.read_bytes(), source.name)
            target = Path(args.output) if args.output else source.with_suffix("")
            if target == source or target.exists():
                print(f"callbrief: {target} exists already: give --output", file=sys.stderr)
                return 1
            target.write_bytes(data)
            print(f"{target} written ({len(data)} bytes, plain: delete it when done)")
    except keys.KeyProblem as exc:
        print(f"callbrief: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn  # the web server and app (FastAPI): only for `web`

    from web.app import create_app  # FastAPI: only for `web`

    settings = load_settings(args.settings)  # a SettingsError is reported by main()
    host, port = args.host or settings.web_host, args.port or settings.web_port
    print(f"callbrief web on http://{host}:{port}/ (database {args.db}; Ctrl-C to stop)")
    # proxy_headers off: uvicorn would take X-Forwarded-For from any local process as the client's
    # address; the app reads it itself, only from the proxies named in web_trusted_proxies.
    uvicorn.run(create_app(Path(args.db), settings), host=host, port=port, log_level="warning", proxy_headers=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callbrief", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="process every new recording in a folder (the nightly job)")
    run.add_argument("--input", default=str(DEFAULT_INPUT), help="folder of recordings (+ manifest.csv/json)")
    run.add_argument("--db", default=str(DEFAULT_DB), help="DuckDB file")
    run.add_argument("--model", default="base", help="Whisper model name or CTranslate2 directory")
    run.add_argument("--workers", type=int, default=2, help="calls transcribed at once")
    run.add_argument("--reprocess", action="store_true", help="process again what is already stored")
    run.add_argument("--preset", choices=("accurate", "fast"), default="accurate",
                     help="decoding: accurate (default) or fast (greedy, no rescoring; `make bench` prints what it "
                          "costs in accuracy)")
    run.add_argument("--wait", action="store_true", help="wait for another batch running on the database "
                                                          "(default: exit saying which run holds it)")
    run.add_argument("--dask-address", help="run on an existing Dask cluster, e.g. tcp://scheduler:8786")
    run.add_argument("--dask-workers", type=int, default=0, help="run on a local Dask cluster of N processes")
    run.add_argument("--settings", help="settings TOML (time zone, policy file, model cache...); default callbrief.toml")
    run.set_defaults(func=cmd_run)
    brief = sub.add_parser("brief", help="pre-callback briefing for one customer (processes their new calls first)")
    brief.add_argument("customer", help="customer id")
    brief.add_argument("--input", default=str(DEFAULT_INPUT))
    brief.add_argument("--db", default=str(DEFAULT_DB))
    brief.add_argument("--model", default="base")
    brief.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    brief.add_argument("--lang", choices=("zh", "en"), help="briefing language (default: the latest call's)")
    brief.add_argument("--settings", help="settings TOML (time zone, callback target); default callbrief.toml")
    brief.set_defaults(func=cmd_brief)
    qa = sub.add_parser("qa", help="QA sampling: sample, export, review")
    qa_sub = qa.add_subparsers(dest="qa_verb", required=True)
    qa_s = qa_sub.add_parser("sample", help="draw a stratified sample with prefilled scorecards")
    qa_s.add_argument("-n", type=int, default=20)
    qa_s.add_argument("--seed", type=int, default=0)
    qa_s.add_argument("--start", help="ISO date: calls started at or after")
    qa_s.add_argument("--end", help="ISO date: calls started before")
    qa_s.add_argument("--callbacks", type=int, default=SamplingPlan.callbacks,
                      help="callback calls drawn beyond N, scored on the callback card (default %(default)s)")
    qa_s.add_argument("--settings", help="settings TOML (names the policy file); default callbrief.toml")
    qa_e = qa_sub.add_parser("export", help="write a sample and its scorecards to CSV and Parquet")
    qa_e.add_argument("sample_id")
    qa_e.add_argument("--out", help="folder (default: out/qa next to the database)")
    qa_r = qa_sub.add_parser("review", help="store a reviewer's final scores")
    qa_r.add_argument("sample_id")
    qa_r.add_argument("call_id")
    qa_r.add_argument("--reviewer", required=True)
    qa_r.add_argument("--scores", required=True, help='JSON, e.g. {"greeting": "pass"}')
    qa_r.add_argument("--comment", default="")
    for p in (qa_s, qa_e, qa_r):
        p.add_argument("--db", default=str(DEFAULT_DB))
    qa.set_defaults(func=cmd_qa)
    intake = sub.add_parser("intake", help="process recordings as they arrive in a folder, raise and deliver alerts")
    intake.add_argument("--input", help="arrival folder (default: the intake_dir setting)")
    intake.add_argument("--db", default=str(DEFAULT_DB))
    intake.add_argument("--model", default="base")
    intake.add_argument("--settings", help="settings TOML (see pipeline/config/settings.py)")
    intake.add_argument("--once", action="store_true", help="one pass, then exit")
    intake.add_argument("--serve", action="store_true", help="as a Prefect deployment on the intake interval")
    intake.set_defaults(func=cmd_intake)
    alerts = sub.add_parser("alerts", help="list alerts, or retry pending deliveries")
    alerts_sub = alerts.add_subparsers(dest="alerts_verb", required=True)
    alerts_l = alerts_sub.add_parser("list", help="latest alerts and their delivery status")
    alerts_l.add_argument("--limit", type=int, default=50)
    alerts_d = alerts_sub.add_parser("deliver", help="send every due pending delivery now")
    for p in (alerts_l, alerts_d):
        p.add_argument("--db", default=str(DEFAULT_DB))
        p.add_argument("--settings", help="settings TOML")
    alerts.set_defaults(func=cmd_alerts)
    agents = sub.add_parser("agents", help="agent voiceprints: enroll, list, forget")
    agents_sub = agents.add_subparsers(dest="agents_verb", required=True)
    a_e = agents_sub.add_parser("enroll", help="add a recording of the agent speaking to their voiceprint")
    a_e.add_argument("agent_id")
    a_e.add_argument("file")
    a_l = agents_sub.add_parser("list", help="agents with a voiceprint (never the voiceprint itself)")
    a_f = agents_sub.add_parser("forget", help="delete an agent's voiceprint")
    a_f.add_argument("agent_id")
    for p in (a_e, a_l, a_f):
        p.add_argument("--db", default=str(DEFAULT_DB))
    agents.set_defaults(func=cmd_agents)
    audit = sub.add_parser("audit", help="the audit log: verify its hash chain")
    audit_sub = audit.add_subparsers(dest="audit_verb", required=True)
    audit_v = audit_sub.add_parser("verify", help="recompute the chain: OK with the row count, or the first broken "
                                                  "row (exit 1)")
    audit_v.add_argument("--db", default=str(DEFAULT_DB))
    audit.set_defaults(func=cmd_audit)
    purge_p = sub.add_parser("purge", help="delete raw recordings' paths, raw words and turn texts, and redacted "
                                           "audio past the retention periods (keeps masked text, scores, QA)")
    purge_p.add_argument("--db", default=str(DEFAULT_DB))
    purge_p.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    purge_p.add_argument("--settings", help="settings TOML (the retain_* periods); default callbrief.toml")
    purge_p.set_defaults(func=cmd_purge)
    serve = sub.add_parser("serve", help="run the nightly flow on a schedule")
    serve.add_argument("--cron", default="0 2 * * *", help="cron schedule (default 02:00 daily)")
    serve.add_argument("--timezone", help="zone of the cron (default: the centre's, from settings)")
    serve.add_argument("--port", type=int, default=4200, help="port of the Prefect server started when "
                                                            "PREFECT_API_URL is not set")
    serve.add_argument("--input", default=str(DEFAULT_INPUT))
    serve.add_argument("--db", default=str(DEFAULT_DB))
    serve.add_argument("--model", default="base")
    serve.add_argument("--settings", help="settings TOML (time zone, policy, models); default callbrief.toml")
    serve.add_argument("--web", action="store_true", help="also serve the web app (callbrief web)")
    serve.set_defaults(func=cmd_serve)
    users = sub.add_parser("users", help="web app users: add, passwd, disable, list")
    users_sub = users.add_subparsers(dest="users_verb", required=True)
    u_add = users_sub.add_parser("add", help="add a user (asks for the password: 12+ characters, not a common one)")
    u_add.add_argument("name")
    u_add.add_argument("--role", required=True, choices=["handler", "qa", "lead", "admin"])
    u_add.add_argument("--lang", default="zh", choices=["zh", "en"],
                       help="the language the user reads the web app in (default zh; they can change it on /settings)")
    u_pw = users_sub.add_parser("passwd", help="set a new password (ends the user's sessions)")
    u_pw.add_argument("name")
    u_dis = users_sub.add_parser("disable", help="disable a user (ends their sessions)")
    u_dis.add_argument("name")
    u_dis.add_argument("--enable", action="store_true", help="enable the user again")
    u_list = users_sub.add_parser("list", help="list users")
    for p in (u_add, u_pw, u_dis, u_list):
        p.add_argument("--db", default=str(DEFAULT_DB))
        p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (scripts)")
    users.set_defaults(func=cmd_users)
    web = sub.add_parser("web", help="the web app for handlers, QA and leads (http://127.0.0.1:8765/)")
    web.add_argument("--db", default=str(DEFAULT_DB))
    web.add_argument("--host", help="address to bind (default: the web_host setting, 127.0.0.1)")
    web.add_argument("--port", type=int, help="port (default: the web_port setting, 8765)")
    web.add_argument("--settings", help="settings TOML file")
    web.set_defaults(func=cmd_web)
    keys_p = sub.add_parser("keys", help="the database key: init, encrypt-db, show, decrypt")
    keys_sub = keys_p.add_subparsers(dest="keys_verb", required=True)
    k_init = keys_sub.add_parser("init", help="make a new database key file (mode 600, in your config folder)")
    k_init.add_argument("--key-file", help="where (default: the db_key_file setting, else ~/.config/callbrief/db.key)")
    k_init.add_argument("--if-missing", action="store_true", help="do nothing when the key file exists")
    k_enc = keys_sub.add_parser("encrypt-db", help="encrypt a plain database with the key (row counts compared)")
    k_enc.add_argument("--keep-plain", action="store_true", help="keep the plain file as <db>.plain")
    k_show = keys_sub.add_parser("show", help="where the key comes from, and whether the database opens with it")
    for p in (k_enc, k_show):
        p.add_argument("--db", default=str(DEFAULT_DB))
    k_dec = keys_sub.add_parser("decrypt", help="write the plain content of a sealed file (an export's .enc)")
    k_dec.add_argument("file")
    k_dec.add_argument("--output", help="where (default: the name without .enc)")
    for p in (k_init, k_enc, k_show, k_dec):
        p.add_argument("--settings", help="settings TOML (encrypt_database, db_key_file)")
    keys_p.set_defaults(func=cmd_keys)
    bench = sub.add_parser("bench", help="measure speed and memory per stage")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(func=cmd_bench)
    return parser


def _stop_on_sigterm() -> None:
    """SIGTERM (a scheduler or service manager stopping us) stops a run as Ctrl-C does: the run
    ends cancelled within seconds instead of being killed mid-write. Once: a second one is ignored
    while the run records itself. SIGINT always stops it, even when the process started with it ignored."""
    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        # A script's background job starts with SIGINT ignored (`callbrief run ... &`): a
        # `kill -INT` must still stop the run as Ctrl-C does.
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _stop_on_sigterm()
    try:
        load_settings(getattr(args, "settings", None))  # the database key's settings, for every verb
        return args.func(args)
    except KeyboardInterrupt:
        print("callbrief: interrupted", file=sys.stderr)
        return 130
    except SettingsError as exc:  # the user's settings file or environment: the message says what to fix
        print(f"callbrief: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - people, not engineers, read this: one line, no traceback
        if os.environ.get("CALLBRIEF_DEBUG"):
            raise
        print(f"callbrief: {one_line(exc)} (set CALLBRIEF_DEBUG=1 for the details)", file=sys.stderr)
        return 2


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, (OSError, ValueError, RuntimeError)) and text else f"{exc.__class__.__name__}: {text}"


if __name__ == "__main__":
    sys.exit(main())
