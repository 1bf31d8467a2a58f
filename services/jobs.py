"""Importing this module registers every background job with the worker."""

from services import delivery, time_rules

__all__ = ["delivery", "time_rules"]
