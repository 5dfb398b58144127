"""Learning a price ladder from the user's labels: bugs found by a user whose ladder has models the shipped profiles
do not know, teaching the shipped ``default`` router from golden labels and battles.

- A label for a spelling of a profiled model (``openai:gpt-4o``, ``GPT-4o``) made a new profile under that
  spelling: ``gpt-4o`` kept predicting as before, mixed spellings split one model's labels into two profiles, and a
  new model's two spellings (``anthropic/claude-sonnet-4.5``, ``claude-sonnet-4-5``) became two models.
- A warm start naming its pair as a ladder does (``gpt-4o`` / ``gpt-4o-mini``, a feedback store's pair) gave them
  copies of the init's reference profiles (GPT-4 Turbo's, Mixtral's): with no label, gpt-4o-mini's ladder prediction
  moved, and the pair's labels never reached the ladder's profiles (a store's most common pair taught the ladder
  nothing); a battle of one pair model against a third model was dropped altogether.
- The profile fit (Newton's method without a step control) diverged from a wrong stated prior: an 8B model stated
  like o1-preview, right on 39% of 100 CRUX labels, came out predicted right on every prompt.
- A blank model name trained a profile named ``""``; 10,000 distinct model names took minutes (every name compared
  with every other); a stray score of 1.5 among 0/1 correctness silently rescaled every label of its source.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from routellm_core import Battle, GoldenLabel, load_router
from routellm_core.errors import TrainingDataError
from routellm_core.routers.difficulty import DifficultyRouter
from routellm_core.routers.profiles import ModelPrior, labelled_profile, profile_names
from routellm_core.routers.training import train_router

HARD = [f"Prove that for every integer n > {k} the sum of the first n odd numbers is n squared." for k in range(12)]
EASY = [f"What is {k} plus {k + 1}?" for k in range(12)]
UNSEEN = ["Prove that there are infinitely many primes.", "What is 40 plus 2?", "Write a haiku about autumn."]


@pytest.fixture(scope="module")
def default() -> DifficultyRouter:
    router = load_router("default")
    assert isinstance(router, DifficultyRouter)
    return router


def failing(model: str, prompts: list[str]) -> list[GoldenLabel]:
    """``model`` wrong on every prompt, gpt-4o-mini right: labels the default's profiles do not expect."""
    return [GoldenLabel(prompt=p, scores={model: 0.0, "gpt-4o-mini-2024-07-18": 1.0}) for p in prompts]


# ---- spellings of one model ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["openai:gpt-4o", "gpt-4o", "GPT-4o", " gpt-4o ", "openai/gpt-4o-2024-08-06"])
def test_a_label_for_a_spelling_of_a_profiled_model_refits_that_profile(default, spelling) -> None:
    mine = train_router(None, failing(spelling, HARD + EASY), init="default")
    assert mine.models == default.models  # no profile named after the spelling
    refit = mine.metadata["profiles_refit"]["gpt-4o-2024-08-06"]
    assert refit["labels"] == 24 and refit["start"] == "own profile"
    assert refit["labelled_as"] == [spelling.strip()]
    before = default.predict_success(UNSEEN, ["gpt-4o"])
    for name in ("gpt-4o", "openai:gpt-4o", "gpt-4o-2024-08-06", spelling):  # every spelling predicts the same
        after = mine.predict_success(UNSEEN, [name])
        assert (after < before - 0.2).all(), name  # and the labels moved it: wrong on every labelled prompt


def test_a_hugging_face_org_prefix_names_the_profiled_model(default) -> None:
    """``nvidia/Llama-3.1-Nemotron-51B-Instruct`` (NVIDIA's own spelling) made a new profile from the mean one."""
    labels = [GoldenLabel(prompt=p, scores={"nvidia/Llama-3.1-Nemotron-51B-Instruct": 0.0}) for p in HARD + EASY]
    mine = train_router(None, labels, init="default")
    assert mine.models == default.models
    assert mine.metadata["profiles_refit"]["llama-3.1-nemotron-51b-instruct"]["start"] == "own profile"
    assert mine.resolve_model("deepseek-ai/DeepSeek-Coder-V2") == "DeepSeek-Coder-V2"


