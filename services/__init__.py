"""What symptrack decides: access, ingest, grading, flags, summaries, delivery. No FastAPI here."""
