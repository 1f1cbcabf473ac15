"""Two night reports that must be the same night: equal but for event times within a few ms."""

from __future__ import annotations

from datetime import datetime

TIME_TOLERANCE_S = 0.05


def assert_same_report(got: object, want: object, where: str = "report") -> None:
    """Equal but for event times within TIME_TOLERANCE_S (and figures derived from them): the
    gateway goes on syncing the sensors' clocks after the night, so the clock model a later
    analysis re-stamps with moves times by a few ms (every count, series and flag is equal)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            assert_same_report(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same_report(a, b, f"{where}[{i}]")
    elif isinstance(want, str) and isinstance(got, str) and want[:2] == "20" and "T" in want:
        shift = abs(datetime.fromisoformat(got).timestamp() - datetime.fromisoformat(want)
                    .timestamp())
        assert shift <= TIME_TOLERANCE_S, (where, got, want)
    elif isinstance(want, float) and isinstance(got, float | int):
        assert abs(got - want) <= TIME_TOLERANCE_S + 1e-3 * abs(want), (where, got, want)
    else:
        assert got == want, (where, got, want)
