"""Name sorting for readers of very many tensors: ``lean_argsort`` (chunks sorted, then merged) is exactly
``sorted``'s order, ties included, and ``natural_key`` reads any name (digits of any script, any length)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hts.adapters import sorting
from hts.adapters.ordering import architecture_key, architecture_order
from hts.adapters.sorting import MAX_DIGITS, lean_argsort, natural_key

_names = st.lists(st.text(st.sampled_from("ab.0129²٣_"), max_size=8), max_size=60)


@settings(deadline=None, derandomize=True, database=None)
@given(_names, st.integers(1, 7))
def test_lean_argsort_is_sorted_order(names, chunk):
    old = sorting.CHUNK
    sorting.CHUNK = chunk  # small chunks: many runs to merge
    try:
        for key in (natural_key, architecture_key, len):  # len: many ties, which keep their input order
            got = lean_argsort(names, key).tolist()
            assert got == sorted(range(len(names)), key=lambda i: key(names[i]))
    finally:
        sorting.CHUNK = old


def test_architecture_order_of_many_names_is_the_plain_sort():
    names = [f"model.layers.{i % 97}.mlp.{'up' if i % 2 else 'down'}_proj.{i}.weight" for i in range(3 * 8192 + 5)]
    assert architecture_order(names[::-1]) == sorted(names, key=architecture_key)


def test_natural_key_reads_any_digit_run():
    long = "7" * (MAX_DIGITS + 1)
    names = ["a" + long, "a" + "9" * MAX_DIGITS, "a10", "a2", "a٣", "a²"]
    assert sorted(names, key=natural_key) == ["a2", "a٣", "a10", "a" + "9" * MAX_DIGITS, "a" + long, "a²"]
