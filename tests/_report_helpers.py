"""Helpers shared by the report tests: an HTML well-formedness and self-containment check, and where the
ww-trends data (published model-series metrics, ../shared/data/ww-trends) lives."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ww_trends() -> Path | None:
    candidates = [os.environ.get("HTS_WW_TRENDS"), ROOT.parent / "shared/data/ww-trends",
                  ROOT / "shared/data/ww-trends"]
    for c in candidates:
        if c and (Path(c) / "series_models.csv").is_file():
            return Path(c)
    return None


WW_TRENDS = _ww_trends()
needs_ww_trends = pytest.mark.skipif(WW_TRENDS is None, reason="ww-trends data not found (../shared/data/ww-trends; "
                                                               "set HTS_WW_TRENDS to its folder)")

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Checker(HTMLParser):
    """Every non-void element closed in order; collects attributes and the embedded JSON."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.attrs, self.tags = [], [], [], []
        self.json_text, self._in_json = "", False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in VOID:
            self.stack.append(tag)
        self._in_json = tag == "script" and ("type", "application/json") in attrs

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()
        self._in_json = False

    def handle_data(self, data):
        if self._in_json:
            self.json_text += data


def check_page(text: str) -> _Checker:
    assert text.startswith("<!DOCTYPE html>")
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    # self-contained: no fetched resource of any kind
    for name, value in checker.attrs:
        if name in ("src", "href", "xlink:href", "action", "poster", "data"):
            assert value is None or value.startswith("#"), (name, value)
    assert not {"link", "iframe", "img", "object", "embed"} & set(checker.tags)
    assert "@import" not in text and not re.search(r"url\((?!#)", text)
    without_namespaces = re.sub(r'xmlns(:\w+)?="[^"]*"', "", text)  # SVG namespace names are never fetched
    assert not re.search(r"(https?|ftp)://|//[\w.-]+\.\w+/", without_namespaces)
    return checker
