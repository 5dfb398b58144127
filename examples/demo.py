"""Offline demo: the shipped default router inside a LangChain chain and a LlamaIndex query engine.

Run with ``.venv/bin/python examples/demo.py`` after ``bash scripts/setup.sh``. No network, no API keys: the strong
and weak children are small local stand-ins that label their answers, the router is the real shipped one, at its
documented threshold. Each half says where the router did not route as expected (trivia to weak, hard reasoning to
strong) rather than hiding it.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

# The LlamaIndex half embeds its documents with all-MiniLM-L6-v2; the first run exports it to ONNX once (10-30 s),
# and transformers would draw a "Loading weights" bar while reading the model for that export. Silence it.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

HERE = Path(__file__).resolve().parent
EXAMPLES = ("langchain_chain.py", "llamaindex_query_engine.py")


def main() -> None:
    sys.path.insert(0, str(HERE))  # the examples share small helper modules
    from _demo_expectations import explain_win_rate

    from routellm_core import load_router

    router = load_router("default")
    explain_win_rate()
    print(
        f"Both halves route at the same threshold, {router.threshold_for(0.5):.3f}: neither sets one, so each uses "
        "the router's documented default, the win rate that sends half of its shipped calibration traffic to strong."
    )
    for name in EXAMPLES:
        print(f"\n===== {name} =====", flush=True)
        runpy.run_path(str(HERE / name), run_name="__main__")


if __name__ == "__main__":
    main()
