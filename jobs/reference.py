"""``claimsentry reference add KIND FILE…`` and ``claimsentry reference list [KIND]``.

``add`` checks policy reference files in their published formats (kinds: ncci-ptp, ncci-mue,
ncci-aoc, leie, nppes; see docs/policy.md) and stores them as a new version under
``reference.dir`` (default ``<data_dir>/reference``); ``list`` shows the stored versions. The work
is in ``claimsentry.policy``; this module only parses arguments and prints.
"""

from __future__ import annotations

import sys
import time

KIND_HELP = "ncci-ptp | ncci-mue | ncci-aoc | leie | nppes"


def configure_parser(parser) -> None:
    actions = parser.add_subparsers(dest="reference_action", metavar="ACTION")
    actions.required = True
    add = actions.add_parser(
        "add",
        help="check policy files in their published format and store them as a new version",
        description="Check policy reference files in their published format and store them as a new version.",
    )
    add.add_argument("kind", metavar="KIND", help=KIND_HELP)
    add.add_argument(
        "files",
        metavar="FILE",
        nargs="+",
        help="the published file (text/CSV, .gz, or the publisher's .zip); several for one version "
        "split into parts (the PTP tables' f1…f4)",
    )
    add.add_argument("--version", help="version label, e.g. 2026Q1 (default: from the file name, else from its dates)")
    add.add_argument(
        "--setting",
        help="practitioner | outpatient | dme: the setting of a PTP or MUE file whose name and header do not say",
    )
    add.add_argument(
        "--effective-from",
        metavar="YYYY-MM-DD",
        help="the date an MUE table takes effect, when its file name does not say (…_Eff_MM-DD-YYYY.csv)",
    )
    add.add_argument("--replace", action="store_true", help="replace a stored version of the same label")
    show = actions.add_parser("list", help="list the stored versions", description="List the stored reference versions.")
    show.add_argument("kind", metavar="KIND", nargs="?", help=f"only this kind ({KIND_HELP})")


def run_from_cli(args, settings) -> int:
    if args.reference_action == "list":
        return _list(args, settings)
    return _add(args, settings)


def _add(args, settings) -> int:
    from claimsentry.policy import store

    plan = store.plan_add(
        settings,
        args.kind,
        args.files,
        version=args.version,
        setting=args.setting,
        effective_from=args.effective_from,
        replace=args.replace,
    )
    if plan.existing is not None:
        m = plan.existing
        note = f" (--version {args.version} not used)" if args.version and args.version != m["version"] else ""
        print(f"already stored: {', '.join(f['name'] for f in plan.files)} is {m['source']} (same sha256){note}; nothing to do")
        print(f"-> {m['path']}")
        return 0

    from claimsentry.spark import get_spark

    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"reference add {args.kind}: {message}", file=sys.stderr, flush=True)

    spark = get_spark(settings)
    progress(f"Spark started ({time.monotonic() - started:.1f} s)")
    result = store.run_add(spark, settings, plan, progress=progress)
    m = result.manifest
    rows = m["rows"]
    print(f"{m['source']}: {rows['read']:,} rows read, {rows['accepted']:,} accepted, {rows['quarantined']:,} quarantined")
    for rule, count in list(m["quarantine_reasons"].items())[:5]:
        print(f"  {count:,} × {rule}")
    print(f"effective {_period(m)}")
    print(f"-> {result.path}")
    return 0


def _period(m: dict) -> str:
    start = m.get("effective_from") or "unknown"
    return f"{start} to {m.get('effective_to') or 'open'}"


def _list(args, settings) -> int:
    from claimsentry.policy import store

    versions = store.list_versions(settings, args.kind)
    if not versions:
        print(f"no reference versions stored under {store.reference_root(settings)}")
        return 0
    latest = {(m["kind"], m.get("setting")): m["path"] for m in versions}  # oldest first: the last wins
    header = ("", "kind", "setting", "version", "accepted", "quarantined", "effective", "loaded_at", "files")
    lines = [header]
    for m in versions:
        files = [f["name"] for f in m.get("files", [])]
        lines.append(
            (
                "*" if latest[(m["kind"], m.get("setting"))] == m["path"] else "",
                m["kind"],
                m.get("setting") or "-",
                m["version"],
                f"{m['rows']['accepted']:,}",
                f"{m['rows']['quarantined']:,}",
                _period(m),
                m["loaded_at"],
                files[0] + (f" (+{len(files) - 1})" if len(files) > 1 else "") if files else "",
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    for row in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print("* current version (the one added last); stored under", store.reference_root(settings))
    return 0
