"""Rules knowledge base — placeholder until issue 4 lands: no rules, empty ``rule_hits``."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def load_rules() -> list[dict]:
    return []


def apply_rules(df: DataFrame, rules: list[dict]) -> tuple[DataFrame, list[str], dict[str, str]]:
    return df.withColumn("rule_hits", F.array().cast("array<string>")), [], {}
