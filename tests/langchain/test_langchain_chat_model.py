"""ChatRouteLLM: routing, metadata, nesting, streaming, batch, tools, structured output, errors, secrets."""

from __future__ import annotations

import functools
import json
import logging
import re
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.callbacks import BaseCallbackHandler, get_usage_metadata_callback
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from lc_fakes import ToolEchoChatModel, children, shared_router, split_threshold
from pydantic import BaseModel, SecretStr

from langchain_routellm import ChatRouteLLM, routing_text
from routellm_core.errors import (
    CheckpointError,
    InvalidInputError,
    InvalidThresholdError,
    ModelCallError,
    UnknownRouterError,
)
from routellm_core.routers.random import RandomRouter

PROMPTS = [
    "hi",
    "What is the capital of France?",
    "Prove that there are infinitely many prime numbers, then generalise the argument to primes of the form 4k+3.",
    "Write a Python function that merges overlapping intervals and analyse its complexity.",
    "thanks!",
]
IMAGE = {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"}


@pytest.fixture(scope="module")
def router() -> Any:
    return shared_router()


@functools.cache
def mixed() -> float:
    """A threshold that splits PROMPTS between the two children under the shared router."""
    return split_threshold(PROMPTS)


def make(router: Any, threshold: float | None = -1.0, **kwargs: Any) -> tuple[ChatRouteLLM, dict[str, Any]]:
    kids = children(**kwargs.pop("child_options", {}))
    threshold = mixed() if threshold == -1.0 else threshold
    return ChatRouteLLM(**kids, router=router, threshold=threshold, **kwargs), kids


def expected_choice(router: Any, text: str, threshold: float | None = None) -> str:
    return router.decide([text], mixed() if threshold is None else threshold)[0].choice


class Recorder(BaseCallbackHandler):
    """Records chain / chat-model runs with their parents, tags and metadata, and token events."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.tokens: dict[UUID, int] = {}
        self.ends: list[UUID] = []

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self._add("chain", run_id, kw)

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kw: Any) -> None:
        self._add("chat", run_id, kw)

    def _add(self, kind: str, run_id: UUID, kw: dict[str, Any]) -> None:
        self.runs.append(
            {
                "kind": kind,
                "run_id": run_id,
                "parent": kw.get("parent_run_id"),
                "name": kw.get("name"),
                "tags": kw.get("tags") or [],
                "metadata": kw.get("metadata") or {},
                "params": kw.get("invocation_params") or {},
            }
        )

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kw: Any) -> None:
        self.tokens[run_id] = self.tokens.get(run_id, 0) + 1

    def on_llm_end(self, response: Any, *, run_id: UUID, **kw: Any) -> None:
        self.ends.append(run_id)

    def one(self, **match: Any) -> dict[str, Any]:
        found = [r for r in self.runs if all(r.get(k) == v for k, v in match.items())]
        assert len(found) == 1, (match, self.runs)
        return found[0]

    def chat_runs(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["kind"] == "chat"]


# ---- routing text -----------------------------------------------------------------------------------------
def without_id(record: dict[str, Any]) -> dict[str, Any]:
    """A decision record without its (per-call) decision id, nor its attempts' token counts and costs (a stream's
    first chunk carries the record before the usage is known)."""
    unknown = {"input_tokens": None, "output_tokens": None, "cost": None}
    out = {k: v for k, v in record.items() if k not in ("decision_id", "cost")}
    out["attempts"] = [{**a, **unknown} for a in record.get("attempts", [])]
    return out


class RunMetadata(BaseCallbackHandler):
    """Collects the metadata of every chain run started (the router's own run comes first)."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, Any]] = []

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, metadata: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        self.metadata.append(dict(metadata or {}))


class TestRoutingText:
    def test_latest_human_message(self) -> None:
        messages = [
            SystemMessage("be brief"),
            HumanMessage("first question"),
            AIMessage("first answer"),
            HumanMessage("second question"),
        ]
        assert routing_text(messages) == "second question"

    def test_text_parts_of_multimodal_content(self) -> None:
        message = HumanMessage(content=[{"type": "text", "text": "Describe"}, IMAGE, "and compare"])
        assert routing_text([message]) == "Describe\nand compare"

    def test_trailing_image_only_message_falls_back_to_previous_human_text(self) -> None:
        messages = [HumanMessage("What is in these pictures?"), AIMessage("Send them."), HumanMessage([IMAGE])]
        assert routing_text(messages) == "What is in these pictures?"

    def test_tool_result_is_never_the_routing_text(self) -> None:
        messages = [
            HumanMessage("weather in Paris?"),
            AIMessage("", tool_calls=[{"name": "w", "args": {}, "id": "1", "type": "tool_call"}]),
            ToolMessage("sunny", tool_call_id="1"),
        ]
        assert routing_text(messages) == "weather in Paris?"
        assert routing_text(messages, "conversation") == "user: weather in Paris?"

    def test_conversation_mode(self) -> None:
        messages = [SystemMessage("sys"), HumanMessage("q1"), AIMessage("a1"), HumanMessage("q2")]
        assert routing_text(messages, "conversation") == "user: q1\n\nassistant: a1\n\nuser: q2"

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["human", "ai", "tool", "system", "human_image"]),
                st.text(alphabet="abc xyz", max_size=12),
            ),
            max_size=8,
        )
    )
    def test_property_latest_human_text_and_never_a_tool_result(self, spec: list[tuple[str, str]]) -> None:
        messages: list[Any] = []
        for kind, text in spec:
            if kind == "human":
                messages.append(HumanMessage(text))
            elif kind == "human_image":
                messages.append(HumanMessage([IMAGE]))
            elif kind == "ai":
                messages.append(AIMessage(text))
            elif kind == "tool":
                messages.append(ToolMessage("TOOL-RESULT " + text, tool_call_id="1"))
            else:
                messages.append(SystemMessage(text))
        has_human = any(isinstance(m, HumanMessage) for m in messages)
        human_texts = [m.text.strip() for m in messages if isinstance(m, HumanMessage) and m.text.strip()]
        valid = {"last_human": bool(human_texts), "conversation": has_human and bool(human_texts)}
        for mode, ok in valid.items():
            if not ok:
                with pytest.raises(InvalidInputError):
                    routing_text(messages, mode)
                continue
            text = routing_text(messages, mode)
            assert text.strip()
            assert "TOOL-RESULT" not in text
            if mode == "last_human":
                assert text == human_texts[-1]

    def test_chat_message_with_user_role_counts_as_human(self) -> None:
        assert routing_text([ChatMessage(role="user", content="hello")]) == "hello"

    @pytest.mark.parametrize(
        ("messages", "match"),
        [
            ([], "no messages"),
            ([SystemMessage("only a system prompt")], "no user message"),
            ([AIMessage("hello")], "no user message"),
            ([HumanMessage([IMAGE])], "only images"),
            ([HumanMessage("   ")], "no text"),
        ],
    )
    def test_bad_input(self, messages: list[Any], match: str) -> None:
        with pytest.raises(InvalidInputError, match=match):
            routing_text(messages)


