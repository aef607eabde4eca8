"""Go durations, as prometheus-operator passes them."""

from __future__ import annotations

import click
import pytest

from reloader.command import Duration
from reloader.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("500ms", 0.5),
        ("1s", 1.0),
        ("1.5s", 1.5),
        ("3m", 180.0),
        ("1h30m", 5400.0),
        ("1h0m10s", 3610.0),
        ("250us", 0.00025),
        ("100ns", 1e-7),
        ("2h", 7200.0),
        (".5s", 0.5),
    ],
)
def test_go_durations_are_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "10", "3x", "s", "1m-1s", "-1s", "1 s", "1.2.3s", "1sm"])
def test_bad_durations_are_errors_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_the_click_type_turns_a_bad_duration_into_a_usage_error() -> None:
    with pytest.raises(click.BadParameter, match="3x"):
        Duration().convert("3x", None, None)
    assert Duration().convert("1m", None, None) == 60.0
