"""The difficulty router: a two-trait item-response model over every scored model, on the static embedder.

Golden labels from many models say more than one pair's wins: how many models fail a prompt is its difficulty,
and how each model's chance of success moves with difficulty and length is its profile. The router learns both:

1. **Difficulty** ``d(q)``: a ridge regression from the prompt's static embedding and a few cheap prompt features
   (:func:`prompt_features`: length, code, math, digits, questions, list items, lettered options, non-ASCII) to
   its difficulty, i.e. how badly the scored models did on it, standardised within each source. Sources are
   weighted equally and the fit is *within* sources (each source's mean is removed from features and targets), so
   it learns which prompts are harder than their neighbours, not which dataset is harder than another.
2. **Per-model profile**: for every model ``m``, a logistic regression ``P(m right on q) = sigmoid(a_m + b_m·ℓ(q)
   + c_m·d(q))`` on the standardised log length ``ℓ`` and difficulty ``d`` (each source equally weighted within
   the model's data): a two-trait item-response model.

The win rate of the reference pair is ``P(strong wins) + P(tie) / 2 = 1/2 + (P(strong right) - P(weak right)) / 2``
(independent answers): it orders prompts by the expected quality a strong call buys, which is what routing needs.
Scoring is one static embedding, a few regular expressions and two dot products: well under a millisecond.

**Warm start** (``fit(battles, init=router)``): your labelled battles between the router's pair refit the pair's
logit, ``z = a * logit(w_init) + x · δ + c`` over the standardised features ``x`` (see
:mod:`routellm_core.routers.warm_start`), stored next to the profiles as the pair's correction: with no label the
result scores exactly like the init, and few labels move it little. The same labels also warm-start the per-model
profiles: every model they score is refitted by penalised logistic regression pulled towards its starting profile
(the init's own, an alias's, a stated :class:`~routellm_core.routers.profiles.ModelPrior`, or for a model nobody
knows the mean profile, held more loosely), so ``router.models`` lists every labelled model.

**Per-model predictions** (price ladders): :meth:`DifficultyRouter.predict_success` gives ``P(model answers well)``
for a batch of prompts and any list of models, names resolved through
:func:`~routellm_core.routers.profiles.resolve_model` (provider prefixes, dated versions); an unknown model needs a
prior (:meth:`DifficultyRouter.add_model`).
"""

from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from routellm_core.checkpoint import CheckpointConfig, load_tensors
from routellm_core.data.records import Battle, GoldenLabel, pair_battles
from routellm_core.embedding.embedders import Embedder, check_texts, embedder_from_name, valid_unicode
from routellm_core.embedding.static import STATIC_NAME
from routellm_core.errors import (
    CheckpointError,
    EmbeddingError,
    InvalidInputError,
    NotFittedError,
    ScoringError,
    TrainingDataError,
)
from routellm_core.routers import warm_start as warm
from routellm_core.routers.base import WinRateModel
from routellm_core.routers.profiles import (
    ModelPrior,
    UnknownModelError,
    close_model,
    labelled_profile,
    profile_names,
    resolve_model,
)

logger = logging.getLogger(__name__)

# ---- prompt features ---------------------------------------------------------------------------------------
_CODE = re.compile(r"(?m)^(?:\s{2,}|\t)\S|def |return |import |[{};]|==|\w\(\w*\)|```")
_MATH = re.compile(r"\$|\\frac|\\sqrt|\^|\d+\s*[-+*/=]\s*\d+|\\[a-z]+\{")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_DIGITS = "0123456789"
_ITEM = re.compile(r"(?m)^\s*(?:\d+[.)]|[-*•])\s")
_OPTION = re.compile(r"(?m)^\s*[A-J][.)]\s")
#: Characters of a prompt the features read: about what the static embedder reads (its first 512 tokens are
#: ~2,000-2,500 characters of English), so a prompt routes like its start, however long it is; the length feature
#: saturates there.
MAX_FEATURE_CHARS = 2048
#: The prompt features, in :func:`prompt_features` column order (checked against a checkpoint's list on load).
FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "log_lines",
    "code_markers",
    "math_markers",
    "digit_share",
    "question_marks",
    "list_items",
    "lettered_options",
    "non_ascii_share",
)
#: The two traits of the per-model profile.
TRAIT_NAMES: tuple[str, ...] = ("log_chars", "difficulty")
#: ``traits`` choices: which of :data:`TRAIT_NAMES` the profiles use (the other's slope stays 0).
Traits = Literal["length+difficulty", "difficulty", "length"]


def prompt_features(texts: Sequence[str]) -> np.ndarray:
    """Cheap, deterministic prompt features (:data:`FEATURE_NAMES`), one row per text.

    Counts are ``log(1 + count)``; shares are fractions of the characters (digits are ASCII ``0-9``). Only the first
    :data:`MAX_FEATURE_CHARS` characters are read.
    """
    out = np.zeros((len(texts), len(FEATURE_NAMES)), dtype=np.float64)
    for i, full in enumerate(texts):
        text = full[:MAX_FEATURE_CHARS]
        n = max(len(text), 1)
        out[i] = (
            math.log1p(len(text)),
            math.log1p(len(text.split())),
            math.log1p(text.count("\n")),
            math.log1p(len(_CODE.findall(text))),
            math.log1p(len(_MATH.findall(text))),
            sum(text.count(d) for d in _DIGITS) / n,
            math.log1p(text.count("?")),
            math.log1p(len(_ITEM.findall(text))),
            math.log1p(len(_OPTION.findall(text))),
            (0 if text.isascii() else len(_NON_ASCII.findall(text))) / n,
        )
    return out


# ---- training data -------------------------------------------------------------------------------------------
class _Observations:
    """Golden labels and battles in index form: unique prompts, and per-model (prompt, score, source) rows."""

    def __init__(self, records: Sequence[Battle | GoldenLabel]) -> None:
        self.prompts: list[str] = []
        self._index: dict[str, int] = {}
        self.labels: list[tuple[int, str, dict[str, float]]] = []  # (prompt index, source, scores in [0, 1])
        rows: list[tuple[int, str, float, str]] = []  # (prompt index, model, score, source)
        golden = [r for r in records if isinstance(r, GoldenLabel)]
        battles = [r for r in records if isinstance(r, Battle)]
        other = len(records) - len(golden) - len(battles)
        if other:
            raise TrainingDataError(
                f"the difficulty router trains on Battle and GoldenLabel records; got {other} others"
            )
        for source, labels in _by_source(golden).items():
            for label, scores in zip(labels, _unit_scores(labels, source)):
                i = self._prompt(label.prompt)
                self.labels.append((i, source, scores))
                rows.extend((i, _model_name(m, label.prompt), s, source) for m, s in scores.items())
        for b in battles:  # a decided battle: the winner answered well, the loser did not; ties say nothing here
            if b.winner == "tie":
                continue
            i, source = self._prompt(b.prompt), b.source or ""
            win, lose = (b.model_a, b.model_b) if b.winner == "model_a" else (b.model_b, b.model_a)
            rows += [(i, _model_name(win, b.prompt), 1.0, source), (i, _model_name(lose, b.prompt), 0.0, source)]
        self.rows = rows
        self.n_golden, self.n_battles = len(golden), len(battles)

    def _prompt(self, prompt: str) -> int:
        i = self._index.get(prompt)
        if i is None:
            i = self._index[prompt] = len(self.prompts)
            self.prompts.append(prompt)
        return i


