"""The ``routellm`` command line: train, calibrate, route, evaluate and report on routers."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routellm_core.embedding.embedders import Embedder
from routellm_core.errors import CheckpointError, InvalidInputError, RouteLLMError, TrainingDataError

if TYPE_CHECKING:
    from routellm_core.data.records import Battle, GoldenLabel
    from routellm_core.learning.feedback import FeedbackStore


def _read_prompts(path: str) -> list[str]:
    """Prompts from a text file (one per line), JSONL (``prompt`` key) or a golden-label/battle CSV.

    Raises:
        InvalidInputError: The file is missing or unreadable, or it holds no prompt.
        TrainingDataError: A malformed JSONL line or CSV row, or a CSV without a ``prompt`` column.
    """
    from routellm_core.data.readers import iter_csv, iter_jsonl, prompt_of

    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"prompts file {path} does not exist (or is not a file)")
    try:
        if p.suffix.lower() in (".jsonl", ".ndjson"):
            prompts = [prompt_of(row.get("prompt"), f"{p}, line {n}") for n, row in iter_jsonl(p)]
        elif p.suffix.lower() == ".csv":
            prompts = [prompt_of(row["prompt"], f"{p}, line {n}") for n, row in iter_csv(p, required=["prompt"])]
        else:
            # utf-8-sig: a byte-order mark (Notepad, Excel) is not part of the first prompt; split on line ends
            # only (str.splitlines also splits on form feeds and U+2028 inside a prompt)
            lines = p.read_text(encoding="utf-8-sig").split("\n")
            prompts = [line.removesuffix("\r") for line in lines if line.strip()]
    except UnicodeDecodeError as exc:
        raise TrainingDataError(f"{p}: the file is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read prompts file {p}: {exc.strerror or exc}") from None
    if not prompts:
        raise InvalidInputError(f"prompts file {p} holds no prompt")
    return prompts


def _open_store(path: str) -> FeedbackStore:
    """An existing feedback store (a missing file is an error here, never a new empty store; or a PostgreSQL URL)."""
    from routellm_core.learning.feedback import FeedbackStore, store_backend

    if store_backend(path) == "sqlite" and not Path(path).is_file():
        raise InvalidInputError(f"feedback store {path} does not exist")
    return FeedbackStore(path)


def _params(text: str | None) -> dict[str, Any]:
    """``--params`` as a JSON object."""
    if not text:
        return {}
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"--params is not valid JSON ({exc.msg} at character {exc.pos}): {text!r:.80}"
        ) from None
    if not isinstance(params, dict):
        raise InvalidInputError(f"--params must be a JSON object such as '{{\"epochs\": 20}}', got {text!r:.80}")
    return params


def _labelled(args: argparse.Namespace) -> tuple[list[Battle] | list[GoldenLabel], tuple[str, str] | None]:
    """The labels of ``--feedback`` / ``--battles`` / ``--golden``, and the store's (strong, weak) pair if any."""
    from routellm_core.data import load_battles, load_golden_labels
    from routellm_core.learning.report import store_pair

    given = [x for x in (args.feedback, args.battles, args.golden) if x]
    if len(given) != 1:
        raise InvalidInputError("give exactly one of --feedback, --battles or --golden")
    if args.feedback:
        store = _open_store(args.feedback)
        battles = store.battles()
        if not battles:
            raise InvalidInputError(_no_labels(store))
        return battles, store_pair(store)
    if args.battles:
        return load_battles(args.battles), None
    return load_golden_labels(args.golden), None


def _no_labels(store: FeedbackStore) -> str:
    """Why a feedback store gives nothing to train or report on, and how labels get into it."""
    decisions = store.stats().decisions
    return (
        f"feedback store {store.location} holds no labels yet ({decisions} routed calls recorded, none labelled): "
        "label a sample with a judge (label_fraction=), attach your users' verdicts (add_verdict, or POST "
        "/v1/feedback to routellm serve), or add golden labels"
    )


def _say(message: str) -> None:
    """A progress line of ``routellm train`` on stderr (stdout keeps the one result line)."""
    print(f"routellm train: {message}", file=sys.stderr, flush=True)


class _ProgressEmbedder(Embedder):
    """Wraps the training embedder to show a progress bar (stderr) when a call embeds many prompts.

    Same name, so checkpoints record the wrapped embedder; small calls (routing, calibration) stay silent.
    """

    #: Texts per call to the wrapped embedder; calls with more than one chunk show the bar.
    CHUNK = 256

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name

    def _embed(self, texts: list[str]) -> Any:
        import numpy as np
        from tqdm.auto import tqdm

        if len(texts) <= self.CHUNK:
            return self.inner.embed(texts)
        _say(
            f"embedding {len(texts):,} distinct prompts with {self.name} (cached under $ROUTELLM_CACHE_DIR; "
            "prompts embedded before are read back)"
        )
        parts = []
        with tqdm(total=len(texts), desc="embedding", unit="prompt", file=sys.stderr) as bar:
            for start in range(0, len(texts), self.CHUNK):
                parts.append(self.inner.embed(texts[start : start + self.CHUNK]))
                bar.update(len(parts[-1]))
        return np.concatenate(parts)


