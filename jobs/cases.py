"""``claimsentry cases list|show|event``: work audit cases through their lifecycle.

- ``list`` — one line per case with its state, days in it and deadline; filters ``--state``,
  ``--npi``, ``--overdue``, ``--due-soon``; ``--as-of D`` shows the cases as they stood on D.
- ``show CASE_ID`` — the queued claim (score, money, reasons) and the case's timeline.
- ``event CASE_ID STATE [--date D] [--by WHO] [--outcome O] [--amount X] [--note T]`` records one
  lifecycle event; ``event --file F`` records a CSV of them (columns case_id, state, event_date,
  and optionally actor, outcome, amount, note), walking cases through several states in file order.

States and the moves allowed between them: ``claimsentry.cases.TRANSITIONS``. Deadlines per state:
``cases.deadlines_days`` in the config. Events are append-only (``<history_dir>/events/``): a row
that breaks a rule is rejected with its reason — stored beside them as CSV — never dropped.
Re-importing a file, or repeating the same ``event`` command, replaces its own earlier events.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
from pathlib import Path

import pandas as pd

from claimsentry import cases
from claimsentry.errors import InputError
from claimsentry.io import read_user_csv, write_csv_for_spreadsheets

EVENT_FIELDS = ["case_id", "state", "event_date", "actor", "outcome", "amount", "note"]


def _date(text: str | None, name: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{name} {text!r} is not YYYY-MM-DD") from None


def _read_events(path: Path) -> pd.DataFrame:
    frame = read_user_csv(path, "events file")
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in ("case_id", "state", "event_date") if c not in frame.columns]
    if missing:
        raise InputError(f"events file needs columns case_id, state, event_date; missing {missing} in {path}")
    for col in EVENT_FIELDS:
        if col not in frame.columns:
            frame[col] = ""
    return frame.apply(lambda s: s.str.strip())


def record(settings, frame: pd.DataFrame, *, key: str, source: str, today: dt.date | None = None, actor: str | None = None) -> dict:
    """Check and store one batch of events. Returns counts and the rejected rows' reasons."""
    root = cases.history_dir(settings)
    accepted, rejected = cases.check_events(
        frame, root, today=today or dt.date.today(), actor=actor or getpass.getuser(), skip_key=key
    )
    stored = cases.store_events(root, accepted, key=key, source=source)
    rejected_path = root / "events" / "rejected" / f"{key}.csv"
    if len(rejected):
        rejected_path.parent.mkdir(parents=True, exist_ok=True)
        write_csv_for_spreadsheets(rejected, rejected_path)
    return {
        "rows": int(len(frame)),
        "accepted": int(len(accepted)),
        "rejected": int(len(rejected)),
        "stored": str(stored) if stored else None,
        "rejected_path": str(rejected_path) if len(rejected) else None,
        "rejections": rejected[["source_row", "reason"]].to_dict("records"),
    }


def _fmt_money(value) -> str:
    return "" if value is None or pd.isna(value) else f"${float(value):,.2f}"


def _list(args, settings) -> int:
    as_of = _date(args.as_of, "--as-of") or dt.date.today()
    board = cases.case_board(cases.history_dir(settings), settings, as_of)
    if args.state:
        unknown = set(args.state) - set(cases.STATES)
        if unknown:
            raise InputError(f"unknown state {sorted(unknown)[0]!r}; states are {', '.join(cases.STATES)}")
        board = board[board["state"].isin(args.state)]
    if args.npi:
        board = board[board["billing_npi"].astype(str) == args.npi]
    if args.overdue:
        board = board[board["overdue"]]
    if args.due_soon:
        board = board[board["due_soon"]]
    board = board.sort_values(["days_left", "run_date", "rank"], na_position="last")
    if args.json:
        print(board.to_json(orient="records", date_format="iso"))
        return 0
    print(f"{len(board)} cases as of {as_of}")
    print(f"{'case':<16} {'claim':<18} {'state':<18} {'since':<10}  {'due':<10} {'left':>5}  {'paid':>12}  {'recovered':>12}  provider")
    for r in board.head(args.limit).to_dict("records"):
        left = "" if r["days_left"] is None or pd.isna(r["days_left"]) else int(r["days_left"])
        print(
            f"{r['case_id']:<16} {str(r['claim_id'])[:18]:<18} {r['state']:<18} {r['since']:<10}  {r['due_date'] or '':<10} "
            f"{left!s:>5}  {_fmt_money(r.get('amount_paid')):>12}  {_fmt_money(r['recovered']):>12}  {r.get('billing_npi') or ''}"
        )
    if len(board) > args.limit:
        print(f"... {len(board) - args.limit} more (--limit)")
    return 0


