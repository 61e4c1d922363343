"""Value conversions shared by the hub simulator's modules (kojihub's own helpers)."""

from __future__ import annotations

import datetime

import koji


def iso(ts):
    """A timestamp as kojihub's *_time fields show it."""
    return None if ts is None else datetime.datetime.fromtimestamp(ts).isoformat(' ')


def as_int(value):
    """kojihub/kojihub.py: convert_value(value, cast=int)"""
    if value is None:
        raise koji.ParameterError("Invalid type, expected type %s" % int)
    try:
        return int(value)
    except (ValueError, TypeError):
        raise koji.ParameterError("Invalid type for value '%s': %s, expected type %s"
                                  % (value, type(value), int))
