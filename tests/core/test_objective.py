"""``Objective``'s text form (the server's names and request field, the CLI's ``--objective``): ``<kind>=<value>``,
and for a budget held over another window than the default ``budget=<value>,window=<requests>``."""

from __future__ import annotations

import pytest

from routellm_core.errors import InvalidInputError
from routellm_core.routing.objective import DEFAULT_WINDOW, Objective


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("margin=0.05", Objective.margin(0.05)),
        ("budget=1.5", Objective.budget(1.5)),
        ("max_cost=1e-05", Objective.max_cost(1e-5)),
        ("cost_weight=300", Objective.cost_weight(300)),
        ("budget=1.5,window=500", Objective.budget(1.5, window=500)),
        ("budget=0.25,window=1", Objective.budget(0.25, window=1)),
    ],
)
def test_the_text_form_round_trips(text: str, expected: Objective) -> None:
    parsed = Objective.parse(text)
    assert parsed == expected
    assert str(parsed) == text
    assert Objective.parse(str(expected)) == expected


def test_the_default_window_is_not_written_and_spaces_are_allowed() -> None:
    assert DEFAULT_WINDOW == 200
    assert str(Objective.parse("budget=1.5,window=200")) == "budget=1.5"
    assert Objective.parse(" budget = 2 , window = 50 ") == Objective.budget(2, window=50)
    assert Objective.parse("budget=1.5").window == 200


def test_two_windows_are_two_objectives() -> None:
    """Engines are kept by objective and named by its text: each window gets its own."""
    wide, narrow = Objective.parse("budget=1.5,window=500"), Objective.parse("budget=1.5,window=50")
    assert wide != narrow and wide != Objective.budget(1.5)
    assert len({wide, narrow, Objective.budget(1.5)}) == 3
    assert len({str(wide), str(narrow), str(Objective.budget(1.5))}) == 3


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("margin=0.05,window=500", "a window applies only to the budget objective"),
        ("max_cost=0.01,window=200", "a window applies only to the budget objective"),
        ("budget=1.5,window=0", "window must be a positive number of requests"),
        ("budget=1.5,window=-3", "window must be a positive number of requests"),
        ("budget=1.5,window=2.5", "window must be a whole number of requests"),
        ("budget=1.5,window=", "window must be a whole number of requests"),
        ("budget=1.5,window=5,window=6", "the window is given twice"),
        ("budget=1.5,speed=3", "takes only ',window=<requests>'"),
        ("budget=1.5,", "takes only ',window=<requests>'"),
        ("budget=1.5,500", "takes only ',window=<requests>'"),
        ("speed=1,window=3", "unknown objective 'speed'"),
        ("budget", "an objective is '<kind>=<number>'"),
        ("window=500", "unknown objective 'window'"),
    ],
)
def test_bad_text_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Objective.parse(text)
    assert problem in str(caught.value)


def test_a_window_on_another_kind_is_refused_when_built_too() -> None:
    with pytest.raises(InvalidInputError, match="a window applies only to the budget objective"):
        Objective("margin", 0.05, 500)
    assert Objective("margin", 0.05, DEFAULT_WINDOW) == Objective.margin(0.05)