def test_labels_under_mixed_spellings_are_one_model(default) -> None:
    labels = failing("openai:gpt-4o", HARD) + failing("gpt-4o-2024-08-06", EASY)
    mine = train_router(None, labels, init="default")
    refit = mine.metadata["profiles_refit"]
    assert refit["gpt-4o-2024-08-06"]["labels"] == 24
    assert refit["gpt-4o-2024-08-06"]["labelled_as"] == ["gpt-4o-2024-08-06", "openai:gpt-4o"]
    assert "openai:gpt-4o" not in mine.models


def test_the_spellings_of_a_new_model_make_one_profile(default) -> None:
    labels = [GoldenLabel(prompt=p, scores={"anthropic/claude-sonnet-4.5": 1.0}) for p in HARD]
    labels += [
        GoldenLabel(prompt=p, scores={"claude-sonnet-4-5": 1.0, "Claude-Sonnet-4.5-20250929": 1.0}) for p in EASY
    ]
    mine = train_router(None, labels, init="default")
    assert sorted(set(mine.models) - set(default.models)) == ["claude-sonnet-4-5"]  # the spelling without a prefix
    assert mine.metadata["profiles_refit"]["claude-sonnet-4-5"]["labels"] == 36
    for spelling in ("anthropic/claude-sonnet-4.5", "claude-sonnet-4.5", "CLAUDE-SONNET-4-5"):
        assert mine.resolve_model(spelling) == "claude-sonnet-4-5"


def test_another_dated_version_is_a_model_of_its_own(default) -> None:
    """``gpt-4o-2024-11-20`` is not ``gpt-4o-2024-08-06``: its labels start from that profile and leave it as it was."""
    mine = train_router(None, failing("gpt-4o-2024-11-20", HARD + EASY), init="default")
    assert mine.metadata["profiles_refit"]["gpt-4o-2024-11-20"]["start"] == "profile of gpt-4o-2024-08-06"
    np.testing.assert_array_equal(
        mine.predict_success(UNSEEN, ["gpt-4o-2024-08-06"]), default.predict_success(UNSEEN, ["gpt-4o-2024-08-06"])
    )
    assert labelled_profile("gpt-4o-2024-11-20", default.models) is None
    assert labelled_profile("openai:gpt-4o", default.models) == "gpt-4o-2024-08-06"
    assert labelled_profile("mistral-large-2407", default.models) == "Mistral-Large-2"  # an alias is that model
    # Ollama tags of two sizes are two models; one size under two providers is one
    names = profile_names(["llama3.1:8b", "llama3.1:70b", "ollama:llama3.1:70b"], default.models)
    assert names == {
        "llama3.1:70b": "llama3.1:70b",
        "llama3.1:8b": "llama3.1:8b",
        "ollama:llama3.1:70b": "llama3.1:70b",
    }


# ---- the pair of a warm start ----------------------------------------------------------------------------------------
def test_a_pair_named_as_a_ladder_names_it_keeps_their_profiles(default, tmp_path) -> None:
    mine = train_router(None, [], init="default", strong_model="gpt-4o", weak_model="gpt-4o-mini")
    assert mine.models == default.models  # no copy of GPT-4 Turbo's profile named gpt-4o
    ladder = ["gpt-4o-mini", "gpt-4o", "openai:gpt-4o-mini"]
    np.testing.assert_array_equal(mine.predict_success(UNSEEN, ladder), default.predict_success(UNSEEN, ladder))
    np.testing.assert_allclose(
        mine.predict_win_rate(UNSEEN), default.pairwise_win_rate(UNSEEN, "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18")
    )
    loaded = load_router(mine.save(tmp_path / "mine"))  # the pair resolves on load too
    np.testing.assert_array_equal(loaded.predict_win_rate(UNSEEN), mine.predict_win_rate(UNSEEN))


