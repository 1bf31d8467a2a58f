"""Query plans behind the slow paths, read with EXPLAIN ANALYZE on the bench data: which queries
scan whole tables (and so grow with the history) and which use an index."""

from __future__ import annotations

import json
import uuid

import asyncpg

# The statements the app sends (services/entries/store.py check_in_parts; services/reports/summaries.py), with
# one real patient's ids bound.
QUERIES = {
    "check-in parts: dose by check_in_id": "SELECT * FROM dose WHERE check_in_id = $1",
    "check-in parts: symptom_report by check_in_id": "SELECT * FROM symptom_report WHERE check_in_id = $1",
    "check-in parts: anxiety_score by check_in_id": "SELECT * FROM anxiety_score WHERE check_in_id = $1",
    "summary: doses taken in 90 days": (
        "SELECT local_date, taken_at, dose_mg FROM dose WHERE patient_id = $2 "
        "AND local_date BETWEEN current_date - 89 AND current_date AND status = 'taken' "
        "AND entered_in_error_at IS NULL"
    ),
}


async def explain(url: str, patient_id: uuid.UUID) -> list[tuple[str, str, float]]:
    """(query, top plan node, execution ms) for each query."""
    connection = await asyncpg.connect(url)
    try:
        check_in_id = await connection.fetchval(
            "SELECT id FROM check_in WHERE patient_id = $1 LIMIT 1", patient_id
        )
        found = []
        for name, sql in QUERIES.items():
            args = [check_in_id] if "$1" in sql else [patient_id]
            raw = await connection.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {sql.replace('$2', '$1')}", *args
            )
            plan = json.loads(raw)[0]
            found.append((name, _describe(plan["Plan"]), float(plan["Execution Time"])))
        return found
    finally:
        await connection.close()


def _describe(node: dict[str, object]) -> str:
    """The first node that reads a table, e.g. "Parallel Seq Scan on dose (1,677,653 rows removed)"."""
    kind = str(node["Node Type"])
    if "Scan" in kind and "Relation Name" in node:
        text = f"{kind} on {node['Relation Name']}"
        if "Index Name" in node:
            text += f" using {node['Index Name']}"
        removed = int(node.get("Rows Removed by Filter", 0)) * int(node.get("Actual Loops", 1))  # type: ignore[call-overload]
        return text + (f" ({removed:,} rows read and discarded)" if removed else "")
    for child in node.get("Plans", []):  # type: ignore[attr-defined]
        return _describe(child)
    return kind


def markdown(found: list[tuple[str, str, float]]) -> str:
    lines = ["| query | plan | ms |", "|---|---|---:|"]
    lines += [f"| {name} | {plan} | {ms:,.1f} |" for name, plan, ms in found]
    return "\n".join(lines)