# ---- construction ------------------------------------------------------------------------------------------
class TestConstruction:
    def test_minimal_constructor_names(self, router: Any) -> None:
        kids = children()
        llm = ChatRouteLLM(strong=kids["strong"], weak=kids["weak"], router=router, threshold=0.5)
        assert llm.policy.threshold == 0.5
        assert llm.model_names == {"strong": "fake-strong-1", "weak": "fake-weak-1"}
        assert llm._llm_type == "routellm"

    def test_default_threshold_routes_half_the_calibration_traffic(self, router: Any) -> None:
        # The shipped router scores nearly everything above 0.5: a fixed 0.5 would send it all to strong.
        threshold = ChatRouteLLM(**children(), router=router).policy.threshold
        assert threshold == pytest.approx(router.threshold_for(0.5))
        assert threshold > 0.55
        uncalibrated = ChatRouteLLM(**children(), router="random").policy.threshold
        assert uncalibrated == 0.5

    def test_router_by_registry_name(self) -> None:
        llm = ChatRouteLLM(**children(), router="random")
        assert llm.policy.router_name == "random"

    def test_shipped_default_router_and_its_calibration(self, router: Any) -> None:
        assert ChatRouteLLM.model_fields["router"].default == "default"
        llm = ChatRouteLLM(**children())
        assert llm.policy.router is not router and llm.policy.router_name == "default"  # not its type, difficulty
        assert llm.invoke(PROMPTS[1]).response_metadata["routellm"]["router"] == "default"
        assert ChatRouteLLM(**children(), router=router).policy.router_name == router.name == "difficulty"
        calibrated = ChatRouteLLM(**children(), strong_fraction=0.3)
        assert calibrated.policy.threshold == pytest.approx(router.threshold_for(0.3))

    def test_shipped_fast_router_by_name(self) -> None:
        llm = ChatRouteLLM(**children(), router="fast", strong_fraction=0.5)
        fast = llm.policy.router
        assert fast.get_embedder().name.startswith("model2vec:")
        assert llm.policy.threshold == pytest.approx(fast.threshold_for(0.5))
        meta = llm.invoke(PROMPTS[1]).response_metadata["routellm"]
        assert meta["win_rate"] == pytest.approx(float(fast.predict_win_rate([PROMPTS[1]])[0]))

    def test_unknown_router_keeps_its_error_type(self) -> None:
        with pytest.raises(UnknownRouterError, match="no-such-router"):
            ChatRouteLLM(**children(), router="no-such-router")

    @pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan")])
    def test_bad_threshold(self, router: Any, threshold: float) -> None:
        with pytest.raises(InvalidThresholdError):
            ChatRouteLLM(**children(), router=router, threshold=threshold)

    def test_threshold_and_strong_fraction_are_exclusive(self, router: Any) -> None:
        with pytest.raises(InvalidThresholdError, match="either"):
            ChatRouteLLM(**children(), router=router, threshold=0.3, strong_fraction=0.3)

    def test_strong_fraction_resolves_through_calibration(self) -> None:
        calibrated = RandomRouter()
        calibrated.calibrated_thresholds = {"0.25": 0.75, "0.5": 0.5}
        llm = ChatRouteLLM(**children(), router=calibrated, strong_fraction=0.25)
        assert llm.policy.threshold == pytest.approx(0.75)
        with pytest.raises(CheckpointError, match="calibrat"):
            ChatRouteLLM(**children(), router=RandomRouter(), strong_fraction=0.25)

    def test_children_must_be_chat_models(self, router: Any) -> None:
        with pytest.raises(TypeError, match="strong must be a chat model"):
            ChatRouteLLM(strong=StrOutputParser(), weak=children()["weak"], router=router)

    def test_string_children_go_through_init_chat_model(self, router: Any, monkeypatch: Any) -> None:
        import langchain.chat_models

        seen: list[tuple[str, dict[str, Any]]] = []

        def fake_init(spec: str, **kwargs: Any) -> BaseChatModel:
            seen.append((spec, kwargs))
            return ToolEchoChatModel(label=spec, model=spec.split(":", 1)[1])

        monkeypatch.setattr(langchain.chat_models, "init_chat_model", fake_init)
        llm = ChatRouteLLM(
            strong="openai:gpt-4o",
            weak="openai:gpt-4o-mini",
            router=router,
            temperature=0.0,
            max_tokens=64,
            timeout=30,
            max_retries=5,
            api_key="sk-TOP-SECRET",
            child_kwargs={"base_url": "http://localhost:1"},
        )
        assert llm.model_names == {"strong": "gpt-4o", "weak": "gpt-4o-mini"}
        expected = {
            "temperature": 0.0,
            "max_tokens": 64,
            "timeout": 30,
            "max_retries": 5,
            "api_key": "sk-TOP-SECRET",
            "base_url": "http://localhost:1",
        }
        assert seen == [("openai:gpt-4o", expected), ("openai:gpt-4o-mini", expected)]
        assert "sk-TOP-SECRET" not in repr(llm)
        assert "sk-TOP-SECRET" not in str(llm)

    def test_unavailable_provider_string_is_a_clear_error(self, router: Any) -> None:
        with pytest.raises(ValueError, match="cannot build the strong model from 'nosuchprovider:x'"):
            ChatRouteLLM(strong="nosuchprovider:x", weak=children()["weak"], router=router)

    @pytest.mark.parametrize(
        ("typo", "option"),
        [
            ("treshold", "threshold"),
            ("strong_frac", "strong_fraction"),
            ("objectve", "objective"),
            ("escalte", "escalate"),
        ],
    )
    def test_misspelt_option_is_an_error_naming_the_nearest(self, router: Any, typo: str, option: str) -> None:
        with pytest.raises(
            InvalidInputError, match=rf"ChatRouteLLM: unknown option '{typo}' \(did you mean '{option}'\?\)"
        ):
            ChatRouteLLM(**children(), router=router, **{typo: 0.5})

    def test_every_unknown_option_is_named_and_provider_kwargs_are_pointed_to_child_kwargs(self, router: Any) -> None:
        with pytest.raises(
            InvalidInputError, match=r"options 'fallbak' \(did you mean 'fallback'\?\), 'base_url';.*child_kwargs"
        ):
            ChatRouteLLM(strong="openai:gpt-4o", weak="openai:gpt-4o-mini", router=router, fallbak=True, base_url="x")
        llm = ChatRouteLLM(**children(), router=router, threshold=0.3)
        with pytest.raises(
            InvalidInputError, match=r"ChatRouteLLM.model_copy: unknown option 'treshold' \(did you mean"
        ):
            llm.model_copy(update={"treshold": 0.9})
        assert llm.model_copy(update={"threshold": 0.9}).policy.threshold == 0.9

    def test_langchain_fields_and_serialized_kwargs_still_construct(self, router: Any) -> None:
        from langchain_core.load import dumpd
        from langchain_core.rate_limiters import InMemoryRateLimiter

        limiter = InMemoryRateLimiter(requests_per_second=100)
        recorder = Recorder()
        llm = ChatRouteLLM(
            **children(),
            router=router,
            threshold=0.0,
            callbacks=[recorder],
            tags=["app"],
            metadata={"team": "search"},
            cache=False,
            verbose=False,
            rate_limiter=limiter,
            disable_streaming=False,
            output_version="v1",
            name="my-router",
        )
        assert (llm.rate_limiter, llm.cache, llm.output_version, llm.get_name()) == (limiter, False, "v1", "my-router")
        message = llm.invoke(PROMPTS[0])
        assert message.response_metadata["output_version"] == "v1"
        run = recorder.one(kind="chain", name="my-router")
        assert "app" in run["tags"] and run["metadata"]["team"] == "search"
        again = ChatRouteLLM(**{name: getattr(llm, name) for name in ChatRouteLLM.model_fields})  # every field taken
        assert again.policy.threshold == 0.0 and again.tags == ["app"] and again.rate_limiter is limiter
        assert dumpd(llm)["id"][-1] == "ChatRouteLLM"
        assert llm.bind_tools([]).invoke(PROMPTS[0]).text.startswith("[strong]")
        assert isinstance(llm.with_structured_output(Answer).invoke(PROMPTS[0]), Answer)


