"""``spark-submit`` entry point: the DAGs' Spark stages as a driver program on a cluster.

    spark-submit [cluster options] jobs/spark_entry.py validate --input IN --gate-dir DIR --run-date D
    spark-submit [cluster options] jobs/spark_entry.py score    --input IN --output OUT --run-date D [--gate-dir DIR]
    spark-submit [cluster options] jobs/spark_entry.py train    --input IN --run-date D --summary-out FILE \
        [--labels F] [--provider-labels F]

Every command accepts ``--overrides '{"mlflow.tracking_uri": "..."}'`` (dotted claimsentry
settings, JSON). The commands call the very functions the in-process Airflow tasks call
(``claimsentry.jobs.tasks``), so a cluster run and a local run of the same date write the same
outputs. The master comes from ``spark-submit``; ``spark.master`` in the settings is ignored.
Exit codes follow the CLI: 0 ok, 2 bad input, 3 gate failed, 4 no champion model; the one-line
reason is the last line on stderr (the Airflow task log shows it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spark_entry.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--overrides", default="{}", help="JSON object of dotted claimsentry settings")

    p = sub.add_parser("validate", help="data-quality gate of one date")
    p.add_argument("--input", required=True)
    p.add_argument("--gate-dir", required=True)
    p.add_argument("--run-date", required=True)
    common(p)

    p = sub.add_parser("score", help="gate, features, score, queues of one date -> OUTPUT/<run-date>/")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--run-date", required=True)
    p.add_argument("--gate-dir", default="", help="this date's validate gate dir: its checked rows are reused if the input is unchanged")
    common(p)

    p = sub.add_parser("train", help="train, evaluate, register; promote when better")
    p.add_argument("--input", required=True)
    p.add_argument("--run-date", required=True, help="the training's as-of date")
    p.add_argument("--summary-out", required=True)
    p.add_argument("--labels", default="")
    p.add_argument("--provider-labels", default="")
    common(p)
    return parser


def parse_overrides(text: str) -> dict:
    from claimsentry.errors import InputError

    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise InputError(f"--overrides is not valid JSON: {exc.msg}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError("--overrides must be a JSON object of dotted settings")
    return value


def run(argv: list[str]) -> dict:
    from claimsentry.jobs import tasks

    args = build_parser().parse_args(argv)
    overrides = parse_overrides(args.overrides)
    if args.command == "validate":
        return tasks.validate_partition(args.run_date, args.input, args.gate_dir, overrides)
    if args.command == "score":
        return tasks.score_partition(args.run_date, args.input, args.output, overrides, gate_dir=args.gate_dir or None)
    return tasks.train_model(
        args.run_date,
        args.input, args.summary_out, overrides, labels_path=args.labels or None, provider_labels_path=args.provider_labels or None
    )


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("CLAIMSENTRY_UNDER_SPARK_SUBMIT", "1")  # get_spark: keep spark-submit's master
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from claimsentry.errors import ClaimSentryError

    try:
        result = run(sys.argv[1:] if argv is None else argv)
    except ClaimSentryError as err:
        print(f"claimsentry {type(err).__name__}: {err}", file=sys.stderr)
        return err.exit_code
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
