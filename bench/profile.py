"""Profiling the API under load with py-spy, and reading the samples: where the CPU time goes.

py-spy samples the running server from outside (no code change, as root), 200 times a second, only
when a thread holds the GIL (`--gil`): what costs CPU, not what waits for PostgreSQL. The raw output
(collapsed stacks) is kept beside the results; the summary groups samples by the library the
innermost frame is in (self time), by our own functions on the stack and by named library work
(inclusive time). SQLAlchemy runs its sync core in greenlets, which py-spy shows as stacks of their
own: ORM work is under-counted in "our functions" but fully counted in "library work".
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*?)(?::(?P<line>\d+))?\)$")
OUR_PACKAGES = ("api/", "services/", "models/")
# Innermost-frame file -> area, first match wins.
AREAS = (
    ("sqlalchemy/", "SQLAlchemy"),
    ("sqlmodel/", "SQLModel"),
    ("asyncpg/", "asyncpg"),
    ("pydantic", "pydantic"),
    ("fastapi/", "FastAPI"),
    ("starlette/", "Starlette"),
    ("uvicorn/", "uvicorn"),
    ("httptools", "uvicorn"),
    ("anyio/", "anyio"),
    ("greenlet", "greenlet"),
    ("jwt/", "PyJWT"),
    ("zoneinfo", "zoneinfo"),
    ("json/", "json"),
    ("uuid.py", "uuid"),
    ("threading.py", "threads (sync dependencies run in the thread pool)"),
    ("asyncio/", "asyncio"),
    ("logging/", "logging"),
    ("api/", "symptrack api/"),
    ("services/", "symptrack services/"),
    ("models/", "symptrack models/"),
)
# Inclusive time of library work worth naming, by (file fragment, function as py-spy names it).
LIBRARY_SPOTS = (
    ("sqlalchemy/orm/session.py", "Session.execute", "SQLAlchemy Session.execute (ORM statements)"),
    ("sqlalchemy/orm/session.py", "Session.get", "SQLAlchemy Session.get"),
    ("sqlalchemy/orm/session.py", "Session.flush", "SQLAlchemy ORM flush (unit of work)"),
    ("sqlalchemy/orm/session.py", "Session.begin_nested", "SQLAlchemy savepoints (begin_nested)"),
    ("sqlalchemy/orm/session.py", "SessionTransaction.commit", "SQLAlchemy commit and RELEASE SAVEPOINT"),
    ("sqlalchemy/orm/loading.py", "instances", "SQLAlchemy ORM rows to objects"),
    ("sqlalchemy/sql/cache_key.py", "HasCacheKey._generate_cache_key", "SQLAlchemy statement cache keys"),
    ("sqlalchemy/sql/elements.py", "ClauseElement._compile_w_cache", "SQLAlchemy compile (cached)"),
    ("sqlalchemy/sql/coercions.py", "expect", "SQLAlchemy building statements (coercions)"),
    (
        "sqlalchemy/dialects/postgresql/asyncpg.py",
        "AsyncAdapt_asyncpg_cursor._prepare_and_execute",
        "asyncpg round trips (through SQLAlchemy's adapter)",
    ),
    ("sqlalchemy/pool/base.py", "_ConnectionFairy._checkout", "SQLAlchemy pool checkout (with pre-ping)"),
    ("fastapi/dependencies/utils.py", "solve_dependencies", "FastAPI dependency solving"),
    ("fastapi/routing.py", "serialize_response", "FastAPI response validation and serialization"),
    ("starlette/concurrency.py", "run_in_threadpool", "sync dependencies sent to the thread pool"),
    ("jwt/api_jwt.py", "PyJWT.decode", "PyJWT decode"),
    ("pydantic/main.py", "BaseModel.__init__", "pydantic model construction"),
)


@dataclass(frozen=True)
class Frame:
    func: str
    file: str

    @property
    def ours(self) -> bool:
        return self.file.startswith(OUR_PACKAGES) or any(f"/{p}" in self.file for p in OUR_PACKAGES)

    @property
    def label(self) -> str:
        return f"{self.file}:{self.func}"


def _parse(raw: Path) -> list[tuple[list[Frame], int]]:
    stacks = []
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for part in stack.split(";"):
            match = FRAME.match(part)
            frames.append(Frame(match["func"], match["file"]) if match else Frame(part, ""))
        stacks.append((frames, int(count)))
    return stacks


def _area(frame: Frame) -> str:
    return next((name for fragment, name in AREAS if fragment in frame.file), "other (stdlib, C)")


@dataclass
class ProfileSummary:
    samples: int
    self_by_area: list[tuple[str, float]]
    inclusive_ours: list[tuple[str, float]]
    inclusive_library: list[tuple[str, float]]
    self_top: list[tuple[str, float]]

    def markdown(self, title: str, top: int = 15) -> str:
        def table(rows: list[tuple[str, float]], head: str) -> list[str]:
            out = [f"| {head} | % of samples |", "|---|---:|"]
            out += [f"| `{name}` | {pct:.1f} |" for name, pct in rows[:top]]
            return out

        lines = [f"#### {title} ({self.samples} samples)", ""]
        lines += ["Self time by library (innermost frame):", "", *table(self.self_by_area, "area"), ""]
        lines += [
            "Inclusive time, our functions on the stack:",
            "",
            *table(self.inclusive_ours, "function"),
            "",
        ]
        lines += ["Inclusive time, library work:", "", *table(self.inclusive_library, "work"), ""]
        lines += ["Hottest functions (self time):", "", *table(self.self_top, "function"), ""]
        return "\n".join(lines)


def summarize(raw: Path) -> ProfileSummary:
    stacks = _parse(raw)
    total = sum(count for _, count in stacks) or 1
    by_area: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    library: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for frames, count in stacks:
        if not frames:
            continue
        by_area[_area(frames[-1])] += count
        leaf[frames[-1].label] += count
        for label in {f.label for f in frames if f.ours}:
            ours[label] += count
        spots = {
            name
            for fragment, func, name in LIBRARY_SPOTS
            for f in frames
            if f.func == func and fragment in f.file
        }
        for name in spots:
            library[name] += count

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, 100 * count / total) for name, count in counter.most_common()]

    return ProfileSummary(total, pct(by_area), pct(ours), pct(library), pct(leaf))


def py_spy() -> str | None:
    beside_python = Path(sys.executable).parent / "py-spy"
    return str(beside_python) if beside_python.exists() else shutil.which("py-spy")


def start_recording(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    command = py_spy()
    if command is None:
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    return subprocess.Popen(
        [
            command,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(round(seconds)),
            "--rate",
            "200",
            "--gil",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
