"""Run a benchmark's ``--quick`` slice into a temporary folder, as the benchmark smoke tests do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
#: The section every smoke test's BENCHMARKS.md starts with: a benchmark must leave it as it is.
OTHER_SECTION = "## Another section\n\nkept as it is"


def run_quick(module: str, name: str, shared_data_dir: Path, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """``python -m <module> --quick`` writing into ``tmp_path``: its results (``<name>.json``) and the markdown
    it wrote (beside another section).

    Raises:
        AssertionError: The run failed (its stderr's tail is the message).
    """
    out = tmp_path / "BENCHMARKS.md"
    out.write_text(f"# Benchmarks\n\n{OTHER_SECTION}\n")
    cmd = [sys.executable, "-m", module, "--quick", "--results-dir", str(tmp_path), "--markdown", str(out)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "ROUTELLM_DATA_DIR": str(shared_data_dir)}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / f"{name}.json").read_text()), out.read_text()
