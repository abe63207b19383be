"""Durations of the flow language; they live in :mod:`hub.core.durations`."""

from hub.core.durations import Duration, format_duration, parse_duration

__all__ = ["Duration", "format_duration", "parse_duration"]
