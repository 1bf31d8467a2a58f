"""Importing this module registers every background job with the worker."""

from services import time_rules

__all__ = ["time_rules"]