def _uncalibrated_hint(folder: str) -> str:
    """How a CLI user adds calibrated thresholds to a checkpoint folder."""
    return (
        f"add them from a sample of your traffic (a text file, one prompt per line) with: "
        f"routellm calibrate --router {folder} --prompts YOUR_PROMPTS.txt --write"
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from routellm_core.data import load_battles, load_golden_labels, training_battles, training_labels
    from routellm_core.data.records import golden_to_battles
    from routellm_core.evaluation.calibration import DEFAULT_FRACTIONS, calibrate_thresholds
    from routellm_core.learning.feedback_postgres import redact_url
    from routellm_core.learning.report import store_pair
    from routellm_core.routers.base import STRONG_REFERENCE, WEAK_REFERENCE
    from routellm_core.routers.registry import get_router_class
    from routellm_core.routers.training import train_router, training_embedder

    params = _params(args.params)
    if args.combiner_init and not args.combiner_out:
        raise InvalidInputError("--combiner-init is the starting point of --combiner-out: give --combiner-out too")
    if args.combiner_out and not args.feedback:
        raise InvalidInputError("--combiner-out refits the escalation combiner from a feedback store: give --feedback")
    if args.router is None and not args.init:
        args.router = "mf"
    if (args.strong_model is None) != (args.weak_model is None):
        raise InvalidInputError("give both --strong-model and --weak-model, or neither")
    if args.force and not args.calibration_prompts:
        raise InvalidInputError(
            "--force only lets --calibration-prompts calibrate on a thin sample: give --calibration-prompts too"
        )
    battles: list[Any] = []
    pair = None
    calib = _read_prompts(args.calibration_prompts) if args.calibration_prompts else None
    thin = _thin_calibration(calib, {}) if calib else None  # too few prompts (known before any training)
    if thin and not args.force:
        raise InvalidInputError(_thin_train_calibration(args, thin))
    # routers that learn from per-model scores (difficulty) get golden labels as they are, others their battles; a
    # warm start is of its init's type (a difficulty init turned --golden into battles: one model's labels vanished)
    kind = args.router or (_init_kind(args.init) if args.init else None)
    labels = kind is not None and getattr(get_router_class(kind), "learns_from_golden_labels", False)
    if args.sources:
        exclude = args.exclude.split(",") if args.exclude else ()
        held = f" (held out: {args.exclude})" if args.exclude else ""
        _say(f"reading the shared sources {args.sources}{held}")
        started = time.monotonic()
        loaded = (training_labels if labels else training_battles)(args.sources.split(","), exclude=exclude)
        battles += loaded
        kind = "golden labels" if labels else "battles"
        _say(
            f"{len(loaded):,} {kind} over {len({b.prompt for b in loaded}):,} distinct prompts "
            f"({time.monotonic() - started:.0f} s)"
        )
    for path in args.battles or []:
        battles += load_battles(path)
    for path in args.golden or []:
        battles += load_golden_labels(path) if labels else golden_to_battles(load_golden_labels(path))
    if args.feedback:
        store = _open_store(args.feedback)
        battles += store.battles()
        pair = store_pair(store)
        calib = calib or store.prompts()
    if not battles and not args.init:
        if args.feedback:
            raise InvalidInputError(_no_labels(store))
        raise InvalidInputError("no training data: give --sources, --battles, --golden or --feedback")
    if args.combiner_out:
        _refit_combiner(args)
    if args.strong_model is not None:
        pair = (args.strong_model, args.weak_model)
    if pair is not None:
        params.update(strong_model=pair[0], weak_model=pair[1])
    elif not args.init:
        if args.router != "random":  # every other router scores the pair it is trained for
            _check_reference_pair(battles, STRONG_REFERENCE, WEAK_REFERENCE)
        params.update(strong_model=STRONG_REFERENCE, weak_model=WEAK_REFERENCE)
    if args.router == "mf" and not args.init:
        params.setdefault("show_progress", True)  # a tqdm bar over the epochs (stderr)
    # The embedder train_router would use anyway (MiniLM, disk-cached), with a progress bar; a warm start keeps
    # its init's embedder and runs in seconds.
    embedder = None
    if not args.init and get_router_class(args.router).uses_embedder:
        embedder = _ProgressEmbedder(training_embedder())
    # With an init, train_router recalibrates (merging the init's table); otherwise the thresholds come after fit.
    router = train_router(
        args.router,
        battles,
        init=args.init,
        embedder=embedder,
        calibration_prompts=calib if args.init else None,
        **params,
    )
    if calib and not args.init:
        _say(f"calibrating thresholds on {len(calib):,} prompts")
        calibrate_thresholds(router, calib, DEFAULT_FRACTIONS)
    _check_train_calibration(args, router, calib, battles)
    if args.sources:
        router.metadata.update(
            sources=args.sources.split(","), excluded=args.exclude.split(",") if args.exclude else []
        )
    if not args.init and (args.feedback or args.battles or args.golden):  # report: its figures there are in-sample
        router.metadata["trained_on_labels"] = {
            "feedback": args.feedback and redact_url(args.feedback),
            "battles": args.battles or [],
            "golden": args.golden or [],
        }
    router.save(args.out)
    print(_trained_line(args, router, battles))
    lopsided = _one_sided_warning(args, router, battles, calib)
    if lopsided:
        _say(lopsided)
    if not router.calibrated_thresholds:
        _say(
            f"note: {args.out} has no calibrated thresholds, so --strong-fraction (and the server's "
            f"router-NAME-30% model names) cannot use it yet; {_uncalibrated_hint(args.out)} "
            "(or give train --calibration-prompts)"
        )
    return 0


def _init_kind(init: str) -> str | None:
    """The router type of a warm start's init (its checkpoint's config); None when it names no readable checkpoint
    (training then says what is wrong with it)."""
    from routellm_core.checkpoint import read_config
    from routellm_core.routers.registry import PRETRAINED_DIR, pretrained_routers

    try:
        return read_config(PRETRAINED_DIR / init if init in pretrained_routers() else Path(init)).router
    except (RouteLLMError, OSError, ValueError):
        return None


def _thin_train_calibration(args: argparse.Namespace, thin: str) -> str:
    """Why ``train --calibration-prompts`` refused its sample, and the ways on (as ``calibrate --write`` does)."""
    return (
        f"train --calibration-prompts refused: {thin}; {args.out} was not written. "
        "Calibrate on more of your traffic (one prompt a line), leave --calibration-prompts out and calibrate "
        f"later (routellm calibrate --router {args.out} --prompts YOUR_PROMPTS.txt --write), or add --force to "
        "calibrate on these anyway"
    )


def _check_train_calibration(
    args: argparse.Namespace, router: Any, calib: list[str] | None, battles: list[Any]
) -> None:
    """Hold ``train``'s thresholds to the sample ``calibrate --write`` takes: a ``--calibration-prompts`` sample on
    which fractions share a threshold is refused (unless ``--force``; nothing is written); thresholds recalibrated
    on a thin sample of the store's or the battles' prompts get a note saying how to redo them.

    Raises:
        InvalidInputError: ``--calibration-prompts`` places two fractions at one threshold, without ``--force``.
    """
    if not router.calibrated_thresholds:
        return
    prompts = calib
    if prompts is None and router.metadata.get("calibrated_on_prompts"):  # a warm start's own fallback
        prompts = list(dict.fromkeys(b.prompt for b in battles))
    if not prompts:
        return
    thin = _thin_calibration(prompts, router.calibrated_thresholds)
    if not thin:
        return
    if args.calibration_prompts and not args.force:
        raise InvalidInputError(_thin_train_calibration(args, thin))
    if args.calibration_prompts:
        _say(f"warning: {thin}; these thresholds are rough")
        return
    whose = "the store's" if args.feedback else "the battles'"
    _say(
        f"note: the thresholds were recalibrated on {whose} prompts, which are thin ({thin}); they are rough: "
        f"recalibrate on more of your traffic with routellm calibrate --router {args.out} --prompts "
        "YOUR_PROMPTS.txt --write"
    )


def _check_reference_pair(battles: list[Any], strong: str, weak: str) -> None:
    """Training from scratch with no pair named scores the reference pair: refuse labels that never compare it.

    Raises:
        InvalidInputError: ``strong`` or ``weak`` is in no label, naming ``--strong-model`` / ``--weak-model``.
    """
    seen: dict[str, None] = {}
    for b in battles:
        names = [m for m, s in b.scores.items() if s is not None] if hasattr(b, "scores") else [b.model_a, b.model_b]
        seen.update(dict.fromkeys(names))
    missing = [m for m in (strong, weak) if m not in seen]
    if not missing:
        return
    models = list(seen)
    listed = ", ".join(models[:8]) + (f" and {len(models) - 8} more" if len(models) > 8 else "")
    raise InvalidInputError(
        f"no pair named, so train scores the reference pair {strong} / {weak}, but {' and '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} in none of the labels (they name {listed}): name the two models "
        "to route between with --strong-model and --weak-model"
    )


#: ``train`` warns when at least this share of the pair's decided battles favours one side...
ONE_SIDED_SHARE = 0.9
#: ...and there are at least this many of them.
ONE_SIDED_MIN_BATTLES = 5


def _one_sided_warning(
    args: argparse.Namespace, router: Any, battles: list[Any], calib: list[str] | None
) -> str | None:
    """A warning when (nearly) every kept battle of the router's pair says the same side won.

    Thumbs verdicts make such labels: ``good`` on a weak answer is stored as a tie, which mf and difficulty drop,
    and ``bad`` on a weak answer as a strong win, so the router learns that the strong model always wins and its
    win rates climb; a fixed threshold then sends most calls to strong, while ``--strong-fraction`` reads the
    thresholds recalibrated on the prompts.
    """
    strong, weak = router.strong_model, router.weak_model
    pair = [b for b in battles if getattr(b, "winner", None) and {b.model_a, b.model_b} == {strong, weak}]
    decided = [b for b in pair if b.winner != "tie"]
    if len(decided) < ONE_SIDED_MIN_BATTLES:
        return None
    strong_wins = sum((b.model_a if b.winner == "model_a" else b.model_b) == strong for b in decided)
    side, wins = ("strong", strong_wins) if 2 * strong_wins >= len(decided) else ("weak", len(decided) - strong_wins)
    if wins < ONE_SIDED_SHARE * len(decided):
        return None
    ties = len(pair) - len(decided)
    drops = router.name == "mf" or bool(args.init)  # as _trained_line says: these learn from wins and losses only
    dropped = f"; {ties} ties dropped" if ties and drops else ""
    kept = "kept" if drops else "decided"
    lines = [f"warning: {wins} of {len(decided)} {kept} battles say the {side} model won{dropped}"]
    if args.init and calib:
        from routellm_core.routers.registry import load_router

        before = float(load_router(args.init).predict_win_rate(calib).mean())
        after = float(router.predict_win_rate(calib).mean())
        lines.append(f"the mean win rate on the {len(calib)} calibration prompts went from {before:.2f} to {after:.2f}")
    many = "most" if side == "strong" else "few"
    if router.calibrated_thresholds:
        recalibrated = router.metadata.get("calibrated_on_prompts") or (len(calib) if calib else 0)
        how = (
            f"route with --strong-fraction (strong_fraction= in Python), whose thresholds this training "
            f"recalibrated on {recalibrated} prompts"
            if recalibrated
            else "route with --strong-fraction (strong_fraction= in Python) after recalibrating on your traffic: "
            + _uncalibrated_hint(args.out)
        )
    else:
        how = f"route with --strong-fraction once it has thresholds: {_uncalibrated_hint(args.out)}"
    lines.append(f"a fixed threshold will now send {many} calls to strong; {how}")
    if args.feedback and side == "strong" and any(getattr(b, "source", None) == "feedback:user" for b in decided):
        lines.append(
            "thumbs verdicts alone never make a weak win: 'good' on a weak answer is stored as a tie"
            + (f", which {router.name} drops," if drops else "")
            + " and 'bad' on a weak answer as a strong win; the verdict 'weak' (or a judge) records that the weak "
            "answer was the better one"
        )
    return ": ".join(lines[:2]) + "".join(f"\n  {line}" for line in lines[2:])


def _refit_combiner(args: argparse.Namespace) -> None:
    """``--combiner-out``: refit the escalation combiner from the store's signals and verdicts, print one line."""
    from routellm_core.escalation.checks import LogisticCombiner
    from routellm_core.learning.combiner import refit_combiner

    prior = LogisticCombiner.load(args.combiner_init) if args.combiner_init else None
    combiner, data = refit_combiner(_open_store(args.feedback), prior=prior)
    combiner.save(args.combiner_out)
    good = int(data.labels.sum())
    left = ", ".join(f"{n} {why}" for why, n in sorted(data.skipped.items())) or "none"
    start = args.combiner_init or "the shipped combiner"
    print(
        f"refitted the escalation combiner from {start} on {len(data)} labelled decisions ({good} good, "
        f"{len(data) - good} bad; decisions left out: {left}) -> {args.combiner_out}"
    )


def _trained_line(args: argparse.Namespace, router: Any, battles: list[Battle]) -> str:
    """What training used, saying what it dropped (ties for mf, other pairs for a warm start)."""
    from collections import Counter

    training = router.metadata.get("training")  # bert / causal_llm: the examples of their pair, ties included
    if isinstance(training, dict) and training.get("steps") == 0:
        return _untrained_line(args, router, training)
    seen = training["train_examples"] + training["validation_examples"] if isinstance(training, dict) else None
    used = router.metadata.get("n_battles", len(battles) if seen is None else seen)
    pair = {router.strong_model, router.weak_model}
    counted = [b for b in battles if {getattr(b, "model_a", None), getattr(b, "model_b", None)} == pair]
    # a warm start learns from its pair's battles only: ties among the others were ignored, not dropped
    ties = sum(getattr(b, "winner", None) == "tie" for b in (counted if args.init else battles))
    what = f"warm-started {router.name} from {args.init}" if args.init else f"trained {router.name}"
    parts = [f"{what} on {used} of {len(battles)} battles"]
    if "n_golden_labels" in router.metadata:  # difficulty: golden labels as they are, plus any battles
        parts = [f"{what} on {router.metadata['n_golden_labels']} golden labels and {used} battles"]
    if ties and (router.name == "mf" or args.init):
        parts.append(f"{ties} ties dropped ({router.name} learns from wins and losses only)")
    ignored = router.metadata.get("warm_start_ignored_battles")
    refit = router.metadata.get("profiles_refit") or {}
    profiles = [f"{model} ({done['labels']} labels)" for model, done in list(refit.items())[:5]]
    profiles += [f"{len(refit) - 5} more"] if len(refit) > 5 else []
    if ignored and refit:  # difficulty: they leave the pair's win rate as it was but refit the models they score
        parts.append(
            f"{ignored} battles not between {router.strong_model} and {router.weak_model} left the pair's win rate "
            f"as it was and refit the profiles of {', '.join(profiles)}"
        )
    elif ignored:
        parts.append(f"{ignored} battles not between {router.strong_model} and {router.weak_model} ignored")
    elif refit:
        parts.append(f"profiles refit: {', '.join(profiles)}")
    if args.init and not used:
        parts.append("no decided battle of its pair, so the pair scores like its init")
        pairs = Counter(tuple(sorted((b.model_a, b.model_b))) for b in battles if hasattr(b, "model_a"))
        own = tuple(sorted((router.strong_model, router.weak_model)))
        if ignored and args.strong_model is None and pairs and own not in pairs:  # only other pairs, none named
            a, b = pairs.most_common(1)[0][0]
            parts.append(f"to learn from your labels ({a} / {b}), name that pair: --strong-model and --weak-model")
    if router.metadata.get("calibrated_on_prompts"):
        parts.append(f"thresholds recalibrated on {router.metadata['calibrated_on_prompts']} prompts")
    return "; ".join(parts) + f" -> {args.out}"


def _untrained_line(args: argparse.Namespace, router: Any, training: dict[str, Any]) -> str:
    """The result line of a bert / causal_llm ``train`` that ran no optimizer step: a warning, not "trained"."""
    causes = [f"{key} is 0" for key in ("epochs", "max_steps") if getattr(router, key, None) == 0]
    why = " and ".join(causes) or "its parameters leave no step to run"
    return (
        f"warning: nothing was trained: {why}, so {router.name} ran no training step on the "
        f"{training.get('train_examples', 0)} battles of its pair and was saved untrained; to train it, give "
        f"--params with epochs of 1 or more and max_steps unset or 1 or more -> {args.out}"
    )


def _load(args: argparse.Namespace):
    """``--router``: a shipped router, a checkpoint folder or a registry name; an unknown one says which it takes."""
    from routellm_core.errors import NotFittedError, UnknownRouterError
    from routellm_core.routers.registry import available_routers, load_router, pretrained_routers

    try:
        router = load_router(args.router)
    except UnknownRouterError:
        if Path(args.router).is_dir():  # a checkpoint of an unknown router type: its own message says so
            raise
        raise UnknownRouterError(
            f"unknown router {args.router!r}: --router takes a registry name ({', '.join(available_routers())}), "
            f"a shipped router ({', '.join(pretrained_routers())}) or a checkpoint folder (one that "
            "`routellm train --out DIR` wrote)"
        ) from None
    if not router._is_fitted():  # a registry name builds an untrained router: nothing to score with
        raise NotFittedError(_untrained_message(args.router, router.name))
    return router


def _untrained_message(name: str, kind: str) -> str:
    """What a CLI user does with ``--router <registry name>``: train one into a folder, or use a shipped one."""
    from routellm_core.routers.registry import PRETRAINED_DIR, pretrained_routers

    shipped = {}
    for base in pretrained_routers():
        try:
            shipped[base] = json.loads((PRETRAINED_DIR / base / "config.json").read_text(encoding="utf-8"))["router"]
        except (OSError, ValueError, KeyError):
            continue
    same = [base for base, router in shipped.items() if router == kind]
    warm = (
        f", or warm-start one from the shipped {same[0]!r} on your labels: routellm train --init {same[0]} "
        "--feedback feedback.db --out my_router"
        if same
        else ""
    )
    listed = ", ".join(f"{base} ({router})" for base, router in shipped.items())
    return (
        f"--router {name} names the router type {kind!r}, which is untrained here: give a shipped router ({listed}) "
        f"or the checkpoint folder of one you trained: routellm train --router {kind} --battles YOUR_BATTLES.jsonl "
        f"--out my_router{warm}; then --router my_router"
    )


#: ``calibrate --write`` stores a table only from at least this many prompts (without ``--force``).
MIN_WRITE_PROMPTS = 50


def _check_write_target(name: str) -> None:
    """``calibrate --write`` writes into a checkpoint folder of yours: refuse a shipped router or a registry name.

    Raises:
        InvalidInputError: ``name`` loads a shipped router (a folder written under that name would never be read)
            or the copy inside the package, or it is a registry name with no folder.
    """
    from routellm_core.routers.registry import PRETRAINED_DIR, pretrained_routers

    folder = Path(name)
    inside = folder.is_dir() and PRETRAINED_DIR.resolve() in folder.resolve().parents
    if name in pretrained_routers() or inside:
        base = name if name in pretrained_routers() else folder.resolve().name
        why = (
            "the name always loads the copy inside the package, so thresholds written to a folder of that name "
            "would never be used"
            if not inside
            else "it is the copy inside the installed package"
        )
        local = f" (the folder {name} here is --router ./{name})" if not inside and folder.is_dir() else ""
        raise InvalidInputError(
            f"--write cannot change the shipped router {name!r}: {why}{local}; copy it first and calibrate the "
            f"copy: routellm train --init {base} --out my_router (or cp -r {PRETRAINED_DIR / base} my_router), "
            "then routellm calibrate --router my_router --prompts ... --write"
        )
    if not folder.is_dir():
        raise InvalidInputError(
            f"--write stores thresholds in a checkpoint folder (one that routellm train --out DIR wrote), and "
            f"{name!r} is a registry name with no folder"
        )


def _thin_calibration(prompts: list[str], table: dict[str, float]) -> str | None:
    """Why ``prompts`` cannot place the calibration points of ``table`` (too few, or fractions sharing a
    threshold), or ``None`` when they can."""
    shared: dict[float, list[str]] = {}
    for key, threshold in table.items():
        shared.setdefault(threshold, []).append(key)
    same = next(((t, keys) for t, keys in shared.items() if len(keys) > 1), None)
    collapse = ""
    if same:
        every = "both" if len(same[1]) == 2 else "all"
        collapse = (
            f"fractions {', '.join(same[1])} {every} map to the same threshold {same[0]:.4f}, so --strong-fraction "
            "could not tell them apart"
        )
    n = len(prompts)
    if n < MIN_WRITE_PROMPTS:
        detail = f" (on them {collapse})" if collapse else ""
        return (
            f"{n} prompt{'s' if n != 1 else ''} given, {MIN_WRITE_PROMPTS} or more needed to place the "
            f"calibration points{detail}"
        )
    if collapse:
        return f"on these {n} prompts {collapse} (too many of them score the same)"
    return None


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from routellm_core.evaluation.calibration import calibrate_thresholds, strong_call_fraction

    router = _load(args)
    if args.threshold is not None and (args.write or args.force):
        raise InvalidInputError(
            f"--threshold only reports the strong-call fraction of one threshold and writes nothing; "
            f"--{'write' if args.write else 'force'} belongs to calibrating --fractions: drop --threshold to "
            "calibrate and store them"
        )
    if args.write:
        _check_write_target(args.router)
    if args.force and not args.write:
        raise InvalidInputError("--force only lets --write store thresholds from a thin sample: give --write too")
    prompts = _read_prompts(args.prompts)
    if args.threshold is not None:
        print(
            json.dumps(
                {"threshold": args.threshold, "strong_fraction": strong_call_fraction(router, prompts, args.threshold)}
            )
        )
        return 0
    try:
        fractions = [float(f) for f in args.fractions.split(",")]
    except ValueError:
        raise InvalidInputError(
            f"--fractions must be comma-separated numbers in [0, 1], got {args.fractions!r}"
        ) from None
    table = calibrate_thresholds(router, prompts, fractions)
    thin = _thin_calibration(prompts, router.calibrated_thresholds)  # the whole table --write would store
    if thin and args.write and not args.force:
        raise InvalidInputError(
            f"calibrate --write refused: {thin}; {args.router} is left as it was. Calibrate on more of your "
            "traffic (one prompt a line), or add --force to write these thresholds anyway"
        )
    print(json.dumps(table, indent=2))
    if thin:
        print(f"warning: {thin}; these thresholds are rough", file=sys.stderr)
    if not args.write and not thin and Path(args.router).is_dir():
        print(f"not written: add --write to store these thresholds in {args.router}", file=sys.stderr)
    if args.write:
        router.save(args.router)
        kept = sorted(set(router.calibrated_thresholds) - set(table), key=float)
        also = f" (its other points {', '.join(kept)} recalibrated on the same prompts)" if kept else ""
        print(f"wrote thresholds into {args.router}{also}", file=sys.stderr)
    return 0


def _cmd_route(args: argparse.Namespace) -> int:
    from routellm_core.routing.policy import RoutingPolicy

    if args.models is not None:
        return _route_ladder(args)
    ladder_only = {
        "--objective": args.objective,
        "--prices": args.prices,
        "--prior": args.priors,
        "--output-tokens": args.output_tokens,
    }
    given = [option for option, value in ladder_only.items() if value is not None]
    if given:
        raise InvalidInputError(
            f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to routing among priced models: give "
            f"--model NAME at least twice (or drop {'it' if len(given) == 1 else 'them'} to route between the "
            "router's two models)"
        )
    router = _load(args)
    if args.strong_fraction is not None and not router.calibrated_thresholds:
        hint = (
            _uncalibrated_hint(args.router)
            if Path(args.router).is_dir()
            else "a registry name has no checkpoint folder to store thresholds in"
        )
        raise CheckpointError(
            f"router {args.router} has no calibrated thresholds, so --strong-fraction cannot be resolved; "
            f"{hint} (or route with --threshold)"
        )
    policy = RoutingPolicy(
        router, threshold=args.threshold, strong_fraction=args.strong_fraction, name=str(args.router)
    )
    prompts = list(args.prompts) + (_read_prompts(args.file) if args.file else [])
    for prompt, decision in zip(prompts, policy.decide_batch(prompts)):
        print(json.dumps({"prompt": prompt[:80], **decision.as_dict()}, ensure_ascii=False))
    return 0


def _route_ladder(args: argparse.Namespace) -> int:
    """``route --model ...``: the model each prompt would go to among N priced models, as the record's ``ladder``
    entry (no model is called). Under ``budget=`` the controller runs over the prompts in order, as a fresh server
    would on that traffic, on expected costs (no call reports what it really cost).

    Raises:
        InvalidInputError: A two-model option, fewer than two models or a repeated one, a ``--prices`` /
            ``--prior`` name that is no ``--model``, a model without a price.
        UnknownModelError: A model the router has no profile for and no ``--prior``.
    """
    from routellm_core._cli_args import pairs_once
    from routellm_core.data.prices import price_of, unpriced_hint
    from routellm_core.routers.profiles import ModelPrior, UnknownModelError
    from routellm_core.routing.engine import RoutingOptions
    from routellm_core.routing.ladder import LadderEngine
    from routellm_core.routing.policy import RoutingPolicy
    from routellm_core.routing.text import prompt_routing_text

    for option, value in (("--threshold", args.threshold), ("--strong-fraction", args.strong_fraction)):
        if value is not None:
            raise InvalidInputError(
                f"{option} chooses between two models; with --model give --objective instead (margin=D, "
                "max_cost=USD, cost_weight=W or budget=USD)"
            )
    names: list[str] = args.models
    if len(names) < 2:
        raise InvalidInputError(f"--model names the models to route among: give at least two, got {names}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidInputError(f"--model names {repeated} more than once; give each model once")
    prices = pairs_once("--prices", args.prices or [])
    priors = pairs_once("--prior", args.priors or [])
    for option, table in (("--prices", prices), ("--prior", priors)):
        unknown = [name for name in table if name not in names]
        if unknown:
            raise InvalidInputError(
                f"{option} names {unknown}, which no --model names (models: {names}): key it by a --model NAME"
            )
    unpriced = [name for name in names if price_of(name, prices) is None]
    if unpriced:
        raise InvalidInputError(
            f"no price for {unpriced}{unpriced_hint(unpriced, prices)}: the shipped price table does not know them; "
            "give --prices NAME=IN,OUT (USD per million input and output tokens) for each"
        )
    prompts = list(args.prompts) + (_read_prompts(args.file) if args.file else [])
    if not prompts:
        raise InvalidInputError("no prompt to route: give prompts as arguments or --file")
    texts = [prompt_routing_text(prompt) for prompt in prompts]  # a blank prompt is refused before the router loads
    router = _load(args)
    if not hasattr(router, "predict_success"):
        raise InvalidInputError(
            f"--model needs a router that predicts each model's success (the 'difficulty' router, shipped as "
            f"'default'); --router {args.router} only compares two models"
        )
    for name in names:
        if name not in priors:
            try:
                router.resolve_model(name)
            except UnknownModelError as exc:
                raise UnknownModelError(_unknown_model_message(args.router, router, name, exc)) from None
    options = RoutingOptions(
        router=RoutingPolicy(router, name=str(args.router)),
        objective=args.objective,
        prices=prices or None,
        priors={name: ModelPrior.parse(prior, name) for name, prior in priors.items()} or None,
    )
    assumed = {} if args.output_tokens is None else {"output_tokens": args.output_tokens}
    engine = LadderEngine(options, names, owner="routellm route", **assumed)
    chosen: dict[str, int] = dict.fromkeys(names, 0)
    spent = 0.0
    for prompt, text in zip(prompts, texts, strict=True):
        choice = engine.choice(text)
        chosen[choice.chosen] += 1
        spent += choice.expected_cost
        print(json.dumps({"prompt": prompt[:80], "ladder": choice.as_dict()}, ensure_ascii=False))
    counts = ", ".join(f"{name} {n}" for name, n in chosen.items())
    budget = ""
    if engine.objective.kind == "budget":
        budget = f" (budget {engine.objective.value:g})"
        one_model = sum(n > 0 for n in chosen.values()) == 1
        if one_model and 1000 * spent / len(prompts) > engine.objective.value * 1.05:  # overspent on the cheapest
            budget = f" (budget {engine.objective.value:g}: below what the cheapest model costs on these prompts)"
    print(
        f"routellm route: {len(prompts)} prompt{'s' if len(prompts) != 1 else ''} under {engine.objective}: chosen "
        f"{counts}; mean expected cost {1000 * spent / len(prompts):.4g} USD per 1,000 requests{budget}",
        file=sys.stderr,
    )
    return 0


def _unknown_model_message(router_name: str, router: Any, name: str, exc: Exception) -> str:
    """``route --model``'s words for a model the router has no profile for: the router's finding (its message up to
    its Python advice), then how to state a prior on the command line."""
    from routellm_core.routers.profiles import close_model

    text = str(exc)  # "the difficulty router has no profile for model '...' (it profiles N models, e.g. [...]); ..."
    end = text.find("); ")
    finding = text[: end + 1] if end >= 0 else text.partition("; ")[0]
    close = close_model(name, list(getattr(router, "models_", ())))
    guess = f"did you mean {close!r}? Otherwise " if close is not None else ""
    return (
        f"{finding}; {guess}state a prior: --prior {name}=like:<a profiled model> or --prior "
        f"{name}=score:<fraction in (0, 1)> (a public benchmark score), or warm-start the router on labels that "
        f"score it (routellm train --feedback STORE --init {router_name} --out DIR, then --router DIR)"
    )


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from routellm_core.data import load_benchmark, load_benchmark_file
    from routellm_core.evaluation import metrics as evaluation

    router = _load(args)
    warning = None
    if args.golden:  # scored on the router's own pair unless one is named
        from routellm_core.routers.base import STRONG_REFERENCE, WEAK_REFERENCE

        strong = args.strong_model or getattr(router, "strong_model", None) or STRONG_REFERENCE
        weak = args.weak_model or getattr(router, "weak_model", None) or WEAK_REFERENCE
        bench = load_benchmark_file(args.golden, strong_model=strong, weak_model=weak)
    else:
        bench = load_benchmark(args.benchmark or "mt_bench")
        warning = _in_sample_warning(args, router, args.benchmark or "mt_bench")
        if warning:
            print(warning, file=sys.stderr)
    result = evaluation.evaluate_router(router, bench, show_progress=True)
    baseline = evaluation.random_router_result(bench)
    oracle = evaluation.evaluate(evaluation.oracle_scores(bench), bench)
    rows = {"router": result, "random": baseline, "oracle": oracle}
    print(f"{bench.name}: {len(bench.prompts)} prompts")
    for name, r in rows.items():
        note = "  (in-sample: trained on this benchmark)" if warning and name == "router" else ""
        print(f"  {name:8s} APGR {r.apgr:.3f}  CPT50 {r.cpt50:.1%}  CPT80 {r.cpt80:.1%}{note}")
    if args.plot:
        curves = {args.router: result.curve, "random": baseline.curve, "oracle": oracle.curve}
        evaluation.plot_cost_quality(curves, bench, args.plot)
        print(f"plot -> {args.plot}")
    return 0


def _in_sample_warning(args: argparse.Namespace, router: Any, benchmark: str) -> str | None:
    """A warning when the router was trained on the benchmark it is scored on (in-sample), with the held-out
    figure its checkpoint records, if any, and how to score one held out."""
    sources = router.metadata.get("sources") or []
    if benchmark not in sources:
        return None
    default = " (the default benchmark: no --benchmark given)" if args.benchmark is None else ""
    lines = [
        f"warning: scoring {benchmark}{default}, which {args.router} was trained on (its sources: "
        f"{', '.join(sources)}): the score below is in-sample, higher than on prompts it never saw."
    ]
    held = (router.metadata.get("evaluation_leave_one_out") or {}).get(benchmark)
    rows = {r.get("name"): r.get("apgr") for r in (held or {}).get("results", []) if isinstance(r, dict)}
    if rows.get("router") is not None:
        baselines = ", ".join(f"{name} {rows[name]:.3f}" for name in ("length", "random") if rows.get(name) is not None)
        lines.append(
            f"  held out (its recipe retrained without {benchmark}, recorded in the checkpoint): APGR "
            f"{rows['router']:.3f} ({baselines})."
        )
    others = ",".join(s for s in sources if s != benchmark)
    lines.append(
        f"  To score a router held out, train one without it and evaluate that: routellm train --router {router.name} "
        f"--sources {others} --exclude {benchmark} --out no_{benchmark} && routellm evaluate --router no_{benchmark} "
        f"--benchmark {benchmark}"
    )
    return "\n".join(lines)


def _cmd_report(args: argparse.Namespace) -> int:
    from routellm_core.learning.report import traffic_report
    from routellm_core.routers.registry import available_routers

    if args.router in available_routers() and not Path(args.router).is_dir():
        _load(args)  # an untrained registry router is refused with what to do
    labels, pair = _labelled(args)
    strong, weak = (args.strong_model, args.weak_model) if args.strong_model or args.weak_model else (None, None)
    if strong is None and pair is not None:
        strong, weak = pair
    report = traffic_report(
        args.router,
        labels,
        strong_model=strong,
        weak_model=weak,
        folds=args.folds,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
    )
    print(report.to_markdown())
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"json -> {args.json}")
    if args.plot and report.rows:
        print(f"plot -> {report.plot(args.plot)}")
    elif args.plot:
        print(f"plot: {args.plot} not written (no curves: the strong model is not preferred on these labels)")
    return 0


def _positive_int(text: str) -> int:
    """``--output-tokens``: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of tokens >= 1, got {text!r:.40}")
    return value


def _add_ladder_arguments(parser: argparse.ArgumentParser) -> None:
    """``route``'s options for routing among N priced models (the forms of ``routellm serve``'s)."""
    from routellm_core._cli_args import argument_type
    from routellm_core.routing.objective import Objective
    from routellm_core.server.models import parse_prices, parse_prior

    auto = parser.add_argument_group(
        "among priced models (no model is called: each prompt prints the record's ladder entry)"
    )
    auto.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="NAME",
        help="a model to route among (repeatable, at least two), by the name it is priced and profiled by",
    )
    auto.add_argument(
        "--objective",
        type=argument_type(Objective.parse),
        metavar="KIND=VALUE[,window=N]",
        help="margin=D (default margin=0.05), max_cost=USD (per request), cost_weight=W, budget=USD (per 1,000 "
        "requests: the controller run over the prompts in order, as a fresh server would), or shares=NAME:SHARE;... "
        "(the best predicted model, each named one chosen for at most its share: shares=gpt-4o:5%%;llama3:70b:0.3)",
    )
    auto.add_argument(
        "--prices",
        action="append",
        type=argument_type(parse_prices),
        metavar="NAME=IN,OUT",
        help="USD per million input and output tokens of a --model (repeatable; default: the shipped price table)",
    )
    auto.add_argument(
        "--prior",
        action="append",
        dest="priors",
        type=argument_type(parse_prior),
        metavar="NAME=like:MODEL|NAME=score:F",
        help="for a --model the router has no profile for: a profiled model's profile, or a benchmark score in (0, 1)",
    )
    auto.add_argument(
        "--output-tokens",
        type=_positive_int,
        metavar="N",
        help="the answer length every model's expected cost assumes (default: 300, the ladder's before any report)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="routellm", description=__doc__, allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a router from shared sources and/or your own data", allow_abbrev=False)
    t.add_argument(
        "--router",
        help="registry name: mf, difficulty, sw_ranking, bert, causal_llm (default: mf, or the --init router's type)",
    )
    t.add_argument(
        "--sources", help="comma list of shared sources: mmlu,gsm8k,mt_bench,dcrouter,mmlu_pro,arena,crux,math_l5"
    )
    t.add_argument("--exclude", help="benchmarks to hold out (their prompts are removed from all sources)")
    t.add_argument("--battles", action="append", help="your battles file (JSONL/CSV); repeatable")
    t.add_argument("--golden", action="append", help="your golden-label file (JSONL/CSV); repeatable")
    t.add_argument(
        "--feedback",
        help="a feedback store (SQLite file or postgresql:// URL) of labelled traffic; its prompts calibrate",
    )
    t.add_argument(
        "--init",
        help="warm start from this router: a shipped one (default: difficulty; fast: mf) or a checkpoint folder of "
        "the same type as --router",
    )
    t.add_argument("--strong-model", help="strong model of the pair (default: the store's pair, the init's, or GPT-4)")
    t.add_argument("--weak-model", help="weak model of the pair (default: the store's, the init's, or Mixtral)")
    t.add_argument("--params", help="router parameters as JSON, e.g. '{\"epochs\": 20}'")
    t.add_argument("--calibration-prompts", help="prompts file to calibrate thresholds on (default: the store's)")
    t.add_argument(
        "--force",
        action="store_true",
        help=f"calibrate on --calibration-prompts even from fewer than {MIN_WRITE_PROMPTS} prompts or when "
        "fractions share a threshold (refused without it, as calibrate --write refuses)",
    )
    t.add_argument("--out", required=True, help="checkpoint folder to write")
    t.add_argument(
        "--combiner-out",
        help="also refit the escalation combiner (check='combined') from --feedback's recorded signals and verdicts, "
        "warm-started from the shipped one, into this folder",
    )
    t.add_argument("--combiner-init", help="with --combiner-out: start from this combiner folder instead")
    t.set_defaults(func=_cmd_train)

    c = sub.add_parser(
        "calibrate", help="threshold for a target strong-call fraction on your prompts", allow_abbrev=False
    )
    c.add_argument(
        "--router",
        default="default",
        help="a shipped router (default, fast), a checkpoint folder (routellm train --out DIR) or a registry name",
    )
    c.add_argument("--prompts", required=True, help="prompts file: .txt (one per line), .jsonl or .csv")
    c.add_argument("--fractions", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9")
    c.add_argument("--threshold", type=float, help="instead: report the strong-call fraction of this threshold")
    c.add_argument(
        "--write",
        action="store_true",
        help="store the thresholds in the checkpoint folder (not a shipped router: copy it first with "
        "routellm train --init default --out my_router)",
    )
    c.add_argument(
        "--force",
        action="store_true",
        help=f"with --write: store them even from fewer than {MIN_WRITE_PROMPTS} prompts or when fractions share a "
        "threshold",
    )
    c.set_defaults(func=_cmd_calibrate)

    r = sub.add_parser("route", help="route prompts and print each decision as JSON", allow_abbrev=False)
    r.add_argument("prompts", nargs="*")
    r.add_argument("--file", help="prompts file")
    r.add_argument("--router", default="default")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float)
    g.add_argument("--strong-fraction", type=float)
    _add_ladder_arguments(r)
    r.set_defaults(func=_cmd_route)

    e = sub.add_parser(
        "evaluate", help="APGR / CPT against random and oracle on a benchmark or your file", allow_abbrev=False
    )
    e.add_argument("--router", default="default")
    e.add_argument(
        "--benchmark",
        choices=["mt_bench", "mmlu", "gsm8k", "crux", "math_l5"],
        help="shared benchmark to score on (default: mt_bench; a router trained on it is scored in-sample, said so)",
    )
    e.add_argument("--golden", help="your golden-label file instead of a shared benchmark")
    e.add_argument("--strong-model", help="with --golden: the strong model of the file (default: the router's pair)")
    e.add_argument("--weak-model", help="with --golden: the weak model of the file (default: the router's pair)")
    e.add_argument("--plot", help="write the cost-quality curve PNG here")
    e.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "report", help="is routing worth it on my traffic? APGR / CPT with intervals and a verdict", allow_abbrev=False
    )
    p.add_argument("--router", default="default", help="shipped name or checkpoint folder")
    p.add_argument("--feedback", help="a feedback store (SQLite file or postgresql:// URL) of labelled traffic")
    p.add_argument("--battles", help="instead: a battles file (JSONL/CSV)")
    p.add_argument("--golden", help="instead: a golden-label file (JSONL/CSV)")
    p.add_argument("--strong-model", help="strong model of the pair (default: the store's pair or the router's)")
    p.add_argument("--weak-model", help="weak model of the pair")
    p.add_argument("--folds", type=int, default=5, help="folds of the warm-start row (0: none)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", help="write the cost-quality curves PNG here")
    p.add_argument("--json", help="also write the figures as JSON here")
    p.set_defaults(func=_cmd_report)

    from routellm_core.server.cli import add_serve_parser, add_ui_parser  # argparse only: FastAPI comes when run

    add_serve_parser(sub)
    add_ui_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 with a one-line message on a RouteLLMError)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RouteLLMError as exc:
        print(f"routellm: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. an output folder that cannot be written
        print(f"routellm: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