def test_the_pairs_battles_teach_the_ladder_and_leave_its_two_model_path_as_it_was(default, tmp_path) -> None:
    """A feedback store of a ladder: most labels are between its pair (gpt-4o and a cheaper in-house model that the
    judge prefers); a few compare the in-house model with gpt-4o-mini."""
    pair = [Battle(prompt=p, model_a="gpt-4o", model_b="acme-ft", winner="model_b") for p in HARD + EASY]
    third = [Battle(prompt=p, model_a="gpt-4o-mini", model_b="acme-ft", winner="model_b") for p in HARD[:6]]
    kw = {"strong_model": "gpt-4o", "weak_model": "acme-ft"}
    mine = train_router(None, pair + third, init="default", **kw)
    refit = mine.metadata["profiles_refit"]
    assert refit["acme-ft"]["labels"] == 30
    assert refit["acme-ft"]["start"] == "copy of the init's reference profile mistralai/Mixtral-8x7B-Instruct-v0.1"
    assert refit["gpt-4o-2024-08-06"]["labels"] == 24 and refit["gpt-4o-mini-2024-07-18"]["labels"] == 6
    acme, gpt4o = mine.predict_success(UNSEEN, ["acme-ft", "gpt-4o"]).T
    assert (acme > gpt4o).all()  # the ladder learned what the judge said
    start = default.predict_success(UNSEEN, ["mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4o"]).T
    assert (acme > start[0]).all() and (gpt4o < start[1]).all()
    # the two-model path: the pair's logit scores on the profiles before its battles, refitted on its battles
    only_pair = train_router(None, pair, init="default", **kw)
    assert mine.metadata["pair_profiles"] is True
    np.testing.assert_allclose(mine.predict_win_rate(UNSEEN), only_pair.predict_win_rate(UNSEEN), rtol=1e-12)
    loaded = load_router(mine.save(tmp_path / "mine"))
    np.testing.assert_array_equal(loaded.predict_win_rate(UNSEEN), mine.predict_win_rate(UNSEEN))
    np.testing.assert_array_equal(
        loaded.predict_success(UNSEEN, ["acme-ft"]), mine.predict_success(UNSEEN, ["acme-ft"])
    )
    again = train_router(None, [], init=tmp_path / "mine")  # a warm start from it keeps both paths
    np.testing.assert_array_equal(again.predict_win_rate(UNSEEN), mine.predict_win_rate(UNSEEN))
    np.testing.assert_array_equal(again.predict_success(UNSEEN, ["acme-ft"]), mine.predict_success(UNSEEN, ["acme-ft"]))


def test_a_corrupt_pair_profiles_tensor_is_refused(tmp_path) -> None:
    import json

    from safetensors.numpy import load_file, save_file

    from routellm_core import CheckpointError

    pair = [Battle(prompt=p, model_a="gpt-4o", model_b="acme-ft", winner="model_b") for p in HARD + EASY]
    folder = train_router(None, pair, init="default", strong_model="gpt-4o", weak_model="acme-ft").save(tmp_path / "m")
    tensors = load_file(str(folder / "model.safetensors"))
    save_file({**tensors, "pair_profiles": tensors["pair_profiles"][:1]}, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="pair_profiles"):
        load_router(folder)
    huge = tensors["pair_profiles"].copy()
    huge[0, 0] = np.inf
    save_file({**tensors, "pair_profiles": huge}, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError):
        load_router(folder)
    config = json.loads((folder / "config.json").read_text())
    config["metadata"]["pair_profiles"] = "yes"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="pair_profiles must be true or false"):
        load_router(folder)


