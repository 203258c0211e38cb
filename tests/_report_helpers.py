"""Helpers shared by the report tests: an HTML well-formedness and self-containment check, and where the
ww-trends data (published model-series metrics) lives: hts's package data (``hts.datasets``)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import hts.datasets

#: The folder of the ww-trends tables (package data, so the tests never skip for want of it).
WW_TRENDS = hts.datasets.path("ww_trends", "series_models.csv").parent

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
