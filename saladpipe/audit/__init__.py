"""Audit a run: the report (HTML), queries over selected rows, and listening sets.

Everything here only reads a run folder; what a run did not measure is shown as
such, never guessed.
"""

from saladpipe.audit.listen import write_listening_set
from saladpipe.audit.report import ReportOptions, ReportResult, build_report
from saladpipe.audit.rows import (
    AuditFilter,
    AuditTable,
    audit_table,
    format_rows,
    write_csv,
)
from saladpipe.audit.run import RunFolder
from saladpipe.audit.summary import RunSummary, markdown, summarize

__all__ = [
    "AuditFilter",
    "AuditTable",
    "ReportOptions",
    "ReportResult",
    "RunFolder",
    "RunSummary",
    "audit_table",
    "build_report",
    "format_rows",
    "markdown",
    "summarize",
    "write_csv",
    "write_listening_set",
]
