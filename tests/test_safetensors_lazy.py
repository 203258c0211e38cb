"""``from_safetensors`` makes each ``WeightTensor`` when it is asked for (``FileTensors``): the records must be
those the plain rules give (``mapping.from_entries`` on the header's entries in architecture order), for any
names, with sequence behaviour (len, indexing, negative indices, slices, iteration) of a list."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numpy as np
import pytest

import _st_writer as writer
from hts.adapters.mapping import Entry, from_entries
from hts.adapters.ordering import architecture_order
from hts.adapters.safetensors_file import read_header
from hts.adapters.safetensors_model import from_safetensors

_part = st.sampled_from(["model", "layers", "h", "0", "1", "2", "10", "mlp", "self_attn", "q_proj", "down_proj",
                         "weight", "bias", "norm", "lm_head", "embed_tokens", "²", "x"])
_name = st.lists(_part, min_size=1, max_size=5).map(".".join)
_shape = st.lists(st.integers(0, 3), max_size=4)
_dtype = st.sampled_from([np.float32, np.float16, np.int8])


def _plain(path) -> list:
    """The records by the plain route: every entry made, then typed by ``from_entries``."""
    h = read_header(path)
    entries = [Entry(n, h.tensors[n].shape, h.tensors[n].dtype_name, None, h.tensors[n].skip_reason)
               for n in architecture_order(h.tensors)]
    return from_entries(entries, source="safetensors")


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(_name, st.tuples(_shape, _dtype), min_size=1, max_size=12))
def test_records_are_those_of_the_plain_rules(tmp_path, spec):
    path = tmp_path / "m.safetensors"
    writer.write(path, {n: np.zeros(s, d) for n, (s, d) in spec.items()})
    got, want = from_safetensors(path), _plain(path)
    assert len(got) == len(want)
    assert list(got) == want  # WeightTensor equality: every field but load and lora
    assert [got[i] for i in range(-len(got), 0)] == want
    assert got[1:] == want[1:] and got[::-2] == want[::-2]
    with pytest.raises(IndexError):
        got[len(got)]
    for t in got:
        if not t.skip_reason:
            np.testing.assert_array_equal(t.load(), np.zeros(spec[t.key][0], spec[t.key][1]))


def test_holds_no_record_per_tensor(tmp_path):
    """A file of 20,000 tensors: the sequence holds the header's columns and an int32 row number per tensor."""
    n = 20_000
    path = tmp_path / "many.safetensors"
    writer.write(path, {f"layers.{i}.weight": np.zeros((1, 1), np.float32) for i in range(n)})
    got = from_safetensors(path)
    assert len(got) == n and got._rows.dtype == np.int32
    assert [t.key for t in got[:3]] == ["layers.0.weight", "layers.1.weight", "layers.2.weight"]
    assert got[-1].layer_id == n


@pytest.mark.parametrize("weight_keys", [True, False])
def test_shards_of_an_index_are_one_sequence(tmp_path, weight_keys):
    """A sharded model (``*.safetensors.index.json``): the records of every shard in architecture order, ids
    counted across shards, as the plain rules give them; each loads from its own shard."""
    import json

    from hts.adapters.safetensors_model import from_safetensors_index

    suffix = ".weight" if weight_keys else ""
    shards = {"a.safetensors": {f"model.layers.{i}.mlp.down_proj{suffix}": np.full((2, 3), i, np.float32)
                                for i in (0, 2, 10)},
              "b.safetensors": {f"model.layers.{i}.self_attn.q_proj{suffix}": np.full((3, 2), i, np.float16)
                                for i in (1, 2, 10)} | {"model.norm.bias": np.ones(3, np.float32)}}
    weight_map = {}
    for shard, arrays in shards.items():
        writer.write(tmp_path / shard, arrays)
        weight_map.update({n: shard for n in arrays})
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    arrays = {n: a for s in shards.values() for n, a in s.items()}
    want = from_entries([Entry(n, arrays[n].shape, arrays[n].dtype.name, None, "")
                         for n in architecture_order(weight_map)], source="safetensors-sharded")
    got = from_safetensors_index(index)
    assert list(got) == want and got[-1] == want[-1]
    for t in got:
        if not t.skip_reason:
            np.testing.assert_array_equal(t.load(), arrays[t.key])