def _model_name(name: str, prompt: str) -> str:
    """A record's model name without surrounding whitespace; a blank one is refused (it names no model)."""
    if not name.strip():
        raise TrainingDataError(
            f"a training record names a model {name!r}, which is blank (prompt {prompt[:60]!r}): every score and "
            "battle must name the model that answered"
        )
    return name.strip()


def _by_source(labels: Sequence[GoldenLabel]) -> dict[str, list[GoldenLabel]]:
    out: dict[str, list[GoldenLabel]] = defaultdict(list)
    for label in labels:
        out[label.source or ""].append(label)
    return dict(out)


def _unit_scores(labels: Sequence[GoldenLabel], source: str) -> list[dict[str, float]]:
    """Each label's scores in [0, 1]: as they are when the whole source is in [0, 1], else min-max scaled over
    the source (judge grades such as MT Bench's 1-10), with a warning when most of its scores were in [0, 1] (a
    stray 1.5 among 0/1 correctness would otherwise silently turn every right answer into 0.67)."""
    values = np.array([s for label in labels for s in label.scores.values()], dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0.0 and hi <= 1.0:
        return [dict(label.scores) for label in labels]
    if hi == lo:
        raise TrainingDataError(f"source {source!r}: every score is {lo}, outside [0, 1]; nothing to learn")
    outside = int(np.sum((values < 0.0) | (values > 1.0)))
    if 2 * outside > len(values):  # a grade scale (MT Bench's 1-10): scaled as documented, nothing to say
        return [{m: (s - lo) / (hi - lo) for m, s in label.scores.items()} for label in labels]
    logger.warning(
        "source %r: %d of %d scores are outside [0, 1] (from %g to %g), so every score of the source is min-max "
        "scaled to [0, 1] (as a judge's 1-10 grades are): a 1 there counts %.3g; give correctness as 0/1 or "
        "fractions, or such grades in a source of their own",
        source,
        outside,
        len(values),
        lo,
        hi,
        (1.0 - lo) / (hi - lo),
    )
    return [{m: (s - lo) / (hi - lo) for m, s in label.scores.items()} for label in labels]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for any z


#: Largest weight a checkpoint's warm-start correction may hold (fitted ones are of order 10).
MAX_CORRECTION = 1e4
#: Win rates are clipped this far from 0 and 1 before their logit is taken.
_LOGIT_EPS = 1e-6


#: Profiled models an unknown model's error names first, as the likeliest ``like=`` priors (those the router has).
_WELL_KNOWN = (
    "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18",
    "o1-preview-2024-09-12",
    "claude-3-5-sonnet-20240620",
    "gemini-1.5-pro",
    "Meta-Llama-3.1-70B-Instruct",
    "Meta-Llama-3.1-8B-Instruct",
)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _LOGIT_EPS, 1.0 - _LOGIT_EPS)
    return np.log(p) - np.log1p(-p)


