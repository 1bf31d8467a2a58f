"""The results table: one row per scenario, its figures, their ratio to the floor, the target and
whether it is met. Targets are the issue's; each is checked against the figures of this run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from bench.procs import CpuShare


@dataclass
class Row:
    key: str
    name: str
    unit: str = "req/s"  # "entries/s" for sync; "" where throughput is not the point
    rate: float | None = None
    p50: float | None = None  # milliseconds
    p95: float | None = None
    p99: float | None = None
    requests: int = 0
    errors: int = 0
    wrapped: int = 0
    cpu: CpuShare | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


Check = Callable[[dict[str, Row]], tuple[str, bool | None]]


def _get(rows: dict[str, Row], key: str) -> Row | None:
    return rows.get(key)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _doses(rows: dict[str, Row]) -> tuple[str, bool | None]:
    ours, floor, tutorial = rows["doses"], _get(rows, "floor"), _get(rows, "tutorial")
    to_floor = _ratio(ours.rate, floor.rate if floor else None)
    to_tutorial = _ratio(ours.rate, tutorial.rate if tutorial else None)
    text = (
        f">= 0.35x floor ({_x(to_floor)}), >= 3x tutorial ({_x(to_tutorial)}), p99 <= 50 ms ({ms(ours.p99)})"
    )
    if to_floor is None or to_tutorial is None or ours.p99 is None:
        return text, None
    return text, to_floor >= 0.35 and to_tutorial >= 3 and ours.p99 <= 50


def _check_ins(rows: dict[str, Row]) -> tuple[str, bool | None]:
    floor = _get(rows, "floor")
    to_floor = _ratio(rows["check_ins"].rate, floor.rate if floor else None)
    return f">= 0.25x floor ({_x(to_floor)})", None if to_floor is None else to_floor >= 0.25


def _sync(rows: dict[str, Row]) -> tuple[str, bool | None]:
    rate = rows["sync"].rate
    return ">= 5,000 entries/s", None if rate is None else rate >= 5000


def _summary(key: str) -> Check:
    def check(rows: dict[str, Row]) -> tuple[str, bool | None]:
        p95 = rows[key].p95
        text, met = "p95 <= 50 ms", None if p95 is None else p95 <= 50
        ratio = _history_ratio(rows)
        if key == "summary_3y" and ratio is not None:
            rows[key].extra["time_ratio_3y_1y"] = round(ratio, 3)
            text += f"; 3y/1y time <= 1.3 ({ratio:.2f})"
            met = None if met is None else met and ratio <= 1.3
        return text, met

    return check


def _history_ratio(rows: dict[str, Row]) -> float | None:
    """How much longer a summary takes over 3 years of history than over 1: from the one-connection
    runs' medians (service time, no queueing) when there are some, else from the throughputs (in a
    closed loop, time per request is connections / rate)."""
    short, long = _get(rows, "summary_1y_1c"), _get(rows, "summary_3y_1c")
    if short and long and short.p50 and long.p50 and not (short.errors or long.errors):
        return long.p50 / short.p50
    short, long = _get(rows, "summary_1y"), _get(rows, "summary_3y")
    if short and long and short.rate and long.rate:
        return short.rate / long.rate
    return None


def _p95_at_most(key: str, ms: float) -> Check:
    def check(rows: dict[str, Row]) -> tuple[str, bool | None]:
        p95 = rows[key].p95
        return f"p95 <= {ms:g} ms", None if p95 is None else p95 <= ms

    return check


def _alerts(key: str) -> Check:
    def check(rows: dict[str, Row]) -> tuple[str, bool | None]:
        row = rows[key]
        if row.p50 is None or row.p99 is None:
            return "p50 <= 250 ms, p99 <= 1 s", False
        return "p50 <= 250 ms, p99 <= 1 s", row.p50 <= 250 and row.p99 <= 1000 and row.errors == 0

    return check


def _alerts_worker_killed(rows: dict[str, Row]) -> tuple[str, bool | None]:
    """Issue 22: a worker killed mid-run delays no urgent alert past 5 s, and loses none."""
    row = rows["alerts_worker_killed"]
    if row.p99 is None:
        return "p99 <= 5 s, none lost", False
    return "p99 <= 5 s, none lost", row.p99 <= 5000 and row.errors == 0


def _fair_share(rows: dict[str, Row]) -> tuple[str, bool | None]:
    """Issue 25: one patient's heavy reads leave another's summary p95 under 3x its quiet value."""
    row = rows["fair_share"]
    quiet = row.extra.get("quiet_p95_ms")
    ratio = _ratio(row.p95, quiet)
    text = f"p95 <= 3x quiet ({_x(ratio)})"
    return text, None if ratio is None else ratio <= 3


def _rss(rows: dict[str, Row]) -> tuple[str, bool | None]:
    peak = rows["rss"].extra.get("peak_rss_mb")
    return "<= 250 MB", None if peak is None else peak <= 250


def _report(key: str, summary_key: str) -> Check:
    """The report page costs at most twice the JSON summary of the same window (issue 18): at one
    connection by the medians (service time), under load by the throughputs."""

    def check(rows: dict[str, Row]) -> tuple[str, bool | None]:
        row, summary = rows[key], _get(rows, summary_key)
        if summary is None:
            return "<= 2x the summary", None
        one_connection = key.endswith("_1c")
        ratio = _ratio(row.p50, summary.p50) if one_connection else _ratio(summary.rate, row.rate)
        return f"<= 2x the summary ({_x(ratio)})", None if ratio is None else ratio <= 2

    return check


CHECKS: dict[str, Check] = {
    "doses": _doses,
    "check_ins": _check_ins,
    "sync": _sync,
    "summary_1y": _summary("summary_1y"),
    "summary_3y": _summary("summary_3y"),
    "report_1y": _report("report_1y", "summary_1y"),
    "report_1y_1c": _report("report_1y_1c", "summary_1y_1c"),
    "panel": _p95_at_most("panel", 250),
    "panel_page": _p95_at_most("panel_page", 50),
    "fair_share": _fair_share,
    "alerts": _alerts("alerts"),
    "alerts_load": _alerts("alerts_load"),
    "alerts_load_apart": _alerts("alerts_load_apart"),
    "alerts_endpoints": _alerts("alerts_endpoints"),
    "alerts_worker_killed": _alerts_worker_killed,
    "rss": _rss,
}


def evaluate(rows: dict[str, Row]) -> None:
    for key, check in CHECKS.items():
        row = rows.get(key)
        if row is None:
            continue
        row.target, row.met = check(rows)
        if row.errors:  # a run with failed requests meets no target, whatever its figures
            row.met = False


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def ms(value: float | None) -> str:
    return "-" if value is None else (f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms")


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _met(value: bool | None) -> str:
    return {True: "yes", False: "**NO**", None: ""}[value]


def table(rows: dict[str, Row]) -> str:
    floor = rows.get("floor")
    head = "| scenario | throughput | p50 ms | p95 ms | p99 ms | req/s vs floor | target | met? |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---|---|"]
    for row in rows.values():
        if row.key == "rss":
            peak = row.extra.get("peak_rss_mb")
            lines.append(f"| {row.name} | {_num(peak)} MB | | | | | {row.target} | {_met(row.met)} |")
            continue
        rate = f"{_num(row.rate)} {row.unit}" if row.rate is not None and row.unit else "-"
        ratio = _x(_ratio(row.rate, floor.rate if floor else None)) if row.unit else "-"
        name = (
            row.name
            + (f" ({row.errors} errors)" if row.errors else "")
            + (" (plan wrapped)" if row.wrapped else "")
        )
        lines.append(
            f"| {name} | {rate} | {_num(row.p50)} | {_num(row.p95)} | {_num(row.p99)} | {ratio} | "
            f"{'; '.join(part for part in (row.target, row.note) if part)} | {_met(row.met)} |"
        )
    return "\n".join(lines)


def cpu_table(rows: dict[str, Row]) -> str:
    lines = [
        "| scenario | requests | server CPU % | PostgreSQL CPU % | wrk CPU % |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows.values():
        if row.cpu is not None:
            c = row.cpu
            lines.append(
                f"| {row.name} | {row.requests:,} | {c.server:.0f} | {c.postgres:.0f} | {c.client:.0f} |"
            )
    return "\n".join(lines)


def as_json(rows: dict[str, Row]) -> list[dict[str, object]]:
    return [asdict(row) for row in rows.values()]
