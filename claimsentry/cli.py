"""The ``claimsentry`` command.

Each subcommand lives in a job module exposing ``configure_parser(parser)`` and
``run_from_cli(args, settings) -> int``. This file only wires them, loads settings and turns every
user-facing error into one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from pathlib import Path

from claimsentry.errors import ClaimSentryError

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("claimsentry.jobs.demo", "generate a synthetic claims set, train, score and report, on the embedded defaults"),
    "generate": ("claimsentry.jobs.generate", "write a synthetic claims set with labelled fraud schemes"),
    "validate": ("claimsentry.jobs.validate", "run the data-quality gate only"),
    "train": ("claimsentry.jobs.train", "build features, train, log to MLflow, register; promote if better"),
    "score": ("claimsentry.jobs.score", "validate, build features, score with the champion, write the run directory"),
    "report": ("claimsentry.jobs.report", "write the HTML model and queue report for actuaries"),
    "feedback": ("claimsentry.jobs.feedback", "import auditor dispositions (closes cases, feeds training)"),
    "import-synpuf": ("claimsentry.jobs.import_synpuf", "map CMS DE-SynPUF files to the contract's input tables"),
    "cases": ("claimsentry.jobs.cases", "audit cases: list and filter, show one case's timeline, record lifecycle events"),
    "audit-sample": ("claimsentry.jobs.audit_sample", "draw a seeded random sample of one provider's claims for an audit"),
    "extrapolate": ("claimsentry.jobs.extrapolate", "project a sample's overpayments onto its universe (90% confidence interval)"),
    "reference": ("claimsentry.jobs.reference", "load a policy reference file (NCCI PTP/MUE/add-on, OIG LEIE, NPPES) as a new version"),
}


def _quiet_libraries() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # no "Creating database tables" on stderr
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    for noisy in ("py4j", "great_expectations", "mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claimsentry",
        description="Find improper and fraudulent medical and pharmacy claims; write ranked audit queues with reasons.",
    )
    parser.add_argument("--config", help="YAML config file (default: $CLAIMSENTRY_CONFIG or ./claimsentry.yaml)")
    parser.add_argument("--data-dir", help="local state folder: MLflow store, queue history (default: ./data)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).configure_parser(p)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            p.set_defaults(_missing=True)
    return parser


def _divert_native_stderr(data_dir: str | None) -> Path | None:
    """Send file descriptor 2 (the JVM's Spark banners and log4j warnings, native libraries) to a
    log file and keep Python's ``sys.stderr`` on the terminal, so the user sees claimsentry's own
    messages — a failure is one line — and the noise is kept for diagnosis."""
    try:
        log_dir = Path(data_dir or os.environ.get("CLAIMSENTRY_DATA_DIR") or "data").expanduser() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / f"claimsentry-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
        terminal = os.dup(2)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stderr = os.fdopen(terminal, "w", buffering=1)
        return path
    except OSError:  # read-only data dir: keep the noise rather than fail
        return None


def main(argv: list[str] | None = None) -> int:
    """Console entry point. Called without ``argv`` (the installed ``claimsentry`` command), native
    stderr is diverted to ``<data_dir>/logs/``; called with ``argv`` (tests, embedding), it is not."""
    _quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None and not args.verbose:
        _divert_native_stderr(args.data_dir)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "_missing", False):
        print(f"claimsentry: '{args.command}' is not available in this build", file=sys.stderr)
        return 2
    try:
        from claimsentry.config import load_settings

        settings = load_settings(args.config, overrides={"data_dir": args.data_dir})
        return int(importlib.import_module(args._module).run_from_cli(args, settings) or 0)
    except ClaimSentryError as err:
        print(f"claimsentry {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"claimsentry {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last resort: never a bare traceback for the user
        if args.verbose:
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(
            f"claimsentry {args.command}: internal error: {type(exc).__name__}: {first} (re-run with -v for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
