"""Plain-language reasons from templates: rule hits and model contributions, rendered with the
claim's actual values. Templates live in ``conf/reasons_*.yaml`` (feature -> template) and in each
rule of ``conf/rules_*.yaml`` (``reason``). No raw feature names ever reach the reasons column.
"""

from __future__ import annotations

import math
import string
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

import yaml

MISSING = "n/a"


class _NullSafeFormatter(string.Formatter):
    """``str.format`` that prints ``n/a`` for missing or null values instead of raising."""

    def get_value(self, key, args, kwargs):
        if isinstance(key, str):
            return kwargs.get(key)
        return super().get_value(key, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return MISSING
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError):
            return str(value)


_FORMATTER = _NullSafeFormatter()


def render(template: str, row: Mapping[str, Any]) -> str:
    """Render ``template`` with the values of ``row``; nulls print as ``n/a``."""
    return _FORMATTER.vformat(template, (), dict(row))


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def renderable(template: str, row: Mapping[str, Any]) -> bool:
    """True when every value the template shows is known: a reason with "n/a" in it tells the
    auditor nothing they can check, so such a contribution is not shown."""
    return all(not is_missing(row.get(name)) for name in template_fields(template))


def template_fields(template: str) -> set[str]:
    """Column names a template reads."""
    return {f.split(".")[0].split("[")[0] for _, f, _, _ in string.Formatter().parse(template) if f}


@lru_cache(maxsize=1)
def feature_templates() -> dict[str, str]:
    """Merged ``reasons_*.yaml`` files shipped in ``claimsentry.conf``: feature -> template."""
    merged: dict[str, str] = {}
    for entry in sorted(resources.files("claimsentry.conf").iterdir(), key=lambda p: p.name):
        if entry.name.startswith("reasons_") and entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
            for feature, template in (data.get("reasons") or data).items():
                merged[str(feature)] = str(template)
    return merged
