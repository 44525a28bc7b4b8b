"""``claimsentry generate``: write a synthetic claims set with labelled fraud schemes.

Thin CLI wrapper around :func:`claimsentry.generate.generate` (all logic lives there). Prints a
one-line summary and the medical/pharmacy lines per member, so a benchmark can choose ``--members``
for a target number of claim lines.
"""

from __future__ import annotations

import json

from claimsentry.errors import InputError


def configure_parser(parser) -> None:
    parser.add_argument("--output", required=True, help="directory to write the claims set into")
    parser.add_argument("--members", type=int, default=None, help="number of members (default: generate.members, 4000)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: generate.seed, 42)")
    parser.add_argument("--format", dest="fmt", choices=("parquet", "csv"), default="parquet",
                        help="parquet folders of part files (default) or one CSV per table")
    parser.add_argument("--dirty-fraction", type=float, default=0.0,
                        help="share of raw rows to break on purpose (exercises the quarantine); default 0")
    parser.add_argument("--start-date", default="2024-01-01", help="first service date (YYYY-MM-DD)")
    parser.add_argument("--end-date", default="2025-12-31", help="last service date (YYYY-MM-DD)")


def run_from_cli(args, settings) -> int:
    from claimsentry.generate import generate

    members = args.members if args.members is not None else int(settings.get("generate.members", 4000))
    seed = args.seed if args.seed is not None else int(settings.get("generate.seed", 42))
    try:
        summary = generate(args.output, members=members, seed=seed, start_date=args.start_date,
                           end_date=args.end_date, fmt=args.fmt, dirty_fraction=args.dirty_fraction)
    except ValueError as exc:  # e.g. an unparseable --start-date
        raise InputError(f"{str(exc).splitlines()[0]}") from None
    rows = summary["rows"]
    print(
        f"generated {members} members -> {summary['output']}: {rows['medical_claim']} medical lines "
        f"({summary['medical_lines_per_member']}/member), {rows['pharmacy_claim']} pharmacy lines "
        f"({summary['pharmacy_lines_per_member']}/member), {rows['eligibility']} enrollment spans, "
        f"{rows['truth']} improper claims ({summary['improper_share']:.1%}), {rows['labels']} labels "
        f"in {summary['seconds']}s"
    )
    print(json.dumps(summary["schemes"]))
    return 0