# ---- a wrong stated prior ----------------------------------------------------------------------------------------
def test_labels_pull_a_wrong_prior_towards_them_without_diverging(default, shared_data_dir) -> None:
    from routellm_core import data

    truth = "Meta-Llama-3.1-8B-Instruct"
    labels = [lab for lab in data.golden_labels_crux() if truth in lab.scores][:100]
    init = train_router(None, [], init=default)  # a copy to state the prior on
    init.add_model("my-8b", ModelPrior(like="o1-preview-2024-09-12"))
    mine = train_router(
        None, [GoldenLabel(prompt=lab.prompt, scores={"my-8b": lab.scores[truth]}) for lab in labels], init=init
    )
    prompts = [lab.prompt for lab in labels]
    right = np.mean([lab.scores[truth] for lab in labels])
    prior = init.predict_success(prompts, ["my-8b"]).mean()
    learned = mine.predict_success(prompts, ["my-8b"]).mean()
    assert right < learned < prior - 0.2, (right, learned, prior)  # it was 1.0: above the prior it came from
    assert mine.metadata["profiles_refit"]["my-8b"]["start"] == "stated prior (like o1-preview-2024-09-12)"


# ---- bad inputs ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["", "   "])
def test_a_blank_model_name_is_refused(name) -> None:
    labels = [GoldenLabel(prompt=p, scores={name: 1.0, "gpt-4o": 0.0}) for p in EASY]
    with pytest.raises(TrainingDataError, match="blank"):
        train_router(None, labels, init="default")
    with pytest.raises(TrainingDataError, match="blank"):
        train_router(
            None,
            [Battle(prompt=p, model_a=name or " ", model_b="gpt-4o", winner="model_a") for p in EASY],
            init="default",
        )


def test_ten_thousand_model_names_are_ten_thousand_profiles(default) -> None:
    """Ten thousand new names (model-1, model-2, ... look alike but are not spellings of one another) each get a
    profile. (Resolving them took 168 s on 2 cores, each new name compared with every other; about 5 s now: a
    figure for a benchmark, not asserted here.)"""
    labels = [
        GoldenLabel(prompt=f"{EASY[i % 12]} ({i})", scores={f"model-{i}": 1.0, "gpt-4o": 0.0}) for i in range(10_000)
    ]
    mine = train_router(None, labels, init="default")
    assert len(mine.models) == len(default.models) + 10_000  # model-1 and model-2 are two models
    assert mine.metadata["profiles_refit"]["gpt-4o-2024-08-06"]["labels"] == 10_000


def test_a_stray_score_outside_0_1_is_said(caplog) -> None:
    labels = [GoldenLabel(prompt=p, scores={"gpt-4o": 1.0, "gpt-4o-mini": 0.0}) for p in HARD]
    labels.append(GoldenLabel(prompt=EASY[0], scores={"gpt-4o": 1.5, "gpt-4o-mini": 1.0}))
    with caplog.at_level(logging.WARNING, logger="routellm_core.routers.difficulty"):
        train_router(None, labels, init="default")
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "1 of 26 scores are outside [0, 1]" in said and "a 1 there counts 0.667" in said


def test_cli_golden_labels_warm_start_profiles_a_new_model(tmp_path) -> None:
    """`routellm train --golden FILE --init default` turned the golden labels into battles (a warm start was not
    asked its init's type): labels scoring one model only made no battle, so the new model was never profiled,
    while train_router in Python profiled it from the same labels."""
    import json

    from routellm_core.cli import main

    golden = tmp_path / "golden.jsonl"
    rows = [{"prompt": f"What is {k} times {k + 3}?", "scores": {"acme-ft": 1.0}} for k in range(30)]
    rows += [{"prompt": h, "scores": {"acme-ft": 0.0}} for h in HARD]
    golden.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "mine"
    assert main(["train", "--golden", str(golden), "--init", "default", "--out", str(out)]) == 0
    mine = load_router(out)
    assert "acme-ft" in mine.models
    easy, hard = mine.predict_success(["What is 40 times 43?", HARD[0]], ["acme-ft"])[:, 0]
    assert easy > hard  # right on the easy ones, wrong on the hard ones


