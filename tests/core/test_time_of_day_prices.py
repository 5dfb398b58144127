"""Prices that depend on the time of the request: DeepSeek's off-peak hours (16:30-00:30 UTC, half price in the
``genai-prices`` table the project ships).

A ladder read the table once, when it was built, while the calls are billed at their own time: a server started off
peak weighed DeepSeek at half price all day. It now reads the table again every ``PRICE_REFRESH_S`` seconds, and the
benchmarks price at one fixed time (``bench.ladder.PRICED_AT``), so a run's figures no longer depend on the hour it
ran at.
"""

from __future__ import annotations

import datetime

import pytest

from routellm_core.data.prices import call_cost, price_of
from routellm_core.routing import ladder as ladder_module
from routellm_core.routing.ladder import PRICE_REFRESH_S, ModelLadder

UTC = datetime.timezone.utc
PEAK = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
OFF_PEAK = datetime.datetime(2026, 12, 7, 20, 0, tzinfo=UTC)


def test_the_table_is_read_at_the_time_asked() -> None:
    peak, off = price_of("deepseek-chat", at=PEAK), price_of("deepseek-chat", at=OFF_PEAK)
    assert peak is not None and off is not None
    assert off[0] == pytest.approx(peak[0] / 2) and off[1] == pytest.approx(peak[1] / 2)
    assert call_cost("deepseek-chat", 1e6, 1e6, at=OFF_PEAK) == pytest.approx(off[0] + off[1])
    assert price_of("gpt-4o", at=PEAK) == price_of("gpt-4o", at=OFF_PEAK), "a flat price does not move"
    assert price_of("deepseek-chat", {"deepseek-chat": (1.0, 2.0)}, at=OFF_PEAK) == (1.0, 2.0), "yours win"


def test_a_ladder_follows_the_tables_time_of_day_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [PEAK]
    monkeypatch.setattr(ladder_module, "_utcnow", lambda: clock[0])
    ladder = ModelLadder(["deepseek-chat", "gpt-4o"])
    peak = ladder.prices.copy()
    cost_peak = ladder.expected_costs("Summarise this contract in three bullet points.")
    clock[0] = PEAK + datetime.timedelta(seconds=PRICE_REFRESH_S - 1)
    assert (ladder.prices == peak).all(), "read again before the refresh time"
    clock[0] = OFF_PEAK
    assert ladder.prices[0] == pytest.approx(peak[0] / 2), "DeepSeek's off-peak price was not read"
    assert ladder.prices[1] == pytest.approx(peak[1])
    cost_off = ladder.expected_costs("Summarise this contract in three bullet points.")
    assert cost_off[0] == pytest.approx(cost_peak[0] / 2) and cost_off[1] == pytest.approx(cost_peak[1])


def test_given_prices_stay_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [PEAK]
    monkeypatch.setattr(ladder_module, "_utcnow", lambda: clock[0])
    ladder = ModelLadder(["deepseek-chat", "gpt-4o"], {"deepseek-chat": (0.27, 1.1)})
    clock[0] = OFF_PEAK
    assert tuple(ladder.prices[0]) == (0.27, 1.1)


def test_the_benchmarks_price_at_one_fixed_time() -> None:
    from bench.ladder import PRICED_AT, prices

    assert PRICED_AT.tzinfo is not None
    assert prices()["deepseek-chat"] == price_of("deepseek:deepseek-chat", at=PRICED_AT)


@pytest.mark.parametrize("bad", [datetime.datetime(2026, 12, 7, 20, 0), "2026-12-07T20:00Z", 1796680681])
def test_a_time_that_is_not_timezone_aware_is_refused(bad: object) -> None:
    """A naive datetime would be read as UTC whatever the host's zone (off peak read as peak on a UTC+8 host)."""
    from routellm_core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="timezone-aware"):
        price_of("deepseek-chat", at=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        call_cost("gpt-4o", 10, 10, at=bad)  # type: ignore[arg-type]