# ---- invoke / metadata / tracing ---------------------------------------------------------------------------
class TestInvoke:
    def test_prompts_exercise_both_children(self, router: Any) -> None:
        assert {expected_choice(router, p) for p in PROMPTS} == {"strong", "weak"}

    @pytest.mark.parametrize("prompt", PROMPTS)
    def test_routes_to_the_child_the_router_picks(self, router: Any, prompt: str) -> None:
        llm, _ = make(router)
        decision = router.decide([prompt], mixed())[0]
        message = llm.invoke(prompt)
        assert isinstance(message, AIMessage)
        assert message.text.startswith(f"[{decision.choice}]")
        meta = message.response_metadata["routellm"]
        assert meta == {
            "router": router.name,
            "win_rate": pytest.approx(decision.win_rate),
            "threshold": mixed(),
            "choice": decision.choice,
            "model": f"fake-{decision.choice}-1",
            "served": decision.choice,
            "fallback": False,
            "fallback_from": None,
            "fallback_error": None,
            "continued": False,
            "escalated": False,
            "attempts": [
                {
                    "model": f"fake-{decision.choice}-1",
                    "side": decision.choice,
                    "role": "answer",
                    "kept": True,
                    "signals": {},
                    "confidence": None,
                    "error": None,
                    "input_tokens": meta["attempts"][0]["input_tokens"],
                    "output_tokens": meta["attempts"][0]["output_tokens"],
                    "cost": None,
                }
            ],
            "cost": None,
            "ladder": None,
            "cached": False,
            "decision_id": meta["decision_id"],
        }
        assert re.fullmatch(r"[0-9a-f]{32}", meta["decision_id"])

    def test_threshold_extremes(self, router: Any) -> None:
        strong_only, _ = make(router, threshold=0.0)
        weak_only, _ = make(router, threshold=1.0)
        for prompt in PROMPTS:
            assert strong_only.invoke(prompt).text.startswith("[strong]")
            assert weak_only.invoke(prompt).text.startswith("[weak]")

    def test_routes_on_latest_human_message_by_default(self, router: Any) -> None:
        llm, _ = make(router)
        conversation = [HumanMessage(PROMPTS[2]), AIMessage("ok"), HumanMessage(PROMPTS[0])]
        meta = llm.invoke(conversation).response_metadata["routellm"]
        assert meta["win_rate"] == pytest.approx(router.decide([PROMPTS[0]], mixed())[0].win_rate)

    def test_route_on_conversation(self, router: Any) -> None:
        llm, _ = make(router, route_on="conversation")
        conversation = [HumanMessage(PROMPTS[2]), AIMessage("ok"), HumanMessage(PROMPTS[0])]
        meta = llm.invoke(conversation).response_metadata["routellm"]
        text = f"user: {PROMPTS[2]}\n\nassistant: ok\n\nuser: {PROMPTS[0]}"
        assert meta["win_rate"] == pytest.approx(router.decide([text], mixed())[0].win_rate)

    def test_multimodal_message_routes_on_its_text(self, router: Any) -> None:
        llm, _ = make(router)
        message = HumanMessage(content=[{"type": "text", "text": PROMPTS[3]}, IMAGE])
        meta = llm.invoke([message]).response_metadata["routellm"]
        assert meta["win_rate"] == pytest.approx(router.decide([PROMPTS[3]], mixed())[0].win_rate)

    async def test_ainvoke_matches_invoke(self, router: Any) -> None:
        llm, _ = make(router)
        for prompt in PROMPTS:
            sync, asyn = llm.invoke(prompt), await llm.ainvoke(prompt)
            assert sync.text == asyn.text
            assert without_id(sync.response_metadata["routellm"]) == without_id(asyn.response_metadata["routellm"])

    def test_batch_routes_each_input(self, router: Any) -> None:
        llm, _ = make(router)
        results = llm.batch(PROMPTS)
        assert [r.response_metadata["routellm"]["choice"] for r in results] == [
            expected_choice(router, p) for p in PROMPTS
        ]

    async def test_abatch_routes_each_input(self, router: Any) -> None:
        llm, _ = make(router)
        results = await llm.abatch(PROMPTS)
        assert [r.text.split("]")[0][1:] for r in results] == [expected_choice(router, p) for p in PROMPTS]

    def test_usage_metadata_passes_through_and_is_counted_once(self, router: Any) -> None:
        llm, kids = make(router, threshold=0.0)
        direct = kids["strong"].invoke("count my tokens")
        with get_usage_metadata_callback() as usage:
            routed = llm.invoke("count my tokens")
        assert routed.usage_metadata == direct.usage_metadata
        assert routed.response_metadata["model_name"] == "fake-strong-1"
        assert usage.usage_metadata == {"fake-strong-1": direct.usage_metadata}

    def test_stop_sequences(self, router: Any) -> None:
        llm, _ = make(router, threshold=1.0, stop=["said"])
        assert llm.invoke("hello").text == "[weak] You "
        assert llm.invoke("hello", stop=["You"]).text == "[weak] "

    def test_output_version_v1(self, router: Any) -> None:
        llm, _ = make(router, output_version="v1")
        message = llm.invoke("hello")
        assert isinstance(message.content, list)
        assert message.content[0]["type"] == "text"
        assert message.response_metadata["output_version"] == "v1"
        assert "routellm" in message.response_metadata

    def test_ls_params_report_the_chosen_model(self, router: Any) -> None:
        llm, _ = make(router)
        assert llm._get_ls_params() == {
            "ls_provider": "routellm",
            "ls_model_name": "fake-strong-1|fake-weak-1",
            "ls_model_type": "chat",
        }
        runs = RunMetadata()
        weak_prompt = next(p for p in PROMPTS if expected_choice(router, p) == "weak")
        llm.invoke(weak_prompt, {"callbacks": [runs]})
        router_run = runs.metadata[0]
        assert router_run["ls_model_name"] == "fake-weak-1"
        assert router_run["ls_provider"] == "toolechochatmodel"
        assert router_run["routellm"]["choice"] == "weak"
        assert llm._get_ls_params(model="override")["ls_model_name"] == "override"


