"""Bugs a new user met following docs/learning.md and the README's CLI lines literally, each pinned by the command
that showed it: thin calibration samples in ``train``, untrained registry routers, flags that did nothing, and
messages that did not say what to do from the command line.

Every case runs the real ``routellm`` entry point on the shipped ``default`` router (warm starts take seconds) and
real feedback stores; no case needs the shared data except the in-sample hint of ``evaluate``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from obvious_prompts import EASY, HARD

from routellm_core import load_router
from routellm_core.cli import main
from routellm_core.learning.feedback import DecisionRecord, FeedbackStore

STRONG, WEAK = "gpt-4o", "gpt-4o-mini"


def _variants(prompts: list[str], copies: int) -> list[str]:
    """``copies`` distinct variants of each prompt."""
    return [f"{p} (variant {i})" for i in range(copies) for p in prompts]


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _battles_file(path: Path, model_a: str = STRONG, model_b: str = WEAK) -> Path:
    """Battles over the obvious prompts: ``model_a`` wins the hard ones, ``model_b`` the easy ones."""
    rows = [{"prompt": p, "model_a": model_a, "model_b": model_b, "winner": "model_a"} for p in HARD]
    rows += [{"prompt": p, "model_a": model_a, "model_b": model_b, "winner": "model_b"} for p in EASY]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """stderr of a command that failed with one clear line and printed no result (nor a traceback)."""
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured
    assert captured.err.startswith("routellm: error: ") and "Traceback" not in captured.err
    return captured.err


# ---- train --calibration-prompts: the sample calibrate --write would take ------------------------------------
def test_train_refuses_a_thin_calibration_sample_unless_forced(tmp_path: Path, capsys) -> None:
    """``calibrate --write`` refuses fewer than 50 prompts; ``train --calibration-prompts`` stored thresholds from 10
    (every fraction of the nine-point table placed on 10 scores) and said "recalibrated on 10 prompts"."""
    battles = _battles_file(tmp_path / "battles.jsonl")
    few = _write_lines(tmp_path / "few.txt", _variants(HARD + EASY, 1)[:10])
    out = tmp_path / "mine"
    base = ["train", "--battles", str(battles), "--init", "default", "--out", str(out)]
    assert main([*base, "--calibration-prompts", str(few)]) == 2
    err = _one_error_line(capsys)
    assert "10 prompts given, 50 or more needed" in err and "--force" in err
    assert not out.exists()  # nothing written

    assert main([*base, "--calibration-prompts", str(few), "--force"]) == 0
    captured = capsys.readouterr()
    assert "thresholds recalibrated on 10 prompts" in captured.out
    assert load_router(out).metadata["calibrated_on_prompts"] == 10

    # --force alone has nothing to force
    assert main([*base, "--force"]) == 2
    assert "give --calibration-prompts too" in _one_error_line(capsys)


def test_train_refuses_calibration_prompts_on_which_fractions_collapse(tmp_path: Path, capsys) -> None:
    """60 lines of one prompt are "enough" by count but every fraction maps to one threshold: refused like
    ``calibrate --write`` refuses it (nothing written), accepted with ``--force``."""
    battles = _battles_file(tmp_path / "battles.jsonl")
    same = _write_lines(tmp_path / "same.txt", ["What is the capital of France?"] * 60)
    out = tmp_path / "mine"
    args = ["train", "--battles", str(battles), "--init", "default", "--calibration-prompts", str(same)]
    assert main([*args, "--out", str(out)]) == 2
    err = _one_error_line(capsys)
    assert "map to the same threshold" in err and str(out) in err and "--force" in err
    assert not out.exists()
    assert main([*args, "--out", str(out), "--force"]) == 0
    assert "these thresholds are rough" in capsys.readouterr().err
    assert len(set(load_router(out).calibrated_thresholds.values())) == 1  # what --force asked for


def test_train_notes_thresholds_recalibrated_on_a_thin_store(tmp_path: Path, capsys) -> None:
    """The store's own prompts still calibrate (as documented), but a store of 16 prompts now says its thresholds
    are rough and how to redo them."""
    store = FeedbackStore(tmp_path / "store.db")
    for i, prompt in enumerate(HARD + EASY):
        record = DecisionRecord(decision_id=f"c{i}", strong_model=STRONG, weak_model=WEAK, served="weak")
        store.add(prompt, STRONG, WEAK, "model_a" if prompt in HARD else "model_b", source="judge", record=record)
    out = tmp_path / "mine"
    assert main(["train", "--feedback", str(tmp_path / "store.db"), "--init", "default", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "thresholds recalibrated on 16 prompts" in captured.out
    assert "note: the thresholds were recalibrated on the store's prompts, which are thin" in captured.err
    assert f"routellm calibrate --router {out} --prompts YOUR_PROMPTS.txt --write" in captured.err


# ---- registry names: untrained routers ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "shipped"),
    [
        (["calibrate", "--router", "mf", "--prompts", "{traffic}"], "fast"),
        (["calibrate", "--router", "difficulty", "--prompts", "{traffic}"], "default"),
        (["route", "--router", "mf", "hello"], "fast"),
        (["route", "--router", "sw_ranking", "--threshold", "0.5", "hello"], None),
        (
            ["evaluate", "--router", "mf", "--golden", "{golden}", "--strong-model", "big", "--weak-model", "small"],
            "fast",
        ),
        (["report", "--router", "mf", "--battles", "{battles}"], "fast"),
    ],
)
def test_an_untrained_registry_router_says_what_to_do_from_the_cli(
    tmp_path: Path, capsys, argv: list[str], shipped: str | None
) -> None:
    """``--router mf`` builds an untrained router: the message was "call fit(...) or load a checkpoint" (Python);
    now it says which shipped router is of that type and how to train one into a folder."""
    files = {
        "{traffic}": _write_lines(tmp_path / "traffic.txt", _variants(HARD + EASY, 4)),
        "{battles}": _battles_file(tmp_path / "battles.jsonl"),
        "{golden}": tmp_path / "golden.jsonl",
    }
    rows = [{"prompt": p, "scores": {"big": float(p in HARD), "small": float(p in EASY)}} for p in HARD + EASY]
    files["{golden}"].write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert main([str(files.get(a, a)) for a in argv]) == 2
    err = _one_error_line(capsys)
    assert "fit(" not in err and "untrained" in err
    kind = argv[2]
    assert f"routellm train --router {kind} --battles YOUR_BATTLES.jsonl --out my_router" in err
    assert "then --router my_router" in err
    if shipped:
        assert f"routellm train --init {shipped} --feedback feedback.db --out my_router" in err


def test_route_strong_fraction_on_a_registry_name_does_not_advise_a_refused_command(capsys) -> None:
    """``route --router random --strong-fraction`` advised ``calibrate --router random ... --write``, which
    ``calibrate`` refuses (a registry name has no folder)."""
    assert main(["route", "--router", "random", "--strong-fraction", "0.3", "hello"]) == 2
    err = _one_error_line(capsys)
    assert "--write" not in err and "no checkpoint folder" in err and "--threshold" in err
    assert main(["route", "--router", "random", "--threshold", "0.3", "hello"]) == 0  # the way it names works
    assert json.loads(capsys.readouterr().out)["threshold"] == 0.3


# ---- flags that did nothing --------------------------------------------------------------------------------
def test_calibrate_threshold_with_write_is_refused_not_ignored(tmp_path: Path, capsys) -> None:
    """``calibrate --threshold 0.6 --write`` printed a fraction, exited 0 and wrote nothing: --write was ignored."""
    out = tmp_path / "mine"
    assert main(["train", "--init", "default", "--out", str(out)]) == 0
    capsys.readouterr()
    traffic = _write_lines(tmp_path / "traffic.txt", _variants(HARD + EASY, 4))
    before = (out / "config.json").read_bytes()
    for flag in ("--write", "--force"):
        argv = ["calibrate", "--router", str(out), "--prompts", str(traffic), "--threshold", "0.6", flag]
        assert main(argv) == 2
        err = _one_error_line(capsys)
        assert f"--{flag.strip('-')} belongs to calibrating --fractions" in err and "drop --threshold" in err
    assert (out / "config.json").read_bytes() == before
    # without --write, --threshold still reports its strong-call fraction
    assert main(["calibrate", "--router", str(out), "--prompts", str(traffic), "--threshold", "0.6"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"threshold", "strong_fraction"}


# ---- the pair ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("router", ["mf", "difficulty"])
def test_train_from_scratch_without_a_pair_names_the_flags(tmp_path: Path, capsys, router: str) -> None:
    """Labels of your own two models and no pair named: the error named the missing reference models ("appear in
    no training record") but not the flags that fix it."""
    rows = [{"prompt": p, "scores": {"big": float(p in HARD), "small": float(p in EASY)}} for p in HARD + EASY]
    golden = tmp_path / "golden.jsonl"
    golden.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "mine"
    assert main(["train", "--router", router, "--golden", str(golden), "--out", str(out)]) == 2
    err = _one_error_line(capsys)
    assert "--strong-model and --weak-model" in err and "big, small" in err
    assert not out.exists()


def test_warm_start_on_another_pair_says_how_to_learn_from_it(tmp_path: Path, capsys) -> None:
    """``store.export_jsonl`` then ``train --battles export.jsonl --init default`` (docs/learning.md): the file
    loses the store's pair, every battle is ignored and the router is its init; the line said so but not why."""
    store = FeedbackStore(tmp_path / "store.db")
    for i, prompt in enumerate(HARD + EASY):
        record = DecisionRecord(decision_id=f"c{i}", strong_model=STRONG, weak_model=WEAK, served="weak")
        store.add(prompt, STRONG, WEAK, "model_a" if prompt in HARD else "model_b", source="judge", record=record)
    assert store.export_jsonl(tmp_path / "feedback.jsonl") == 16
    out = tmp_path / "mine"
    base = ["train", "--battles", str(tmp_path / "feedback.jsonl"), "--init", "default", "--out", str(out)]
    assert main(base) == 0
    line = capsys.readouterr().out
    assert "no decided battle of its pair, so the pair scores like its init" in line
    # they were not thrown away: the difficulty router refit the profiles of the models they score (models=[...]),
    # the profiles gpt-4o and gpt-4o-mini resolve to (not new ones named after the spelling)
    assert (
        "left the pair's win rate as it was and refit the profiles of gpt-4o-2024-08-06 (16 labels), "
        "gpt-4o-mini-2024-07-18 (16 labels)" in line
    )
    assert "ignored" not in line
    assert f"to learn from your labels ({STRONG} / {WEAK}), name that pair: --strong-model and --weak-model" in line
    # following it learns the labels
    assert main([*base, "--strong-model", STRONG, "--weak-model", WEAK]) == 0
    out_line = capsys.readouterr().out
    assert "on 16 of 16 battles" in out_line and "name that pair" not in out_line


# ---- the one-sided warning speaks of thumbs only when there are thumbs ------------------------------------------
def test_one_sided_warning_on_judge_labels_does_not_blame_thumbs(tmp_path: Path, capsys) -> None:
    """The walkthrough's store holds judge labels only, yet ``train`` explained the one-sidedness with thumbs
    verdicts ("'good' on a weak answer is stored as a tie")."""
    store = FeedbackStore(tmp_path / "store.db")
    for i, prompt in enumerate(_variants(HARD + EASY, 2)):
        record = DecisionRecord(decision_id=f"c{i}", strong_model=STRONG, weak_model=WEAK, served="weak")
        store.add(prompt, STRONG, WEAK, "model_a", source="judge", judge="j", record=record)
    out = tmp_path / "mine"
    assert main(["train", "--feedback", str(tmp_path / "store.db"), "--init", "default", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: 32 of 32 kept battles say the strong model won" in err
    assert "thumbs" not in err

    for i in range(0, 32, 2):  # now with user thumbs on the weak answers: the explanation is back
        store.record_decision(
            DecisionRecord(decision_id=f"u{i}", strong_model=STRONG, weak_model=WEAK, served="weak"), f"thumb {i}"
        )
        store.add_verdict(f"u{i}", "bad")
    assert main(["train", "--feedback", str(tmp_path / "store.db"), "--init", "default", "--out", str(out)]) == 0
    assert "thumbs verdicts alone never make a weak win" in capsys.readouterr().err


# ---- evaluate's in-sample hint ------------------------------------------------------------------------------
def test_evaluate_in_sample_hint_retrains_the_routers_own_type(shared_data_dir: Path, capsys) -> None:
    """``evaluate --router default`` (a difficulty router) advised ``routellm train --router mf ...`` to score it
    held out: another router type."""
    assert main(["evaluate", "--router", "default"]) == 0
    err = capsys.readouterr().err
    assert "routellm train --router difficulty --sources" in err and "--router mf" not in err


# ---- report on a router trained from scratch on the same labels ----------------------------------------------
def test_report_says_a_router_trained_from_scratch_on_labels_is_scored_in_sample(tmp_path: Path, capsys) -> None:
    """``train --feedback store.db --out r`` (no --init) then ``report --router r --feedback store.db`` scored the
    router on the labels it was fitted on, with a k-fold row started from it, and said nothing: a "Yes" in-sample."""
    store = FeedbackStore(tmp_path / "store.db")
    for i, prompt in enumerate(_variants(HARD + EASY, 2)):
        record = DecisionRecord(decision_id=f"c{i}", strong_model=STRONG, weak_model=WEAK, served="weak")
        winner = "model_a" if any(prompt.startswith(h) for h in HARD) else "model_b"
        store.add(prompt, STRONG, WEAK, winner, source="judge", judge="j", record=record)
    out = tmp_path / "mine"
    argv = ["train", "--feedback", str(tmp_path / "store.db"), "--params", '{"epochs": 3}', "--out", str(out)]
    assert main(argv) == 0
    assert load_router(out).metadata["trained_on_labels"]["feedback"] == str(tmp_path / "store.db")
    capsys.readouterr()
    assert main(["report", "--router", str(out), "--feedback", str(tmp_path / "store.db"), "--folds", "0"]) == 0
    text = capsys.readouterr().out
    assert f"`{out}` was trained from scratch on labelled traffic ({tmp_path / 'store.db'})" in text
    assert "in-sample and optimistic" in text

    # a warm-started router keeps its own note (measured through its init), not this one
    assert main(["train", "--feedback", str(tmp_path / "store.db"), "--init", "default", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", "--router", str(out), "--feedback", str(tmp_path / "store.db"), "--folds", "0"]) == 0
    text = capsys.readouterr().out
    assert "trained from scratch" not in text and "was warm-started from `default`" in text


def test_a_stored_postgresql_location_hides_every_password() -> None:
    """``trained_on_labels`` keeps where the labels came from (``redact_url``, as the store shows its own
    location), never a password (in the netloc or in libpq's query parameters)."""
    from routellm_core.learning.feedback_postgres import redact_url

    shown = redact_url("postgresql://me:pw1@db.local:5432/fb?password=pw2&sslpassword=pw3&sslmode=require")
    assert "pw1" not in shown and "pw2" not in shown and "pw3" not in shown
    assert shown.startswith("postgresql://me:***@db.local:5432/fb?") and "sslmode=require" in shown
    assert redact_url("feedback.db") == "feedback.db"