def _show(args, settings) -> int:
    root = cases.history_dir(settings)
    as_of = _date(args.as_of, "--as-of") or dt.date.today()
    board = cases.case_board(root, settings, as_of).set_index("case_id")
    if args.case_id not in board.index:
        raise InputError(f"unknown case_id {args.case_id!r}")
    case = board.loc[args.case_id]
    events = cases.case_events(root, as_of)
    events = events[events["case_id"] == args.case_id]
    print(f"case {args.case_id}: {case['claim_source']} claim {case['claim_id']}, queued {case['run_date']} at rank {case['rank']}")
    for label, col in (("provider", "billing_npi"), ("member", "person_id"), ("service date", "claim_date"),
                       ("schemes", "schemes"), ("model", "model_version")):
        if col in case and pd.notna(case[col]) and str(case[col]):
            print(f"  {label}: {case[col]}")
    print(f"  score {float(case['score']):.3f}, paid {_fmt_money(case['amount_paid'])}, at risk {_fmt_money(case['amount_at_risk'])}")
    if pd.notna(case.get("reasons")) and case.get("reasons"):
        print("  reasons:")
        for reason in str(case["reasons"]).split("; "):
            print(f"    - {reason}")
    due = f", due {case['due_date']} ({int(case['days_left'])} days left)" if case["due_date"] else ""
    print(f"  state: {case['state']} since {case['since']}{due}{' — OVERDUE' if case['overdue'] else ''}")
    print("timeline:")
    print(f"  {case['run_date']}  open                queued by the run of {case['run_date']}")
    for e in events.to_dict("records"):
        what = e["state"] + (f" ({e['outcome']})" if e["outcome"] else "")
        money = f" {_fmt_money(e['amount'])}" if pd.notna(e["amount"]) else ""
        note = f" — {e['note']}" if e["note"] else ""
        print(f"  {e['event_date']}  {what:<19} by {e['actor']}{money}{note}")
    return 0


def _event(args, settings) -> int:
    if args.file:
        if args.case_id or args.state:
            raise InputError("give either --file or CASE_ID STATE, not both")
        path = Path(args.file)
        frame = _read_events(path)
        key = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        result = record(settings, frame, key=key, source=path.name, actor=args.by)
    else:
        if not (args.case_id and args.state):
            raise InputError("give CASE_ID STATE (or --file F)")
        row = {"case_id": args.case_id, "state": args.state, "event_date": args.date or dt.date.today().isoformat(),
               "actor": args.by or "", "outcome": args.outcome or "", "amount": args.amount or "", "note": args.note or ""}
        frame = pd.DataFrame([row], columns=EVENT_FIELDS)
        key = "cli-" + hashlib.sha256(json.dumps(row, sort_keys=True).encode("utf-8")).hexdigest()[:12]
        result = record(settings, frame, key=key, source="cli", actor=args.by)
    print(f"{result['accepted']} of {result['rows']} events recorded, {result['rejected']} rejected")
    for rej in result["rejections"][:20]:
        print(f"  row {rej['source_row']}: {rej['reason']}")
    if result["rejected_path"]:
        print(f"rejected rows with reasons: {result['rejected_path']}")
    if result["rejected"] and not result["accepted"]:
        raise InputError(result["rejections"][0]["reason"] if result["rows"] == 1 else "no event recorded")
    return 0


def configure_parser(parser) -> None:
    sub = parser.add_subparsers(dest="cases_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("list", help="list cases with their state and deadline")
    p.add_argument("--state", action="append", help=f"only cases in this state (repeatable): {', '.join(cases.STATES)}")
    p.add_argument("--npi", help="only this billing provider's cases")
    p.add_argument("--overdue", action="store_true", help="only cases past their state's deadline")
    p.add_argument("--due-soon", action="store_true", help="only cases due within cases.due_soon_days")
    p.add_argument("--as-of", help="YYYY-MM-DD (default today): cases as they stood that day")
    p.add_argument("--limit", type=int, default=50, help="lines to print (default 50)")
    p.add_argument("--json", action="store_true", help="every matching case as JSON records")
    p.set_defaults(_action=_list)
    p = sub.add_parser("show", help="one case: the claim, its reasons and its timeline")
    p.add_argument("case_id")
    p.add_argument("--as-of", help="YYYY-MM-DD (default today)")
    p.set_defaults(_action=_show)
    p = sub.add_parser("event", help="record a lifecycle event (or a CSV of them with --file)")
    p.add_argument("case_id", nargs="?")
    p.add_argument("state", nargs="?", help=", ".join(cases.STATES[1:]))
    p.add_argument("--date", help="YYYY-MM-DD the event happened (default today)")
    p.add_argument("--by", help="who records it (default: the login name)")
    p.add_argument("--outcome", help="findings_issued: confirmed, partial or cleared")
    p.add_argument("--amount", help="findings_issued: overpayment identified; recovered: dollars recovered")
    p.add_argument("--note", help="free text (stored, never logged)")
    p.add_argument("--file", help="CSV of events: case_id, state, event_date[, actor, outcome, amount, note]")
    p.set_defaults(_action=_event)


def run_from_cli(args, settings) -> int:
    return args._action(args, settings)