class TestTracing:
    @pytest.mark.parametrize("mode", ["invoke", "stream", "batch"])
    def test_child_run_nests_under_router_run(self, router: Any, mode: str) -> None:
        llm, _ = make(router)
        recorder = Recorder()
        config = {"callbacks": [recorder], "tags": ["user-tag"], "metadata": {"user": "u1"}}
        if mode == "invoke":
            llm.invoke(PROMPTS[1], config=config)
        elif mode == "stream":
            list(llm.stream(PROMPTS[1], config=config))
        else:
            llm.batch([PROMPTS[1]], config=config)
        choice = expected_choice(router, PROMPTS[1])
        router_run = recorder.one(kind="chain", name="ChatRouteLLM")
        assert router_run["parent"] is None
        assert router_run["metadata"]["routellm"]["choice"] == choice
        assert router_run["metadata"]["routellm"]["model"] == f"fake-{choice}-1"
        assert router_run["metadata"]["ls_model_name"] == f"fake-{choice}-1"
        assert router_run["metadata"]["user"] == "u1"
        assert f"routellm:{choice}" in router_run["tags"]
        assert "user-tag" in router_run["tags"]
        (child_run,) = recorder.chat_runs()
        assert child_run["parent"] == router_run["run_id"]
        assert child_run["params"]["label"] == choice
        assert child_run["metadata"]["routellm"]["choice"] == choice  # inherited by the child's run
        assert child_run["metadata"]["ls_model_name"] == f"fake-{choice}-1"
        assert f"routellm:{choice}" in child_run["tags"]

    async def test_async_child_run_nests_under_router_run(self, router: Any) -> None:
        llm, _ = make(router)
        recorder = Recorder()
        await llm.ainvoke(PROMPTS[2], config={"callbacks": [recorder]})
        async for _ in llm.astream(PROMPTS[2], config={"callbacks": [recorder]}):
            pass
        router_runs = [r for r in recorder.runs if r["name"] == "ChatRouteLLM"]
        assert len(router_runs) == 2
        chat_runs = recorder.chat_runs()
        assert [c["parent"] for c in chat_runs] == [r["run_id"] for r in router_runs]

    def test_nests_inside_a_chain(self, router: Any) -> None:
        llm, _ = make(router)
        recorder = Recorder()
        chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | llm | StrOutputParser()
        out = chain.invoke({"q": PROMPTS[1]}, config={"callbacks": [recorder]})
        assert out.startswith(f"[{expected_choice(router, PROMPTS[1])}]")
        sequence = recorder.one(kind="chain", name="RunnableSequence")
        router_run = recorder.one(kind="chain", name="ChatRouteLLM")
        assert router_run["parent"] == sequence["run_id"]
        (child_run,) = recorder.chat_runs()
        assert child_run["parent"] == router_run["run_id"]

    def test_generate_path_nests_under_router_chat_run(self, router: Any) -> None:
        llm, _ = make(router)
        recorder = Recorder()
        result = llm.generate([[HumanMessage(PROMPTS[1])]], callbacks=[recorder])
        outer, inner = recorder.chat_runs()
        assert inner["parent"] == outer["run_id"]
        assert "routellm" in result.generations[0][0].message.response_metadata

    @pytest.mark.parametrize("path", ["generate", "agenerate", "stream_events_v3"])
    async def test_hook_paths_count_usage_once_and_carry_the_decision(self, router: Any, path: str) -> None:
        llm, kids = make(router, threshold=0.0)
        direct = kids["strong"].invoke("count my tokens")
        with get_usage_metadata_callback() as usage:
            if path == "generate":
                generation = llm.generate([[HumanMessage("count my tokens")]]).generations[0][0]
            elif path == "agenerate":
                generation = (await llm.agenerate([[HumanMessage("count my tokens")]])).generations[0][0]
            else:
                stream = llm.stream_events("count my tokens", version="v3")
                for _ in stream:
                    pass
                generation = None
        # The child's nested chat-model run reports the usage; the router's own run does not report it again.
        assert usage.usage_metadata == {"fake-strong-1": direct.usage_metadata}
        if generation is not None:
            record = generation.generation_info["routellm"]
            assert record == generation.message.response_metadata["routellm"]
            assert record["choice"] == "strong" and record["model"] == "fake-strong-1"

    def test_streaming_field_streams_the_child_under_invoke(self, router: Any) -> None:
        llm, _ = make(router, streaming=True)
        recorder = Recorder()
        message = llm.invoke("stream me please", config={"callbacks": [recorder]})
        assert isinstance(message, AIMessage) and not isinstance(message, AIMessageChunk)
        (child_run,) = recorder.chat_runs()
        assert recorder.tokens[child_run["run_id"]] > 3
        assert message.response_metadata["routellm"]["choice"] in ("strong", "weak")


