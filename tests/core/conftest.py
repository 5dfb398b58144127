"""Fixtures the core tests share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def minilm() -> Path:
    """The packaged all-MiniLM-L6-v2 folder (a BERT encoder and its tokenizer)."""
    from routellm_core.embedding.embedders import minilm_path

    return minilm_path()


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, minilm: Path) -> Path:
    """A two-block Llama (random weights, real architecture) with MiniLM's tokenizer: ``A``/``B``/``C`` are one
    token each, and without a chat template the causal-LLM router uses its plain prompt."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(str(minilm))
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
