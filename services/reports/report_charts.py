"""The report's charts as inline SVG (filled in by the next step)."""

from __future__ import annotations

from typing import Any

from services.reports.report_data import ReportData


def charts(data: ReportData) -> list[dict[str, Any]]:
    return []
