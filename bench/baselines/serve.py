"""Serve a baseline exactly as `symptrack serve` serves the API: one uvicorn process, same options.

python -m bench.baselines.serve floor|tutorial --port 8001
"""

from __future__ import annotations

import argparse

import uvicorn

APPS = {"floor": "bench.baselines.floor:app", "tutorial": "bench.baselines.tutorial:app"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(APPS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(APPS[args.name], host=args.host, port=args.port, log_level="warning", proxy_headers=True)


if __name__ == "__main__":
    main()
