"""The contract's input tables (Tuva Input Layer v0.18 shape), typed explicitly.

Nothing here is inferred from data: every contract column has a declared type, every code is a
string (DRG ``003`` and NDC ``00406051201`` keep their leading zeros), dates are ``DateType``,
money is ``DoubleType`` in dollars. See ``../shared/CONTRACT.md``.

Grain and key of each table:

- ``medical_claim``: one row per claim line; key (claim_id, claim_line_number).
- ``pharmacy_claim``: one row per dispensed prescription line; key (claim_id, claim_line_number).
- ``eligibility``: one row per enrollment span of one person; key (person_id, enrollment_start_date).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import (
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

S, D, F, I = StringType(), DateType(), DoubleType(), IntegerType()


@dataclass(frozen=True)
class TableSpec:
    """A contract table: its columns with types, the required ones and its key (grain)."""

    name: str
    columns: tuple[tuple[str, DataType], ...]
    required: tuple[str, ...]
    key: tuple[str, ...]
    grain: str

    @property
    def schema(self) -> StructType:
        return StructType([StructField(c, t, nullable=True) for c, t in self.columns])

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def type_of(self, column: str) -> DataType | None:
        return dict(self.columns).get(column)


def _numbered(prefix: str, n: int, dtype: DataType) -> list[tuple[str, DataType]]:
    return [(f"{prefix}_{i}", dtype) for i in range(1, n + 1)]


DIAGNOSIS_COLUMNS = [f"diagnosis_code_{i}" for i in range(1, 26)]
POA_COLUMNS = [f"diagnosis_poa_{i}" for i in range(1, 26)]
PROCEDURE_COLUMNS = [f"procedure_code_{i}" for i in range(1, 26)]
MODIFIER_COLUMNS = [f"hcpcs_modifier_{i}" for i in range(1, 6)]

AMOUNT_COLUMNS = (
    "paid_amount",
    "allowed_amount",
    "charge_amount",
    "coinsurance_amount",
    "copayment_amount",
    "deductible_amount",
)

MEDICAL_CLAIM = TableSpec(
    name="medical_claim",
    columns=tuple(
        [
            ("claim_id", S),
            ("claim_line_number", I),
            ("claim_type", S),
            ("person_id", S),
            ("member_id", S),
            ("payer", S),
            ("plan", S),
            ("claim_start_date", D),
            ("claim_end_date", D),
            ("claim_line_start_date", D),
            ("claim_line_end_date", D),
            ("admission_date", D),
            ("discharge_date", D),
            ("admit_source_code", S),
            ("admit_type_code", S),
            ("discharge_disposition_code", S),
            ("place_of_service_code", S),
            ("bill_type_code", S),
            ("drg_code_type", S),
            ("drg_code", S),
            ("revenue_center_code", S),
            ("service_unit_quantity", F),
            ("hcpcs_code", S),
        ]
        + [(c, S) for c in MODIFIER_COLUMNS]
        + [
            ("rendering_npi", S),
            ("billing_npi", S),
            ("facility_npi", S),
            ("paid_date", D),
        ]
        + [(c, F) for c in AMOUNT_COLUMNS]
        + [("diagnosis_code_type", S)]
        + [(c, S) for c in DIAGNOSIS_COLUMNS]
        + [(c, S) for c in POA_COLUMNS]
        + [("procedure_code_type", S)]
        + [(c, S) for c in PROCEDURE_COLUMNS]
        + _numbered("procedure_date", 25, D)
        + [("data_source", S)]
    ),
    required=(
        "claim_id",
        "claim_line_number",
        "claim_type",
        "person_id",
        "claim_start_date",
        "claim_end_date",
        "billing_npi",
        "paid_amount",
    ),
    key=("claim_id", "claim_line_number"),
    grain="one row per medical claim line",
)

PHARMACY_CLAIM = TableSpec(
    name="pharmacy_claim",
    columns=tuple(
        [
            ("claim_id", S),
            ("claim_line_number", I),
            ("person_id", S),
            ("member_id", S),
            ("payer", S),
            ("plan", S),
            ("prescribing_provider_npi", S),
            ("dispensing_provider_npi", S),
            ("dispensing_date", D),
            ("ndc_code", S),
            ("quantity", F),
            ("days_supply", I),
            ("refills", I),
            ("paid_date", D),
        ]
        + [(c, F) for c in AMOUNT_COLUMNS]
        + [("data_source", S)]
    ),
    required=(
        "claim_id",
        "claim_line_number",
        "person_id",
        "prescribing_provider_npi",
        "dispensing_provider_npi",
        "dispensing_date",
        "ndc_code",
        "quantity",
        "days_supply",
        "paid_amount",
    ),
    key=("claim_id", "claim_line_number"),
    grain="one row per dispensed prescription line",
)

ELIGIBILITY = TableSpec(
    name="eligibility",
    columns=(
        ("person_id", S),
        ("member_id", S),
        ("gender", S),
        ("birth_date", D),
        ("death_date", D),
        ("death_flag", I),
        ("enrollment_start_date", D),
        ("enrollment_end_date", D),
        ("payer", S),
        ("payer_type", S),
        ("plan", S),
        ("state", S),
        ("zip_code", S),
        ("data_source", S),
    ),
    required=("person_id", "birth_date", "enrollment_start_date", "enrollment_end_date"),
    key=("person_id", "enrollment_start_date"),
    grain="one row per enrollment span of one person",
)

LABELS = TableSpec(
    name="labels",
    columns=(
        ("claim_id", S),
        ("claim_source", S),
        ("label", I),
        ("outcome_date", D),
        ("recovered_amount", F),
    ),
    required=("claim_id", "claim_source", "label"),
    key=("claim_id", "claim_source"),
    grain="one row per audited claim",
)

PROVIDER_LABELS = TableSpec(
    name="provider_labels",
    columns=(("npi", S), ("label", I), ("label_date", D)),
    required=("npi", "label"),
    key=("npi",),
    grain="one row per labelled provider",
)

PROVIDER = TableSpec(
    name="provider",
    columns=(
        ("npi", S),
        ("entity_type", S),  # individual | organization
        ("taxonomy_code", S),  # NUCC health care provider taxonomy, e.g. 207RC0000X cardiovascular disease
        ("specialty", S),  # the peer group's name, e.g. cardiology
        ("state", S),  # two-letter state of practice
    ),
    required=("npi",),
    key=("npi",),
    grain="one row per provider NPI",
)

CLAIM_TABLES: dict[str, TableSpec] = {
    t.name: t for t in (MEDICAL_CLAIM, PHARMACY_CLAIM, ELIGIBILITY)
}
ALL_TABLES: dict[str, TableSpec] = {
    t.name: t for t in (MEDICAL_CLAIM, PHARMACY_CLAIM, ELIGIBILITY, LABELS, PROVIDER_LABELS, PROVIDER)
}

# Contract spellings that older Tuva input layers used; the reader maps them (and says so).
COLUMN_ALIASES: dict[str, dict[str, str]] = {
    "medical_claim": {"patient_id": "person_id"},
    "pharmacy_claim": {"patient_id": "person_id"},
    "eligibility": {"patient_id": "person_id"},
}