# ---- the router ----------------------------------------------------------------------------------------------
class DifficultyRouter(WinRateModel):
    """Two-trait item-response router: prompt difficulty from the static embedding, a profile per model.

    See the module docstring for the model. Training takes golden labels (per-model scores: 0/1 correctness,
    fractions, or judge grades, which are min-max scaled per source) and, optionally, battles: a decided battle
    counts as one right answer (the winner) and one wrong answer (the loser) in the per-model profiles; ties are
    skipped. Difficulty itself is learned from golden labels only (it needs several models' scores on a prompt),
    so at least some are required.

    Args:
        alpha: Ridge penalty of the difficulty regression (features standardised).
        slope_l2: L2 penalty on each model's two trait slopes (the data's weights sum to 1 per model).
        min_models: Scored models a golden label needs to count towards difficulty.
        traits: The traits of the per-model profiles: both (the shipped router), or one of them (ablations:
            ``"length"`` is a length heuristic with a learned slope per model).
        use_prompt_features: Regress difficulty on the prompt features as well as the embedding (``False``: the
            embedding alone; the length trait still reads the prompt's length).
        warm_prior: Warm start only (``fit(..., init=router)``): L2 precision of the correction ``δ`` over the
            standardised features (scaled to unit norm); larger stays closer to the init. Ten times mf's: the
            shipped default's logits spread about 2.4 times less than ``fast``'s (sd 0.10 vs 0.24 on GSM8K), so
            the same correction would reorder its prompts far more.
        warm_scale_prior: Warm start only: L2 precision of the init logit's scale ``a`` around 1.
        profile_prior: Warm start only: L2 precision pulling each labelled model's profile (in logit space)
            towards its start; a model with no profile, alias or stated prior starts from the mean profile with a
            tenth of it. A label near p = 0.5 weighs about 0.25 of it and one near 0.1 or 0.9 about 0.09, so 10
            is 40 to 110 labels' worth: a stated prior that is wrong gives way slowly (a model stated ``like``
            o1-preview but right on 39% of 100 CRUX labels is predicted at 0.54; one stated like Llama-3.1-8B
            but right on 90% of MATH-L5 problems at 0.41 after 10 labels, 0.65 after 50, 0.80 after 200).
        strong_model: Reference strong model (must be among the training models).
        weak_model: Reference weak model.
        embedder: The embedder; the shipped static embedder when ``None``.
    """

    name = "difficulty"
    #: Trains on golden labels as they are (the CLI and scripts pass them unpaired).
    learns_from_golden_labels: ClassVar[bool] = True
    config_keys = (
        "alpha",
        "slope_l2",
        "min_models",
        "traits",
        "use_prompt_features",
        "warm_prior",
        "warm_scale_prior",
        "profile_prior",
    )
    param_types: ClassVar[dict[str, Any]] = {
        "alpha": Annotated[float, Field(gt=0)],
        "slope_l2": Annotated[float, Field(ge=0)],
        "min_models": Annotated[int, Field(ge=2)],
        "warm_prior": Annotated[float, Field(gt=0)],
        "warm_scale_prior": Annotated[float, Field(gt=0)],
        "profile_prior": Annotated[float, Field(gt=0)],
    }
    #: L2 penalty on each model's intercept: tiny, it only keeps a model that is always right finite.
    INTERCEPT_L2 = 1e-4
    NEWTON_STEPS = 100
    #: Share of ``profile_prior`` holding a model that starts from the mean profile (it knows nothing about it).
    POPULATION_PRIOR_SHARE = 0.1

    def __init__(
        self,
        alpha: float = 10.0,
        slope_l2: float = 1e-2,
        min_models: int = 2,
        traits: Traits = "length+difficulty",
        use_prompt_features: bool = True,
        warm_prior: float = 10.0,
        warm_scale_prior: float = 10.0,
        profile_prior: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.alpha = alpha
        self.slope_l2 = slope_l2
        self.min_models = min_models
        self.traits = traits
        self.use_prompt_features = use_prompt_features
        self.warm_prior = warm_prior
        self.warm_scale_prior = warm_scale_prior
        self.profile_prior = profile_prior
        #: ``(a, δ..., c)`` of the pair's warm-start correction (see :meth:`fit`); ``None``: the profiles alone.
        self.pair_correction_: np.ndarray | None = None
        #: The pair's two profiles (strong, weak) where its logit scores on other ones than the ladder's (see
        #: :meth:`fit`); ``None``: the pair scores on its rows of ``model_coefs_``.
        self.pair_profiles_: np.ndarray | None = None

    def get_embedder(self) -> Embedder:
        """The embedder in use: the shipped static embedder unless one was given."""
        if self.embedder is None:
            self.embedder = embedder_from_name(STATIC_NAME)
        return self.embedder

    # ---- training --------------------------------------------------------------------------------------
    def fit(self, battles: Sequence[Battle | GoldenLabel], *, init: DifficultyRouter | None = None) -> DifficultyRouter:
        """Learn difficulty and the per-model profiles from golden labels (and optional battles), or warm-start.

        Warm start (``init``): the init's difficulty and profiles are kept and the battles between this router's
        strong and weak models refit the pair's logit, ``z = a * logit(w_init) + x · δ + c``, with ``x`` the
        standardised prompt representation (embedding and prompt features, scaled to unit norm), ``a`` pulled
        towards 1 (``warm_scale_prior``), ``δ`` towards 0 (``warm_prior``), and from 50 labelled prompts on a
        5-fold cross-validation choosing the prior's strength or no update (as mf's warm start). A model of your
        pair that the init has no profile for starts from the init's reference profile (strong from strong, weak
        from weak), so with no decided battle the result scores exactly like the init. The init's own correction
        carries over when the pair's profiles are the init's reference ones.

        The warm start also refits the profile of every model the records score (golden labels; a decided battle
        counts one right and one wrong answer): penalised logistic regression on the init's traits, pulled towards
        the model's starting profile with precision ``profile_prior``. Every spelling of a profiled model refits
        that profile (``openai:gpt-4o``, ``GPT-4o`` and ``gpt-4o-2024-08-06`` are one model:
        :func:`~routellm_core.routers.profiles.labelled_profile`), and the spellings of a new model make one new
        profile; another dated version (``gpt-4o-2024-11-20``) gets a profile of its own, starting from the profiled
        version's. A model nobody profiles starts from the mean profile held with a tenth of the precision.
        ``metadata["profiles_refit"]`` lists each refitted model's labels, start and (``labelled_as``) the
        spellings its labels used. The pair's own battles refit these profiles too, but its logit scores on
        profiles refitted without battles involving the pair (kept as ``pair_profiles_`` where they differ), then
        is refitted on its battles on top of them.

        Args:
            battles: Golden labels and battles; with ``init``, battles between the pair and golden labels
                scoring both of its models (compared as a battle) refit the pair's logit, and every record refits
                the profiles of the models it scores; records that say nothing about the pair are logged and
                counted in ``metadata["warm_start_ignored_battles"]``.
            init: A fitted difficulty router in the same embedding space to start from.

        Raises:
            InvalidInputError: A hyperparameter out of range.
            CheckpointError: ``init`` is not a fitted difficulty router in this router's embedding space.
            TrainingDataError: No golden label with ``min_models`` scores, fewer than 10 such prompts, or a
                reference model absent from the data.
        """
        self._check_params()
        if init is not None:
            return self._fit_warm(battles, init)
        obs = _Observations(list(battles))
        models = sorted({row[1] for row in obs.rows})
        absent = [m for m in (self.strong_model, self.weak_model) if m not in models]
        if absent:
            raise TrainingDataError(
                f"reference model(s) {absent} appear in no training record; models seen: {models[:20]}"
                + (" ..." if len(models) > 20 else "")
            )
        rated = [(i, s, scores) for i, s, scores in obs.labels if len(scores) >= self.min_models]
        if len({i for i, _, _ in rated}) < 10:
            raise TrainingDataError(
                f"the difficulty router learns difficulty from golden labels scoring at least {self.min_models} "
                f"models on a prompt; got {len(rated)} such labels ({obs.n_golden} golden labels, {obs.n_battles} "
                "battles): give golden labels (per-model scores), or train mf / sw_ranking on battles"
            )
        emb = np.asarray(self.embed(obs.prompts), dtype=np.float64)
        feats = prompt_features(obs.prompts)
        x = np.hstack([emb, feats])
        self.feature_mean_ = x.mean(axis=0)
        self.feature_scale_ = x.std(axis=0) + 1e-6
        z = (x - self.feature_mean_) / self.feature_scale_
        self.difficulty_weights_ = self._fit_difficulty(z, rated)
        difficulty = z @ self.difficulty_weights_
        traits = np.column_stack([feats[:, 0], difficulty])
        self.trait_mean_ = traits.mean(axis=0)
        self.trait_scale_ = traits.std(axis=0) + 1e-9
        design = np.column_stack([np.ones(len(traits)), (traits - self.trait_mean_) / self.trait_scale_])
        by_model: dict[str, list[tuple[int, str, float, str]]] = defaultdict(list)
        for row in obs.rows:
            by_model[row[1]].append(row)
        self.model_coefs_ = np.vstack([self._fit_profile(design, by_model[m]) for m in models])
        self.models_ = models
        self.pair_correction_ = None
        self.pair_profiles_ = None
        self.metadata.pop("pair_correction", None)
        self.metadata.pop("pair_profiles", None)
        self.metadata.update(
            models=models,
            n_golden_labels=obs.n_golden,
            n_battles=obs.n_battles,
            n_prompts=len(obs.prompts),
            n_difficulty_labels=len(rated),
            feature_names=list(FEATURE_NAMES),
            trait_names=list(TRAIT_NAMES),
        )
        self._fold()
        return self

    # ---- warm start ------------------------------------------------------------------------------------
    def _fit_warm(self, records: Sequence[Battle | GoldenLabel], init: DifficultyRouter) -> DifficultyRouter:
        priors = dict(init.metadata.get("model_priors", {}))
        starts = {model: f"stated prior ({prior})" for model, prior in priors.items()}
        carried = self._take_init(init, starts)
        pair = (self.strong_model, self.weak_model)
        records = self._pair_spelled(records)
        # Every record refits the profiles the ladder compares (predict_success). The pair's own logit scores on
        # profiles refitted from golden labels and battles not involving the pair only (``pair_profiles_`` where
        # they differ): a battle says who won where the two differ (ties dropped), a skewed sample of each model's
        # successes that, refitted into the pair's profiles, made warm starts worse than k=0 on GSM8K, MT Bench and
        # MATH-L5 (bench.learning_curves --recipe default); the pair's battles refit its logit below instead.
        own = [r for r in records if isinstance(r, GoldenLabel) or not ({r.model_a, r.model_b} & set(pair))]
        separate = len(own) < len(records) or self.pair_profiles_ is not None
        if separate:  # the pair's scoring profiles: the init's (carried) ones, refitted without the pair's battles
            base = self.model_coefs_.copy()
            if self.pair_profiles_ is not None:
                base[[self._s, self._wk]] = self.pair_profiles_
            coefs, _, _ = self._refit(own, starts, only={self._pair_profile(m) for m in pair}, coefs=base)
            scoring = coefs[[self._s, self._wk]]
        refit = self._refit_profiles(records, starts)
        ladder = self.model_coefs_[[self._s, self._wk]]
        self.pair_profiles_ = scoring if separate and not np.array_equal(scoring, ladder) else None
        mine, ignored = pair_battles(records, *pair)
        if ignored:
            logger.warning(
                "warm start refits the %s vs %s logit on their labels only: %d others ignored there (they refit "
                "the per-model profiles)",
                *pair,
                ignored,
            )
        decided = [b for b in mine if b.winner != "tie"]
        fitted: dict[str, Any] = {
            "n_battles": len(decided),
            "prior_multiplier": 1.0,
            "scale": 1.0,
            "init_correction": carried,
        }
        if decided:
            prompts = sorted({b.prompt for b in mine})  # the fit and its folds do not depend on the records' order
            index = {p: i for i, p in enumerate(prompts)}
            emb, feats = self._inputs(prompts)
            x = self._standardised(emb, feats)
            z0 = _logit(self._pair_win_rate(self._traits_of(emb, feats), emb, feats))
            share = np.array([0.5 if b.winner == "tie" else float(self._strong_won(b)) for b in mine])
            rows = np.array([index[b.prompt] for b in mine])
            prior = warm.Prior(scale=self.warm_scale_prior, delta=self.warm_prior)
            theta, info = warm.fit(z0, x, rows, share, prior, seed=0)
            fitted.update(info)
            if theta is not None:
                fitted["scale"] = float(theta[0])
                self._compose(theta)
        self.metadata = {
            "feature_names": list(FEATURE_NAMES),
            "trait_names": list(TRAIT_NAMES),
            "models": list(self.models_),
            "n_battles": len(decided),
            "n_prompts": len({b.prompt for b in decided}),
            "warm_start_fit": fitted,
        }
        if refit:
            self.metadata["profiles_refit"] = refit
        if priors:
            self.metadata["model_priors"] = priors
        if ignored:
            self.metadata["warm_start_ignored_battles"] = ignored
        if self.pair_correction_ is not None:
            self.metadata["pair_correction"] = True
        if self.pair_profiles_ is not None:
            self.metadata["pair_profiles"] = True
        return self

    def _pair_spelled(self, records: Sequence[Battle | GoldenLabel]) -> list[Battle | GoldenLabel]:
        """The records with battles naming a spelling of the pair's models (``openai:gpt-4o`` for a ``gpt-4o``
        pair) written as the pair names them: the pair's logit counts them as its battles, as the profiles do (it
        ignored them while its scoring profiles were refitted from them)."""
        battles = [r for r in records if isinstance(r, Battle)]
        if not battles:
            return list(records)
        names = profile_names({m for b in battles for m in (b.model_a, b.model_b) if m.strip()}, self.models_)
        as_pair = {self._pair_profile(m): m for m in (self.strong_model, self.weak_model)}
        out: list[Battle | GoldenLabel] = []
        for r in records:
            if isinstance(r, Battle):
                a = as_pair.get(names.get(r.model_a, ""), r.model_a)
                b = as_pair.get(names.get(r.model_b, ""), r.model_b)
                if (a, b) != (r.model_a, r.model_b) and a != b:
                    r = r.model_copy(update={"model_a": a, "model_b": b})
            out.append(r)
        return out

    def _refit_profiles(
        self, records: Sequence[Battle | GoldenLabel], starts: Mapping[str, str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Warm-start the profile of every model the records score (see :meth:`fit`); returns what was refitted.

        Spellings of one model teach one profile (:func:`~routellm_core.routers.profiles.profile_names`): a label
        for ``openai:gpt-4o`` refits ``gpt-4o-2024-08-06``, the profile every spelling of it resolves to.
        """
        self.model_coefs_, self.models_, out = self._refit(records, starts)
        self._fold()
        return out

    def _refit(
        self,
        records: Sequence[Battle | GoldenLabel],
        starts: Mapping[str, str] | None,
        only: set[str] | None = None,
        coefs: np.ndarray | None = None,
    ) -> tuple[np.ndarray, list[str], dict[str, dict[str, Any]]]:
        """The profiles :meth:`_refit_profiles` sets, the router unchanged (``starts``: where a profile came from,
        for the record; ``only``: refit just these profiles; ``coefs``: start from these rows of ``models_`` instead
        of ``model_coefs_``)."""
        start_coefs = self.model_coefs_ if coefs is None else coefs
        known = list(self.models_)
        obs = _Observations(list(records))
        names = profile_names({row[1] for row in obs.rows}, known)
        by_model: dict[str, list[tuple[int, str, float, str]]] = defaultdict(list)
        spelled: dict[str, set[str]] = defaultdict(set)
        for row in obs.rows:
            if only is None or names[row[1]] in only:
                by_model[names[row[1]]].append(row)
                spelled[names[row[1]]].add(row[1])
        if not by_model:
            return start_coefs.copy(), known, {}
        design = self._traits(obs.prompts)
        index = {m: i for i, m in enumerate(known)}
        mean = self.model_coefs_.mean(axis=0)
        coefs, added, models = start_coefs.copy(), [], list(known)
        out: dict[str, dict[str, Any]] = {}
        for model in sorted(by_model):
            rows = by_model[model]
            if model in index:
                start, precision = coefs[index[model]], self.profile_prior
                origin = (starts or {}).get(model, "own profile")
            elif (other := resolve_model(model, known)) is not None:  # another version of a profiled model
                start, precision, origin = coefs[index[other]], self.profile_prior, f"profile of {other}"
            else:
                start, precision = mean, self.profile_prior * self.POPULATION_PRIOR_SHARE
                origin = "mean profile"
            beta = self._map_profile(design[[r[0] for r in rows]], np.array([r[2] for r in rows]), start, precision)
            if model in index:
                coefs[index[model]] = beta
            else:
                added.append(beta)
                models.append(model)
            out[model] = {"labels": len(rows), "start": origin}
            if spelled[model] != {model}:
                out[model]["labelled_as"] = sorted(spelled[model])
        return (np.vstack([coefs, *added]) if added else coefs), models, out

    def _map_profile(self, t: np.ndarray, y: np.ndarray, start: np.ndarray, precision: float) -> np.ndarray:
        """A profile's penalised logistic fit, pulled towards ``start`` with L2 ``precision``; the slopes the
        ``traits`` setting turns off stay at 0.

        Newton's method with a backtracking line search: a full Newton step from a start far from the labels (a
        wrong prior, a few hundred labels) can overshoot and oscillate without converging, ending on a profile
        worse than its start.
        """
        keep = np.array([True, self.traits != "difficulty", self.traits != "length"])
        x, beta0 = t[:, keep], start[keep].copy()

        def loss(b: np.ndarray) -> float:  # the penalised negative log-likelihood (scores in [0, 1])
            z = x @ b
            return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * precision * np.sum((b - beta0) ** 2))

        beta, current = beta0.copy(), loss(beta0)
        for _ in range(self.NEWTON_STEPS):
            p = _sigmoid(x @ beta)
            grad = x.T @ (p - y) + precision * (beta - beta0)
            hess = (x * (p * (1 - p))[:, None]).T @ x + precision * np.eye(len(beta))
            step = np.linalg.solve(hess, grad)
            size, decrease = 1.0, float(grad @ step)
            while True:  # Armijo: halve the step until the loss falls enough (a descent direction: it will)
                trial = beta - size * step
                value = loss(trial)
                if value <= current - 1e-4 * size * decrease or size < 1e-10:
                    break
                size *= 0.5
            beta, current = trial, value
            if float(np.abs(size * step).max()) < 1e-10:
                break
        out = np.zeros(len(keep))
        out[keep] = beta
        return out

    def _take_init(self, init: DifficultyRouter, starts: dict[str, str] | None = None) -> str | None:
        """Copy the init's weights, with profiles for this router's pair (the init's reference ones where absent).

        Args:
            init: The router to start from.
            starts: Where a model of the pair gets a copy of a reference profile, that start is noted here.

        Returns:
            What became of the init's own correction: ``None`` (it had none), ``"carried"`` (this pair scores
            on the init's reference profiles), ``"carried, pair swapped"`` (the init's pair the other way round:
            the logit's sign flips) or ``"dropped: other profiles"`` (your pair has profiles of its own).
        """
        warm.check_init(self, init)
        starts = {} if starts is None else starts
        # read everything from the init before writing: ``init`` may be this very router
        shared = ("feature_mean_", "feature_scale_", "difficulty_weights_", "trait_mean_", "trait_scale_")
        state = {key: getattr(init, key).copy() for key in shared}
        models, coefs = list(init.models_), init.model_coefs_.copy()
        correction = None if init.pair_correction_ is None else init.pair_correction_.copy()
        scoring = None if init.pair_profiles_ is None else init.pair_profiles_.copy()
        init_pair = (init.strong_model, init.weak_model)
        reference = dict(zip((self.strong_model, self.weak_model), init_pair))
        rows = [coefs]
        for model in (self.strong_model, self.weak_model):
            if labelled_profile(model, models) is None:  # a model the init never saw starts from its reference one
                rows.append(coefs[models.index(reference[model])][None, :])
                models.append(model)
                starts[model] = f"copy of the init's reference profile {reference[model]}"
        for key, value in state.items():
            setattr(self, key, value)
        self.models_, self.model_coefs_ = models, np.vstack(rows)
        self.pair_correction_ = self.pair_profiles_ = None
        swapped = (self.strong_model, self.weak_model) == init_pair[::-1]
        base = all(  # each of the pair scores on the init's reference profile, or on a copy of it
            m == ref or labelled_profile(m, init.models_) in (None, ref) for m, ref in reference.items()
        )
        # the pair's scoring profiles go with the pair, correction or not (a warm start that kept the init's logit
        # saved them alone: dropping them scored the next warm start on the profiles its battles had skewed)
        if scoring is not None and (swapped or base):
            self.pair_profiles_ = scoring[::-1].copy() if swapped else scoring
        carried = None
        if correction is not None:
            if swapped:
                self.pair_correction_ = np.concatenate([correction[:1], -correction[1:]])
                carried = "carried, pair swapped"
            elif base:  # the correction was learned on these very profiles
                self.pair_correction_ = correction
                carried = "carried"
            else:
                carried = "dropped: other profiles"
        self._fold()
        return carried

    def _strong_won(self, battle: Battle) -> bool:
        return (battle.winner == "model_a") == (battle.model_a == self.strong_model)

    def _compose(self, theta: np.ndarray) -> None:
        """Apply a new correction on top of the current one (itself the identity when there is none)."""
        old = self.pair_correction_
        if old is None:
            self.pair_correction_ = theta.copy()
        else:  # a2 (a1 L + x·δ1 + c1) + x·δ2 + c2
            a2 = theta[0]
            self.pair_correction_ = np.concatenate(
                [[a2 * old[0]], a2 * old[1:-1] + theta[1:-1], [a2 * old[-1] + theta[-1]]]
            )
        self._fold()

    def _check_params(self) -> None:
        types = {**self.param_types, "traits": Traits, "use_prompt_features": bool}
        for key, annotation in types.items():
            value = getattr(self, key)
            try:
                TypeAdapter(annotation, config=ConfigDict(allow_inf_nan=False)).validate_python(value)
            except ValidationError as exc:
                problems = "; ".join(e["msg"] for e in exc.errors())
                raise InvalidInputError(
                    f"difficulty parameter {key!r} = {value!r:.80} is invalid: {problems}"
                ) from None

    def _fit_difficulty(self, z: np.ndarray, rated: list[tuple[int, str, dict[str, float]]]) -> np.ndarray:
        """Within-source ridge from standardised features to standardised difficulty, sources weighted equally."""
        rows = np.array([i for i, _, _ in rated])
        sources = np.array([s for _, s, _ in rated])
        target = np.array([-float(np.mean(list(scores.values()))) for _, _, scores in rated])
        x = z[rows].copy()
        if not self.use_prompt_features:
            x[:, -len(FEATURE_NAMES) :] = 0.0  # their weights stay 0: difficulty from the embedding alone
        weight = np.empty(len(rows))
        for source in np.unique(sources):
            k = sources == source
            x[k] -= x[k].mean(axis=0)
            spread = target[k].std()
            target[k] = (target[k] - target[k].mean()) / spread if spread > 0 else 0.0
            weight[k] = 1.0 / k.sum()
        weight *= len(rows) / weight.sum()
        xw = x * weight[:, None]
        return np.linalg.solve(x.T @ xw + self.alpha * np.eye(x.shape[1]), xw.T @ target)

    def _fit_profile(self, design: np.ndarray, rows: list[tuple[int, str, float, str]]) -> np.ndarray:
        """One model's logistic profile (intercept, length slope, difficulty slope) by Newton's method."""
        t = design[[r[0] for r in rows]]
        y = np.array([r[2] for r in rows])
        sources = np.array([r[3] for r in rows])
        c = np.empty(len(rows))
        for source in np.unique(sources):
            k = sources == source
            c[k] = 1.0 / k.sum()
        c /= c.sum()
        keep = np.array([True, self.traits != "difficulty", self.traits != "length"])
        t = t[:, keep]
        penalty = np.array([self.INTERCEPT_L2, self.slope_l2, self.slope_l2])[keep]
        beta = np.zeros(int(keep.sum()))
        for _ in range(self.NEWTON_STEPS):
            p = _sigmoid(t @ beta)
            grad = t.T @ (c * (p - y)) + 2 * penalty * beta
            hess = (t * (c * p * (1 - p))[:, None]).T @ t + np.diag(2 * penalty)
            step = np.linalg.solve(hess, grad)
            beta -= step
            if float(np.abs(step).max()) < 1e-10:
                break
        out = np.zeros(len(keep))
        out[keep] = beta
        return out

    def _fold(self) -> None:
        """Precompute the scoring path: difficulty as one affine map of the raw features."""
        self._w = (self.difficulty_weights_ / self.feature_scale_).astype(np.float64)
        self._b = float(-(self.feature_mean_ / self.feature_scale_) @ self.difficulty_weights_)
        self._s = self._model_index(self._pair_profile(self.strong_model))
        self._wk = self._model_index(self._pair_profile(self.weak_model))
        if self._s == self._wk:  # e.g. claude-3-5-sonnet-latest and claude-3-5-sonnet-20240620 beside that profile
            raise TrainingDataError(
                f"the pair {self.strong_model!r} / {self.weak_model!r} names one profiled model "
                f"({self.models_[self._s]!r}): every win rate would be 0.5; name two models, or give the newer "
                "version a name of its own"
            )
        if self.pair_correction_ is not None:  # x·δ on raw features: one affine map as well
            d = self.pair_correction_[1:-1] / (self.feature_scale_ * math.sqrt(len(self.feature_scale_)))
            self._cw = d
            self._cb = float(self.pair_correction_[-1] - self.feature_mean_ @ d)

    def _pair_profile(self, name: str) -> str:
        """The profile a model of the router's pair scores with: its own, else the profiled model it spells
        (``gpt-4o`` is ``gpt-4o-2024-08-06``: :func:`~routellm_core.routers.profiles.labelled_profile`)."""
        if name in self.models_:
            return name
        return labelled_profile(name, self.models_) or name

    # ---- scoring ---------------------------------------------------------------------------------------
    def _is_fitted(self) -> bool:
        return hasattr(self, "model_coefs_")

    def _inputs(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Each text's static embedding and prompt features."""
        emb = np.asarray(self.embed(texts), dtype=np.float64)
        n_emb = self._w.shape[0] - len(FEATURE_NAMES)
        if emb.ndim != 2 or emb.shape[1] != n_emb:
            raise EmbeddingError(f"difficulty was trained on {n_emb}-d embeddings, got shape {emb.shape}")
        return emb, prompt_features(texts)

    def _traits_of(self, emb: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """Rows ``[1, standardised log length, standardised difficulty]``."""
        n_emb = emb.shape[1]
        difficulty = emb @ self._w[:n_emb] + feats @ self._w[n_emb:] + self._b
        traits = (np.column_stack([feats[:, 0], difficulty]) - self.trait_mean_) / self.trait_scale_
        return np.column_stack([np.ones(len(emb)), traits])

    def _traits(self, texts: list[str]) -> np.ndarray:
        return self._traits_of(*self._inputs(texts))

    def _standardised(self, emb: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """The warm start's prompt representation: standardised features, scaled to about unit norm."""
        x = (np.hstack([emb, feats]) - self.feature_mean_) / self.feature_scale_
        return x / math.sqrt(x.shape[1])

    def _pair_win_rate(self, traits: np.ndarray, emb: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """The router's pair: its profiles' win rate, through the warm-start correction when there is one."""
        if self.pair_profiles_ is None:
            w = self._win_rate(traits, self._s, self._wk)
        else:
            pa, pb = _sigmoid(traits @ self.pair_profiles_.T).T
            w = 0.5 + 0.5 * (pa - pb)
        if self.pair_correction_ is None:
            return w
        n_emb = emb.shape[1]
        shift = emb @ self._cw[:n_emb] + feats @ self._cw[n_emb:] + self._cb
        return _sigmoid(self.pair_correction_[0] * _logit(w) + shift)

    def _predict(self, texts: list[str]) -> np.ndarray:
        emb, feats = self._inputs(texts)
        return self._pair_win_rate(self._traits_of(emb, feats), emb, feats)

    def _win_rate(self, traits: np.ndarray, a: int, b: int) -> np.ndarray:
        pa = _sigmoid(traits @ self.model_coefs_[a])
        pb = _sigmoid(traits @ self.model_coefs_[b])
        return 0.5 + 0.5 * (pa - pb)

    def pairwise_win_rate(self, texts: Sequence[str], model_a: str, model_b: str) -> np.ndarray:
        """``P(model_a wins) + P(tie) / 2`` for each text, for any two models seen in training (the router's own
        pair, either way round, with its warm-start correction)."""
        if (model_a, model_b) == (self.strong_model, self.weak_model):
            return self.predict_win_rate(texts)
        if (model_a, model_b) == (self.weak_model, self.strong_model):
            return 1.0 - self.predict_win_rate(texts)
        a, b = self._model_index(model_a), self._model_index(model_b)
        out = self._win_rate(self._traits([valid_unicode(t) for t in check_texts(texts)]), a, b)
        if not np.isfinite(out).all():
            raise ScoringError(f"difficulty produced NaN or infinite win rates for {model_a!r} vs {model_b!r}")
        return out

    def success_rate(self, texts: Sequence[str], model: str) -> np.ndarray:
        """Predicted chance that ``model`` answers each text well (its profile at the text's traits)."""
        return self.predict_success(texts, [model])[:, 0]

    # ---- per-model predictions (price ladders) ---------------------------------------------------------
    @property
    def models(self) -> list[str]:
        """The profiled model names (training data, warm-start labels and :meth:`add_model`)."""
        if not self._is_fitted():
            raise NotFittedError("the difficulty router is not fitted: call fit(...) or load a checkpoint")
        return list(self.models_)

    def resolve_model(self, name: str) -> str:
        """The profiled name that ``name`` refers to (provider prefixes, dated versions:
        :func:`~routellm_core.routers.profiles.resolve_model`).

        Raises:
            UnknownModelError: No profile answers to ``name``; the message says how to state a prior.
        """
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError(f"a model name must be a non-empty string, got {name!r:.80}")
        found = resolve_model(name, self.models)
        if found is None:
            close = close_model(name, self.models_)
            guess = f"did you mean {close!r}? Otherwise " if close is not None else ""
            known = [m for m in _WELL_KNOWN if m in self.models_] or self.models_
            raise UnknownModelError(
                f"the difficulty router has no profile for model {name!r} (it profiles {len(self.models_)} models, "
                f"e.g. {known[:5]}); {guess}state a prior, router.add_model({name!r}, "
                "ModelPrior(like='<a profiled model>')) or ModelPrior(score=<a public benchmark score>, "
                "reference={<profiled model>: <its score on that benchmark>, ...}), or warm-start on labels that "
                "score it: train_router(None, labels, init=router)"
            )
        return found

    def predict_success(
        self, texts: Sequence[str], models: Sequence[str], *, priors: Mapping[str, ModelPrior | str] | None = None
    ) -> np.ndarray:
        """``P(model answers well | prompt)`` for every text and model: an ``(n_texts, n_models)`` array.

        These are the per-model profiles as they are; the router's own pair scores through its warm-start
        correction in :meth:`predict_win_rate` only.

        Args:
            texts: The prompts.
            models: Model names, resolved by :meth:`resolve_model`.
            priors: Priors for models without a profile (used for this call only; :meth:`add_model` keeps one), as
                :class:`ModelPrior` or written ``"like:<model>"`` / ``"score:<fraction>"``.

        Raises:
            InvalidInputError: Empty batch, blank texts, no model, a malformed name or prior.
            UnknownModelError: A model with neither a profile nor a prior.
        """
        if not self._is_fitted():
            raise NotFittedError("the difficulty router is not fitted: call fit(...) or load a checkpoint")
        names = list(models) if not isinstance(models, str) else [models]
        if not names:
            raise InvalidInputError("predict_success needs at least one model name")
        priors = {name: ModelPrior.of(p, name) for name, p in (priors or {}).items()}
        rows = []
        for name in names:
            if name in priors and resolve_model(name, self.models_) is None:
                rows.append(self._prior_profile(priors[name]))
            else:
                rows.append(self.model_coefs_[self._model_index(self.resolve_model(name))])
        items = [valid_unicode(t) for t in check_texts(texts)]
        out = _sigmoid(self._traits(items) @ np.vstack(rows).T)
        if not np.isfinite(out).all():
            raise ScoringError("difficulty produced NaN or infinite success rates")
        return out

    def add_model(self, name: str, prior: ModelPrior | str) -> str:
        """Give a model without a profile a starting one from a stated prior (labels then refine it: see
        :meth:`fit`); kept in the router and its checkpoint.

        Args:
            name: The model's name.
            prior: A :class:`ModelPrior`, or written ``"like:<profiled model>"`` / ``"score:<fraction>"``.

        Returns:
            ``name``.

        Raises:
            InvalidInputError: ``name`` already has a profile (directly or through an alias), or a malformed prior.
            UnknownModelError: The prior names a model without a profile.
        """
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError(f"a model name must be a non-empty string, got {name!r:.80}")
        prior = ModelPrior.of(prior, name)
        existing = resolve_model(name, self.models)
        if existing is not None:
            raise InvalidInputError(f"model {name!r} already has a profile ({existing!r}); no prior is needed")
        beta = self._prior_profile(prior)
        self.model_coefs_ = np.vstack([self.model_coefs_, beta[None, :]])
        self.models_ = [*self.models_, name]
        self.metadata["models"] = list(self.models_)
        self.metadata.setdefault("model_priors", {})[name] = prior.describe()
        self._fold()
        return name

    #: Gauss-Hermite nodes per trait for a profile's mean accuracy over the (standardised) training traffic.
    _QUADRATURE_NODES = 9

    def _mean_accuracy(self, coefs: np.ndarray) -> np.ndarray:
        """Each profile's mean P(right) over standard-normal traits (the training traffic, standardised)."""
        nodes, weights = np.polynomial.hermite_e.hermegauss(self._QUADRATURE_NODES)
        weights = weights / weights.sum()
        grid = np.array([(1.0, a, b) for a in nodes for b in nodes])
        w = np.array([wa * wb for wa in weights for wb in weights])
        return _sigmoid(np.atleast_2d(coefs) @ grid.T) @ w

    def _prior_profile(self, prior: ModelPrior) -> np.ndarray:
        """The starting profile a :class:`ModelPrior` states (see its docstring)."""
        if prior.like is not None:
            return self.model_coefs_[self._model_index(self.resolve_model(prior.like))].copy()
        accuracy = self._mean_accuracy(self.model_coefs_)
        target = float(prior.score)  # type: ignore[arg-type]
        if prior.reference:
            rows = [self.models_.index(self.resolve_model(m)) for m in prior.reference]
            own = _logit(accuracy[rows])
            public = _logit(np.array(list(prior.reference.values()), dtype=np.float64))
            if len(rows) >= 2 and np.ptp(public) > 0:
                slope, intercept = np.polyfit(public, own, 1)
            else:
                slope, intercept = 1.0, float(np.mean(own - public))
            placed = float(intercept + slope * _logit(np.array([target]))[0])
            target = float(_sigmoid(np.array(placed)))
            beta = self._between(rows, own, placed)
        else:
            nearest = np.argsort(np.abs(accuracy - target), kind="stable")[:5]
            beta = self.model_coefs_[nearest].mean(axis=0)
        lo, hi = -20.0, 20.0  # the intercept whose mean accuracy is the target (bisection: it is monotone)
        for _ in range(60):
            beta[0] = 0.5 * (lo + hi)
            if self._mean_accuracy(beta)[0] < target:
                lo = beta[0]
            else:
                hi = beta[0]
        return beta

    def _between(self, rows: list[int], own: np.ndarray, placed: float) -> np.ndarray:
        """The profile of a model placed at logit accuracy ``placed`` among reference models (profile ``rows``, own
        logit accuracies ``own``): the two references around it mixed in proportion (the nearest one beyond them),
        so it ranks between them on every prompt, not only on average."""
        order = np.argsort(own, kind="stable")
        sorted_own, sorted_rows = own[order], [rows[i] for i in order]
        if placed <= sorted_own[0] or len(rows) == 1:
            return self.model_coefs_[sorted_rows[0] if placed <= sorted_own[0] else sorted_rows[-1]].copy()
        if placed >= sorted_own[-1]:
            return self.model_coefs_[sorted_rows[-1]].copy()
        k = int(np.searchsorted(sorted_own, placed))  # sorted_own[k - 1] < placed <= sorted_own[k]
        gap = sorted_own[k] - sorted_own[k - 1]
        weight = 0.0 if gap <= 0 else (placed - sorted_own[k - 1]) / gap
        return (1 - weight) * self.model_coefs_[sorted_rows[k - 1]] + weight * self.model_coefs_[sorted_rows[k]]

    # ---- persistence -----------------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {
            "feature_mean": self.feature_mean_.astype(np.float64),
            "feature_scale": self.feature_scale_.astype(np.float64),
            "difficulty_weights": self.difficulty_weights_.astype(np.float64),
            "trait_mean": self.trait_mean_.astype(np.float64),
            "trait_scale": self.trait_scale_.astype(np.float64),
            "model_coefs": self.model_coefs_.astype(np.float64),
            **({} if self.pair_correction_ is None else {"pair_correction": self.pair_correction_.astype(np.float64)}),
            **({} if self.pair_profiles_ is None else {"pair_profiles": self.pair_profiles_.astype(np.float64)}),
        }

    def _load_state(self, directory: Path, config: CheckpointConfig) -> None:
        meta = config.metadata
        models = meta.get("models")
        if not isinstance(models, list) or len(models) < 2 or not all(isinstance(m, str) for m in models):
            raise CheckpointError(f"{directory}: difficulty config lacks its model list (metadata.models)")
        if meta.get("feature_names") != list(FEATURE_NAMES) or meta.get("trait_names") != list(TRAIT_NAMES):
            raise CheckpointError(
                f"{directory}: the checkpoint's prompt features {meta.get('feature_names')} / traits "
                f"{meta.get('trait_names')} are not this version's {list(FEATURE_NAMES)} / {list(TRAIT_NAMES)}"
            )
        corrected, scoring = meta.get("pair_correction", False), meta.get("pair_profiles", False)
        for key, flag in (("pair_correction", corrected), ("pair_profiles", scoring)):
            if not isinstance(flag, bool):
                raise CheckpointError(f"{directory}: metadata.{key} must be true or false, got {flag!r}")
        t = load_tensors(
            directory,
            {
                "feature_mean": (None,),
                "feature_scale": (None,),
                "difficulty_weights": (None,),
                "trait_mean": (len(TRAIT_NAMES),),
                "trait_scale": (len(TRAIT_NAMES),),
                "model_coefs": (len(models), 1 + len(TRAIT_NAMES)),
                **({"pair_correction": (None,)} if corrected else {}),
                **({"pair_profiles": (2, 1 + len(TRAIT_NAMES))} if scoring else {}),
            },
        )
        width = {t[k].shape[0] for k in ("feature_mean", "feature_scale", "difficulty_weights")}
        if len(width) != 1 or width.pop() <= len(FEATURE_NAMES):
            raise CheckpointError(f"{directory}: feature tensors disagree in length or are too short")
        if not (np.all(t["feature_scale"] > 0) and np.all(t["trait_scale"] > 0)):
            raise CheckpointError(f"{directory}: feature or trait scales must be positive")
        self.feature_mean_ = t["feature_mean"].astype(np.float64)
        self.feature_scale_ = t["feature_scale"].astype(np.float64)
        self.difficulty_weights_ = t["difficulty_weights"].astype(np.float64)
        self.trait_mean_ = t["trait_mean"].astype(np.float64)
        self.trait_scale_ = t["trait_scale"].astype(np.float64)
        self.model_coefs_ = t["model_coefs"].astype(np.float64)
        self.models_ = list(models)
        if corrected:
            if t["pair_correction"].shape != (len(self.feature_mean_) + 2,):
                raise CheckpointError(
                    f"{directory}: pair_correction has shape {t['pair_correction'].shape}, expected "
                    f"({len(self.feature_mean_) + 2},) for {len(self.feature_mean_)} features"
                )
            if float(np.abs(t["pair_correction"]).max()) > MAX_CORRECTION:
                raise CheckpointError(
                    f"{directory}: pair_correction has a weight above {MAX_CORRECTION:g} in size (fitted ones are "
                    "far smaller): crafted or corrupt"
                )
            self.pair_correction_ = t["pair_correction"].astype(np.float64)
        if scoring:
            if float(np.abs(t["pair_profiles"]).max()) > MAX_CORRECTION:
                raise CheckpointError(
                    f"{directory}: pair_profiles has a weight above {MAX_CORRECTION:g} in size (fitted ones are far "
                    "smaller): crafted or corrupt"
                )
            self.pair_profiles_ = t["pair_profiles"].astype(np.float64)
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused just below
                self._fold()
        except TrainingDataError as exc:
            raise CheckpointError(f"{directory}: {exc}") from exc
        if not (np.isfinite(self._w).all() and math.isfinite(self._b)) or (
            corrected and not (np.isfinite(self._cw).all() and math.isfinite(self._cb))
        ):
            raise CheckpointError(f"{directory}: difficulty weights overflow when combined (crafted or corrupt)")