# ---- a review's cases ----------------------------------------------------------------------------------------------
def _pair_battles(strong: str, weak: str) -> list[Battle]:
    return [Battle(prompt=p, model_a=strong, model_b=weak, winner="model_a") for p in HARD[:6]] + [
        Battle(prompt=p, model_a=strong, model_b=weak, winner="model_b") for p in EASY[:6]
    ]


def test_a_warm_start_keeps_the_pairs_scoring_profiles_without_a_correction(default, tmp_path) -> None:
    """A warm start whose cross-validation kept the init's logit saves the pair's scoring profiles alone (no
    correction); the next warm start dropped them and scored the pair on the profiles its battles had skewed: with no
    new label its win rates moved by up to 0.21."""
    first = train_router(None, _pair_battles(default.strong_model, default.weak_model), init="default")
    assert first.pair_profiles_ is not None
    first.pair_correction_ = None  # as cross-validation leaves it when keeping the init's logit
    first.metadata.pop("pair_correction", None)
    first._fold()
    first.save(tmp_path / "m1")
    again = train_router(None, [], init=str(tmp_path / "m1"))
    texts = [*HARD, *EASY, *UNSEEN]
    assert np.allclose(again.predict_win_rate(texts), first.predict_win_rate(texts), atol=1e-12)


def test_another_dated_version_does_not_merge_through_the_undated_name() -> None:
    """With the undated name among the labels, every dated version of a new model joined its profile: whether two
    versions stayed apart depended on which spellings the labels used."""
    names = profile_names(["acme-haiku-20241022", "acme-haiku-20250301", "acme-haiku", "openai:acme-haiku"], [])
    assert names["acme-haiku-20241022"] != names["acme-haiku-20250301"]
    assert names["acme-haiku"] == names["openai:acme-haiku"] == names["acme-haiku-20250301"]  # the latest


def test_a_pair_naming_one_profiled_model_is_refused(default) -> None:
    """claude-3-5-sonnet-latest and claude-3-5-sonnet-20240620 both read as the one profiled June model: every win
    rate was 0.5."""
    with pytest.raises(TrainingDataError, match="names one profiled model"):
        train_router(
            None, [], init="default", strong_model="claude-3-5-sonnet-latest", weak_model="claude-3-5-sonnet-20240620"
        )


def test_battles_spelled_otherwise_are_the_pairs_battles(default) -> None:
    """A pair (openai:gpt-4o, gpt-4o-mini) with battles written gpt-4o vs openai:gpt-4o-mini: the logit ignored them
    all while the pair's scoring profiles were refitted from them."""
    spelled = train_router(
        None,
        _pair_battles("gpt-4o", "openai:gpt-4o-mini"),
        init="default",
        strong_model="openai:gpt-4o",
        weak_model="gpt-4o-mini",
    )
    exact = train_router(
        None,
        _pair_battles("openai:gpt-4o", "gpt-4o-mini"),
        init="default",
        strong_model="openai:gpt-4o",
        weak_model="gpt-4o-mini",
    )
    texts = [*HARD, *EASY, *UNSEEN]
    assert np.allclose(spelled.predict_win_rate(texts), exact.predict_win_rate(texts), atol=1e-9)
    assert spelled.metadata.get("warm_start_ignored_battles", 0) == 0


def test_implausible_pair_profiles_are_refused(default, tmp_path) -> None:
    from safetensors.numpy import load_file, save_file

    from routellm_core.errors import CheckpointError

    first = train_router(None, _pair_battles(default.strong_model, default.weak_model), init="default")
    first.save(tmp_path / "m")
    weights = next((tmp_path / "m").glob("*.safetensors"))
    tensors = load_file(weights)
    tensors["pair_profiles"] = tensors["pair_profiles"] * 1e6
    save_file(tensors, weights)
    with pytest.raises(CheckpointError, match="pair_profiles"):
        load_router(tmp_path / "m")
