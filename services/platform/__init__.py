"""The platform underneath every domain: the audit trail, shared counters, the background worker and its
jobs, commit wake-ups, migrations, health and metrics. It decides nothing clinical.

Settings, the database engine, the domain errors, pagination and local time stay at the top of
`services/`, since every package uses them.
"""
