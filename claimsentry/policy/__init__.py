"""Policy reference tables: CMS NCCI edits (PTP, MUE, add-on codes), the OIG exclusion list (LEIE)
and NPPES provider records, loaded from the publishers' own files into typed, versioned tables.

- ``formats``: each kind's published format, typed schema, grain and Spark parser.
- ``sniff``: what the driver checks in a file's first bytes and name before Spark reads it.
- ``store``: versions under ``<data_dir>/reference``; what edit rules load and cite.

``claimsentry reference add KIND FILE`` (``claimsentry.jobs.reference``) is the command.
"""

from claimsentry.policy.formats import KINDS, SETTINGS, SPECS
from claimsentry.policy.store import (
    ReferenceTable,
    add_reference,
    citation_source,
    list_versions,
    load_current,
    load_reference,
    versions_used,
)

__all__ = [
    "KINDS",
    "SETTINGS",
    "SPECS",
    "ReferenceTable",
    "add_reference",
    "citation_source",
    "list_versions",
    "load_current",
    "load_reference",
    "versions_used",
]