# ---- streaming ---------------------------------------------------------------------------------------------
class TestStreaming:
    def test_token_by_token_with_decision_first_and_last_marked(self, router: Any) -> None:
        llm, _ = make(router)
        prompt = "Explain the difference between TCP and UDP in detail"
        chunks = list(llm.stream(prompt))
        assert all(isinstance(c, AIMessageChunk) for c in chunks)
        assert len(chunks) > 5
        assert chunks[0].response_metadata["routellm"]["choice"] == expected_choice(router, prompt)
        assert all("routellm" not in c.response_metadata for c in chunks[1:])
        assert chunks[-1].chunk_position == "last"
        full = chunks[0]
        for c in chunks[1:]:
            full += c
        invoked = llm.invoke(prompt)
        assert full.text == invoked.text
        assert without_id(full.response_metadata["routellm"]) == without_id(invoked.response_metadata["routellm"])
        assert full.usage_metadata == invoked.usage_metadata

    async def test_astream(self, router: Any) -> None:
        llm, _ = make(router)
        chunks = [c async for c in llm.astream(PROMPTS[3])]
        assert chunks[0].response_metadata["routellm"]["choice"] == expected_choice(router, PROMPTS[3])
        assert chunks[-1].chunk_position == "last"
        assert "".join(c.text for c in chunks).startswith(f"[{expected_choice(router, PROMPTS[3])}]")

    async def test_astream_v1_output(self, router: Any) -> None:
        llm, _ = make(router, output_version="v1")
        full = None
        async for c in llm.astream(PROMPTS[1]):
            full = c if full is None else full + c
        assert full is not None
        assert [b["type"] for b in full.content_blocks] == ["text"]

    def test_disable_streaming_yields_one_chunk(self, router: Any) -> None:
        llm, _ = make(router, disable_streaming=True)
        (chunk,) = list(llm.stream("hello"))
        assert chunk.chunk_position == "last"
        assert "routellm" in chunk.response_metadata


