"""Demo data: an organization, its staff and patients with weeks of history, recorded through the same
services as the phone app."""
