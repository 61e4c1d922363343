"""Value conversions shared by the hub simulator's modules (kojihub's own helpers)."""

from __future__ import annotations

import datetime

import koji


def iso(ts):
    """A timestamp as kojihub's *_time fields show it."""
    return None if ts is None else datetime.datetime.fromtimestamp(ts).isoformat(' ')


def by_id_or_name(table, info):
    """The row of table (id -> row with a 'name') that info names: its id or its name
    (kojihub's name_or_id lookups, e.g. get_tag, get_host, get_user), or None."""
    if isinstance(info, int):
        return table.get(info)
    return next((row for row in table.values() if row['name'] == info), None)


def as_int(value):
    """kojihub/kojihub.py: convert_value(value, cast=int)"""
    if value is None:
        raise koji.ParameterError("Invalid type, expected type %s" % int)
    try:
        return int(value)
    except (ValueError, TypeError):
        raise koji.ParameterError("Invalid type for value '%s': %s, expected type %s"
                                  % (value, type(value), int))