# ---- tools and structured output ---------------------------------------------------------------------------
@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"sunny in {city}"


class Answer(BaseModel):
    """An answer with a confidence."""

    answer: str
    confidence: int


class TestToolsAndStructuredOutput:
    @pytest.mark.parametrize("threshold", [0.0, 1.0])
    def test_bind_tools_binds_both_children(self, router: Any, threshold: float) -> None:
        llm, kids = make(router, threshold=threshold)
        bound = llm.bind_tools([get_weather], tool_choice="any")
        message = bound.invoke("What is the weather in 'Oslo'?")
        assert message.tool_calls[0]["name"] == "get_weather"
        assert message.tool_calls[0]["args"] == {"city": "Oslo"}
        side = "strong" if threshold == 0.0 else "weak"
        assert message.response_metadata["routellm"]["choice"] == side
        assert kids[side].calls == ["HumanMessage"]
        # the original router is unchanged and shares the policy
        assert llm.invoke("What is the weather in 'Oslo'?").tool_calls == []
        assert bound.bound.policy is llm.policy

    def test_tool_result_step(self, router: Any) -> None:
        llm, _ = make(router)
        bound = llm.bind_tools([get_weather])
        first = bound.invoke([HumanMessage("weather in 'Lima'?")])
        result = get_weather.invoke(first.tool_calls[0])
        final = bound.invoke([HumanMessage("weather in 'Lima'?"), first, result])
        assert final.text.endswith("sunny in Lima")
        assert final.response_metadata["routellm"]["choice"] == first.response_metadata["routellm"]["choice"]
        assert final.response_metadata["routellm"]["continued"] is True

    def test_with_structured_output(self, router: Any) -> None:
        llm, _ = make(router)
        structured = llm.with_structured_output(Answer)
        recorder = Recorder()
        result = structured.invoke("Give the answer 'yes' with confidence 9", config={"callbacks": [recorder]})
        assert result == Answer(answer="yes", confidence=9)
        choice = expected_choice(router, "Give the answer 'yes' with confidence 9")
        router_run = recorder.one(kind="chain", name="ChatRouteLLM[structured]")
        assert router_run["metadata"]["routellm"]["choice"] == choice
        (child_run,) = recorder.chat_runs()
        assert child_run["params"]["label"] == choice

    def test_with_structured_output_include_raw(self, router: Any) -> None:
        llm, _ = make(router)
        result = llm.with_structured_output(Answer, include_raw=True).invoke("answer 'yes' confidence 3")
        assert result["parsed"] == Answer(answer="yes", confidence=3)
        assert result["raw"].response_metadata["routellm"]["choice"] == expected_choice(
            router, "answer 'yes' confidence 3"
        )


