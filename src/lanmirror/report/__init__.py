"""The fleet report: records in (from files, or from a workflow's job logs: `joblogs`, `collect`),
per-source / per-replica / per-runner / per-day numbers and a verdict out (`aggregate`, `verdict`).
`cmd.reportfmt` writes it as a table, JSON, Markdown or Prometheus text."""

from lanmirror.report.aggregate import FleetReport, aggregate

__all__ = ["FleetReport", "aggregate"]
