"""A malicious checkpoint supplier against the loaders, pinned by tests that failed before their fix.

The shipped ``fast`` router's real checkpoint, copied, with its ``config.json`` replaced by a link to a JSON file of
the victim's (a credentials file): the load is refused, and the message and its chained causes (what a traceback in
a log shows) never quote the linked file's values.
"""

from __future__ import annotations

import json
import shutil
import traceback
from pathlib import Path

import pytest

from routellm_core import CheckpointError, load_router
from routellm_core.routers.registry import PRETRAINED_DIR

SECRET = "SECRETKEY-7f3e91c2a4b8d605"


def _linked_checkpoint(tmp_path: Path, target: dict[str, object]) -> Path:
    """The shipped ``fast`` checkpoint whose ``config.json`` links to a JSON file holding ``target``."""
    victim = tmp_path / "home" / "credentials.json"
    victim.parent.mkdir()
    victim.write_text(json.dumps(target))
    folder = tmp_path / "crafted"
    shutil.copytree(PRETRAINED_DIR / "fast", folder)
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to(victim)
    return folder


def test_the_shipped_checkpoint_copy_loads(tmp_path: Path) -> None:
    """The copy itself is sound: only the link below makes it fail."""
    folder = tmp_path / "copy"
    shutil.copytree(PRETRAINED_DIR / "fast", folder)
    assert 0.0 <= load_router(folder).predict_win_rate(["Prove that sqrt(2) is irrational."])[0] <= 1.0


@pytest.mark.parametrize(
    "target",
    [
        {"aws_secret_access_key": SECRET},  # an unknown key: pydantic quoted its value
        {"router": {"token": SECRET}, "strong_model": "a", "weak_model": "b"},  # a known key of the wrong type
        {"router": "mf", "strong_model": ["x", SECRET], "weak_model": "b"},
    ],
)
def test_a_config_linked_to_a_json_file_never_shows_its_values(tmp_path: Path, target: dict[str, object]) -> None:
    folder = _linked_checkpoint(tmp_path, target)
    with pytest.raises(CheckpointError, match="is not a valid router config") as raised:
        load_router(folder)
    shown = "".join(traceback.format_exception(raised.value))  # the chained ValidationError included
    assert SECRET not in shown