# ---- errors and reliability --------------------------------------------------------------------------------
class TestErrors:
    @pytest.mark.parametrize(
        ("messages", "match"),
        [
            ([], "no messages"),
            ([SystemMessage("system only")], "no user message"),
            ([HumanMessage([IMAGE, IMAGE])], "only images"),
        ],
    )
    def test_bad_input_raises_before_any_child_call(self, router: Any, messages: Any, match: str) -> None:
        llm, kids = make(router)
        with pytest.raises(InvalidInputError, match=match):
            llm.invoke(messages)
        with pytest.raises(InvalidInputError, match=match):
            list(llm.stream(messages))
        assert kids["strong"].calls == kids["weak"].calls == []

    async def test_bad_input_async(self, router: Any) -> None:
        llm, _ = make(router)
        with pytest.raises(InvalidInputError):
            await llm.ainvoke([SystemMessage("system only")])

    @pytest.mark.parametrize(
        "error", [RuntimeError("upstream 500"), TimeoutError("request timed out after 30s"), ValueError("bad")]
    )
    def test_child_error_names_the_chosen_model_and_is_not_retried(self, router: Any, error: Exception) -> None:
        llm, kids = make(router, threshold=0.0, child_options={"error": error})
        with pytest.raises(ModelCallError) as info:
            llm.invoke("hello")
        err = info.value
        assert "'fake-strong-1'" in str(err)
        assert type(error).__name__ in str(err)
        assert err.model == "fake-strong-1"
        assert err.__cause__ is error
        assert err.decision.choice == "strong"
        assert kids["strong"].calls == ["HumanMessage"]  # called once: no retry of our own
        assert kids["weak"].calls == []  # nothing silently sent to the other model

    async def test_async_child_error(self, router: Any) -> None:
        llm, kids = make(router, threshold=1.0, child_options={"error": TimeoutError("timed out")})
        with pytest.raises(ModelCallError, match=r"'fake-weak-1'.*TimeoutError"):
            await llm.ainvoke("hello")
        assert kids["strong"].calls == []

    def test_fallback_answers_and_metadata_says_so(self, router: Any, caplog: Any) -> None:
        kids = children()
        kids["strong"].error = TimeoutError("timed out")
        llm = ChatRouteLLM(**kids, router=router, threshold=0.0, fallback=True)
        with caplog.at_level(logging.WARNING, logger="langchain_routellm"):
            message = llm.invoke("please answer this secret prompt")
        assert message.text.startswith("[weak]")
        meta = message.response_metadata["routellm"]
        assert meta["choice"] == "strong"
        assert meta["model"] == "fake-weak-1"
        assert meta["fallback"] is True
        assert meta["fallback_from"] == "fake-strong-1"
        assert meta["fallback_error"] == "TimeoutError"
        assert any("falling back" in r.getMessage() for r in caplog.records)
        assert all("secret prompt" not in r.getMessage() for r in caplog.records)

    async def test_async_fallback_on_empty_message(self, router: Any) -> None:
        kids = children()
        kids["weak"].empty = True
        llm = ChatRouteLLM(**kids, router=router, threshold=1.0, fallback=True)
        message = await llm.ainvoke("hello")
        assert message.text.startswith("[strong]")
        assert message.response_metadata["routellm"]["fallback_error"] == "EmptyResponseError"

    def test_both_fail_names_both_models(self, router: Any) -> None:
        llm, _ = make(router, threshold=0.0, fallback=True, child_options={"error": RuntimeError("down")})
        with pytest.raises(ModelCallError, match=r"'fake-strong-1'.*fallback weak model 'fake-weak-1'") as info:
            llm.invoke("hello")
        assert info.value.model == "fake-strong-1"
        assert info.value.fallback_model == "fake-weak-1"

    def test_empty_message_is_an_error_naming_the_model(self, router: Any) -> None:
        llm, kids = make(router, threshold=0.0, child_options={"empty": True})
        with pytest.raises(ModelCallError, match="'fake-strong-1' returned an empty message"):
            llm.invoke("hello")
        assert kids["weak"].calls == []
        with pytest.raises(ModelCallError, match="empty"):
            list(llm.stream("hello"))

    @pytest.mark.parametrize("fallback", [False, True])
    def test_mid_stream_failure_reports_delivered_chunks(self, router: Any, fallback: bool) -> None:
        llm, kids = make(router, threshold=0.0, fallback=fallback, child_options={"fail_after_chunks": 4})
        received: list[AIMessageChunk] = []
        with pytest.raises(ModelCallError) as info:
            for chunk in llm.stream("one two three four five six seven"):
                received.append(chunk)
        err = info.value
        assert err.chunks_delivered == len(received) == 4
        assert "4 streamed chunk(s) had already been delivered" in str(err)
        assert "'fake-strong-1'" in str(err)
        assert isinstance(err.__cause__, ConnectionError)
        assert kids["weak"].calls == []  # never silently continued on the other model

    async def test_async_mid_stream_failure(self, router: Any) -> None:
        llm, _ = make(router, threshold=1.0, child_options={"fail_after_chunks": 3})
        received = []
        with pytest.raises(ModelCallError) as info:
            async for chunk in llm.astream("one two three four five"):
                received.append(chunk)
        assert info.value.chunks_delivered == len(received) == 3

    def test_stream_failure_before_any_content_falls_back(self, router: Any) -> None:
        kids = children()
        kids["strong"].fail_after_chunks = 1  # fails right after the empty opening chunk
        llm = ChatRouteLLM(**kids, router=router, threshold=0.0, fallback=True)
        chunks = list(llm.stream("hello there"))
        assert "".join(c.text for c in chunks).startswith("[weak]")
        assert chunks[0].response_metadata["routellm"]["fallback"] is True
        assert chunks[-1].chunk_position == "last"


