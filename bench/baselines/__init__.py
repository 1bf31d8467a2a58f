"""Baselines measured beside symptrack with the same client and the same request: the floor (raw
Starlette and asyncpg) and the tutorial (sync FastAPI and SQLModel), each inserting one dose row."""
