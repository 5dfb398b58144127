"""From "route with the default router" to "a router trained on my traffic", offline, end to end.

1. Route live traffic with ``ChatRouteLLM`` (the shipped ``default`` router), recording every decision in a feedback
   store and labelling calls in the background with a judge (all of them here, since the demo traffic is small; an
   app would label a few percent of a much larger stream with ``label_fraction=0.05``).
2. Ask whether routing pays off on that traffic (``routellm report``).
3. Warm-start a router from the default on the labels, recalibrated on the traffic (``routellm train --init``).
4. Report again, and route with the new router.

The traffic is the DC-Router test split (500 prompts over 14 tasks). The two children are the offline demo models.
The judge stands in for an LLM judge or your users' thumbs: it knows which of two real models (Llama-3.1-Nemotron-51B
as "strong", Mistral-7B as "weak") answered each prompt correctly, from the data's golden labels. In your app, pass
``judge=<a chat model>`` and the router asks it MT-Bench's pairwise question instead.

Run: ``.venv/bin/python examples/learning_loop.py [--out DIR] [--label-fraction 0.5]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _demo_models import demo_children

from langchain_routellm import ChatRouteLLM
from routellm_core.data import golden_labels_dcrouter
from routellm_core.learning.report import TrafficReport, traffic_report
from routellm_core.routers.training import train_router

#: The pair whose golden labels play the judge (the DC-Router pair the benchmarks use).
STRONG, WEAK = "llama-3.1-nemotron-51b-instruct", "mistral-7b-instruct-v0.3"


def golden_judge(correct: dict[str, tuple[float, float]]):
    """A judge that knows, per prompt, whether the strong and the weak model were right."""

    def judge(prompt: str, strong_answer: str, weak_answer: str) -> str:
        strong, weak = correct[prompt]
        if strong == weak:
            return "tie"
        # The store always shows the strong model's answer as answer_a: pick the side that was right.
        return "model_a" if strong > weak else "model_b"

    judge.__name__ = "golden-labels"
    return judge


def main(argv: list[str] | None = None) -> tuple[TrafficReport, TrafficReport]:
    """Run the loop; returns the report before (the shipped router) and after (warm-started on the labels)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for feedback.db and the trained router")
    parser.add_argument("--label-fraction", type=float, default=1.0)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="routellm-loop-"))
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / "feedback.db"
    store_path.unlink(missing_ok=True)

    labels = [g for g in golden_labels_dcrouter("test") if STRONG in g.scores and WEAK in g.scores]
    correct = {g.prompt.strip(): (g.scores[STRONG], g.scores[WEAK]) for g in labels}  # routing texts are stripped
    traffic = list(correct)

    print(f"1. Route {len(traffic)} prompts with the shipped `default` router; label {args.label_fraction:.0%} of them")
    llm = ChatRouteLLM(
        **demo_children(),
        router="default",
        feedback=store_path,
        judge=golden_judge(correct),
        label_fraction=args.label_fraction,
    )
    assert llm.labelling is not None and llm.labelling.labeller is not None
    for i, prompt in enumerate(traffic, 1):
        llm.invoke(prompt)
        if i % 4 == 0:  # this loop outruns any judge: let the background labels catch up (an app never waits)
            llm.labelling.labeller.flush(timeout=120)
    llm.labelling.labeller.flush(timeout=120)
    store = llm.feedback_store
    assert store is not None
    print(f"   labeller: {llm.labelling.labeller.stats.as_dict()}")
    print(f"   store: {store.stats().as_dict()['labels']} labels in {store_path}")

    # folds=0: the shipped router as it is, no warm-start row (the CLI's default, --folds 5, adds one: step 4)
    print("\n2. Is routing with the default worth it on this traffic?  (routellm report --router default --folds 0)")
    before = traffic_report("default", store, folds=0)
    print(before.to_markdown())

    print("\n3. Warm-start from `default` on the labels, recalibrated on the traffic  (routellm train --init default)")
    children = demo_children()
    router = train_router(
        None,  # the init's type: a difficulty router
        store.battles(),
        init="default",
        calibration_prompts=store.prompts(),
        strong_model=children["strong"].model,  # your own pair: it starts from the init's reference pair
        weak_model=children["weak"].model,
    )
    folder = router.save(out / "my_router")
    print(f"   saved {folder}")

    print("\n4. The new router on the same traffic (k-fold: each prompt scored by a router that did not train on it)")
    after = traffic_report(folder, store)
    print(after.to_markdown())

    routed = ChatRouteLLM(**demo_children(), router=str(folder), strong_fraction=0.3)
    prompt = traffic[0]
    decision = routed.invoke(prompt).response_metadata["routellm"]
    prompt_file = out / "prompt.jsonl"  # JSONL: the prompt may span lines
    prompt_file.write_text(json.dumps({"prompt": prompt}) + "\n", encoding="utf-8")
    shown = prompt if len(prompt) <= 60 else prompt[:57] + "..."
    print(
        f"\n   routing {shown!r} at strong_fraction=0.3 (threshold {decision['threshold']:.3f}): "
        f"{decision['choice']} (win rate {decision['win_rate']:.3f})"
    )
    print("\nThe same with the CLI (same store, same seeds: the same tables, verdicts and decision):")
    print(f"   .venv/bin/routellm report --router default --feedback {store_path} --folds 0")
    print(f"   .venv/bin/routellm train --feedback {store_path} --init default --out {out / 'my_router'}")
    print(
        f"   .venv/bin/routellm report --router {out / 'my_router'} --feedback {store_path} --plot {out / 'report.png'}"
    )
    print(f"   .venv/bin/routellm route --router {out / 'my_router'} --strong-fraction 0.3 --file {prompt_file}")
    store.close()  # the last connection out checkpoints SQLite's write-ahead log: feedback.db alone holds every label
    return before, after


if __name__ == "__main__":
    main()