# ---- secrets and logging -----------------------------------------------------------------------------------
class TestSecretsAndLogging:
    def test_child_keys_never_in_repr_metadata_or_traces(self, router: Any) -> None:
        secret = "sk-live-DO-NOT-LEAK-123"
        kids = children(api_key=SecretStr(secret))
        llm = ChatRouteLLM(**kids, router=router, api_key=SecretStr("sk-router-DO-NOT-LEAK"))
        recorder = Recorder()
        message = llm.invoke("hello", config={"callbacks": [recorder]})
        for text in (
            repr(llm),
            str(llm),
            json.dumps(message.response_metadata, default=str),
            json.dumps(llm._get_ls_params(), default=str),
            json.dumps(llm._identifying_params, default=str),
            json.dumps(recorder.runs, default=str),
            repr(llm.bind_tools([get_weather])),
        ):
            assert secret not in text
            assert "sk-router-DO-NOT-LEAK" not in text

    def test_prompts_are_not_logged_at_info_or_above(self, router: Any, caplog: Any) -> None:
        llm, _ = make(router)
        prompt = "my private medical question about insulin dosing"
        with caplog.at_level(logging.DEBUG):
            llm.invoke(prompt)
            list(llm.stream(prompt))
        assert any("routellm decision" in r.getMessage() for r in caplog.records)
        for record in caplog.records:
            if record.levelno >= logging.INFO or record.name.startswith("langchain_routellm"):
                assert "insulin" not in record.getMessage()


async def test_an_async_stream_closed_early_closes_the_child_stream_at_once(router: Any) -> None:
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.outputs import ChatGenerationChunk

    closed: list[str] = []

    class Tracking(GenericFakeChatModel):
        async def _astream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
            try:
                for word in ["a ", "b ", "c "]:
                    yield ChatGenerationChunk(message=AIMessageChunk(content=word))
            finally:
                closed.append("child")

    kids = {"strong": Tracking(messages=iter([])), "weak": Tracking(messages=iter([]))}
    llm = ChatRouteLLM(**kids, router=router, threshold=0.0, strong_name="s", weak_name="w")
    stream = llm.astream("hello there")
    assert (await anext(stream)).content == "a "
    await stream.aclose()
    assert closed == ["child"], "closed by the router, not later by the event loop's finalizer"


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_no_fallback_once_tokens_reached_the_callers_callbacks(router: Any, mode: str) -> None:
    """A non-streamed call whose side streamed tokens through the callbacks (LangGraph messages mode, astream_events)
    and then failed must not fall back: the caller already saw part of one model's answer."""
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.outputs import ChatResult

    from routellm_core.errors import StreamInterruptedError

    class FailsAfterTokens(ToolEchoChatModel):
        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
            assert isinstance(run_manager, CallbackManagerForLLMRun)
            run_manager.on_llm_new_token("PARTIAL ")
            raise ConnectionError("reset mid-answer")

    class FailsBeforeTokens(ToolEchoChatModel):
        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
            raise ConnectionError("refused")

    for strong, expect_fallback in (
        (FailsAfterTokens(label="strong"), False),
        (FailsBeforeTokens(label="strong"), True),
    ):
        weak = ToolEchoChatModel(label="weak", model="fake-weak-1")
        llm = ChatRouteLLM(strong=strong, weak=weak, router=router, threshold=0.0, fallback=True, strong_name="s")
        call = llm.invoke if mode == "invoke" else None
        if expect_fallback:
            message = call("hi") if call else await llm.ainvoke("hi")
            assert message.text.startswith("[weak]")
            continue
        with pytest.raises(StreamInterruptedError) as info:
            if call:
                call("hi")
            else:
                await llm.ainvoke("hi")
        assert info.value.partial_text == "PARTIAL " and info.value.chunks_delivered == 1
        assert isinstance(info.value.__cause__, ConnectionError)
        assert weak.calls == [], "the other model is never called once the caller saw tokens"


def test_model_copy_with_new_routing_fields_routes_by_them(router: Any) -> None:
    llm = ChatRouteLLM(**children(), router=router, threshold=0.0)
    assert llm.invoke("hi").text.startswith("[strong]")
    weak_only = llm.model_copy(update={"threshold": 1.0})
    assert weak_only.invoke("hi").text.startswith("[weak]")
    assert llm.invoke("hi").text.startswith("[strong]"), "the original keeps its own policy"
    renamed = llm.model_copy(update={"strong_name": "big"})
    assert renamed.invoke("hi").response_metadata["routellm"]["model"] == "big"
    bound = llm.bind_tools([])
    assert bound.bound.policy is llm.policy, "bind_tools copies share the policy (and its micro-batcher)"
