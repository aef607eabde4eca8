"""Writing scrape jobs as YAML fast, byte for byte as ``dump_yaml`` writes them. No I/O.

PyYAML's representer and serializer run in Python even over libyaml's emitter: 10,000 jobs took
10 s. Jobs are plain data in block style, whose layout is simple (two-space indents, sequences in a
mapping not indented), so this writes the layout itself and asks ``dump_yaml`` only how each distinct
scalar is written (plain, quoted, escaped), remembering the answer: the same few hundred strings
make up most of a config. Whole lines and whole sequence items (a relabel rule: the same few thousand
recur across every job) are remembered too, items by their marshal image. Whatever this does not
reproduce exactly (a multi-line string, a key
PyYAML would write as ``? key``, a type other than dict, list, str, int, float, bool and None) makes
``dump`` hand the whole value to ``dump_yaml``, so the bytes never differ.
"""

from __future__ import annotations

import itertools
import marshal
import re
from typing import Any

import yaml
from yaml.nodes import ScalarNode

from config_operator.generate.common import dump_yaml

_EMPTY = {dict: "{}", list: "[]"}
# A string of these characters is written plain unless it would read back as something else (true,
# null, 1e3, ...), which the resolver tells: none of them is an indicator where it sits ("-", ".",
# "|", "*", "+" and ";" never come first; "#", ":", ",", brackets, quotes and spaces are not among
# them). Everything else asks dump_yaml. Relabel regexes and durations ("(app-1);true", "15s") fit.
_PLAIN = re.compile(r"[A-Za-z0-9_(/$][A-Za-z0-9_./()$;|*+-]*")
_STR_TAG = "tag:yaml.org,2002:str"
# A scalar written over several lines is indented by where it sits: dump_yaml writes those.
_BREAKS = re.compile("[\r\n\x85\u2028\u2029]")
# Well below the length at which PyYAML and libyaml stop writing a key as a simple key.
_SIMPLE_KEY_MAX = 100
# The image of a sequence item (a mapping, say): marshal writes, in C, what ``==`` ignores: the exact
# type of every value (``1``, ``1.0`` and ``True`` are equal in Python, not in YAML), key order and
# nesting. It refuses subclasses and objects it does not know (the emitter hands those to dump_yaml
# anyway), and version 2 has no back-references, so an image does not depend on which equal strings
# are the same object.
_MARSHAL_VERSION = itertools.repeat(2)
# Sequence items whose marshal image is at most this long have their text remembered whole (relabel
# rules, discovery configs); longer ones are rarely repeated.
_ITEM_MEMO_MAX = 1024
_SCALARS = (str, int, float, bool, type(None))


class _Unsupported(Exception):
    """Not a layout this module reproduces; ``dump_yaml`` writes it."""


class Emitter:
    """``dump_yaml``'s output for block-style plain data; keeps what it learnt about scalars."""

    def __init__(self) -> None:
        self._values: dict[tuple[type, Any], str] = {}
        self._keys: dict[tuple[type, Any], str] = {}
        # Whole lines by (lead, key, value), the value through _exact unless it is a string: most
        # lines of a config repeat, whole.
        self._lines: dict[tuple[Any, ...], str] = {}
        self._resolver = yaml.resolver.Resolver()
        # Whole mappings in a sequence: by (lead, indentation), then by marshal image.
        self._items: dict[tuple[str, int], dict[bytes, str]] = {}

    def dump(self, data: Any) -> bytes:
        """Exactly ``dump_yaml(data)``."""
        if type(data) not in (dict, list) or not data:
            return dump_yaml(data)
        out: list[str] = []
        try:
            if type(data) is dict:
                self._mapping(data, 0, False, out)
            else:  # a list of jobs: each is unique, and too long to be worth an image
                self._sequence(data, 0, False, out, remember=False)
        except (_Unsupported, TypeError):  # TypeError: an unhashable scalar, so not one of ours
            return dump_yaml(data)
        return "".join(out).encode()

    def _mapping(self, data: dict[Any, Any], indent: int, inline: bool, out: list[str]) -> None:
        lines, pad = self._lines, " " * indent
        # The first key of a mapping that is a sequence item goes on the item's line.
        lead = "" if inline else pad
        for key, value in data.items():
            kind = type(value)
            if type(key) is not str:  # rare in a config; 1, 1.0 and True are one key to a dict
                line = None
                memo: tuple[Any, ...] | None = None
            elif kind is dict or kind is list:
                memo = (lead, key, kind, not value)
                line = lines.get(memo)
            else:
                memo = (lead, key, value) if kind is str else (lead, key, _exact(value))
                line = lines.get(memo)
            if line is None:
                if kind is dict or kind is list:
                    tail = f": {_EMPTY[kind]}\n" if not value else ":\n"
                    line = lead + self._key(key) + tail
                else:
                    line = lead + self._key(key) + ": " + self._value(value) + "\n"
                if memo is not None:
                    lines[memo] = line
            out.append(line)
            if value and (kind is dict or kind is list):
                if kind is dict:
                    self._mapping(value, indent + 2, False, out)
                else:  # a sequence in a mapping is not indented
                    self._sequence(value, indent, False, out)
            lead = pad

    def _sequence(
        self, data: list[Any], indent: int, inline: bool, out: list[str], remember: bool = True
    ) -> None:
        dash = " " * indent + "- "
        if remember and not inline and type(data[0]) is dict:
            try:
                images = list(map(marshal.dumps, data, _MARSHAL_VERSION))
            except ValueError:  # something marshal refuses: written item by item, below
                pass
            else:
                # A relabel_configs list: most of its rules were written before, in other jobs, so
                # the images and lookups run in C (map) and only the new items are written here.
                known = self._items.setdefault((dash, indent), {})
                texts = list(map(known.get, images))
                for i in [i for i, text in enumerate(texts) if text is None]:
                    texts[i] = self._item(data[i], images[i], dash, indent, known)
                out.extend(texts)  # type: ignore[arg-type]
                return
        lines = self._lines
        lead = "- " if inline else dash
        for item in data:
            kind = type(item)
            if kind is dict or kind is list:
                if not item:
                    out.append(f"{lead}{_EMPTY[kind]}\n")
                else:
                    out.append(lead)
                    if kind is dict:
                        self._mapping(item, indent + 2, True, out)
                    else:
                        self._sequence(item, indent + 2, True, out)
            else:
                memo = (lead, item) if kind is str else (lead, _exact(item))
                line = lines.get(memo)
                if line is None:
                    line = lines[memo] = lead + self._value(item) + "\n"
                out.append(line)
            lead = dash

    def _item(self, item: Any, image: bytes, dash: str, indent: int, known: dict[bytes, str]) -> str:
        """One item of a sequence in a mapping, whole; a mapping's text is remembered by its image."""
        part: list[str] = []
        self._sequence([item], indent, False, part, remember=False)
        text = "".join(part)
        if type(item) is dict and item and len(image) <= _ITEM_MEMO_MAX:
            known[image] = text
        return text

    def _value(self, value: Any) -> str:
        memo = _exact(value)
        try:
            return self._values[memo]
        except KeyError:
            pass
        except TypeError:
            raise _Unsupported from None
        if type(value) not in _SCALARS:
            raise _Unsupported
        if type(value) is str and self._plain(value):
            self._values[memo] = value
            return value
        text = dump_yaml([value]).decode()
        written = text[2:-1]
        if not text.startswith("- ") or not text.endswith("\n") or _BREAKS.search(written):
            raise _Unsupported
        self._values[memo] = written
        return written

    def _key(self, key: Any) -> str:
        memo = _exact(key)
        try:
            return self._keys[memo]
        except KeyError:
            pass
        except TypeError:
            raise _Unsupported from None
        if type(key) not in _SCALARS:
            raise _Unsupported
        if type(key) is str and len(key) < _SIMPLE_KEY_MAX and self._plain(key):
            self._keys[memo] = key
            return key
        text = dump_yaml({key: None}).decode()
        written = text[: -len(": null\n")]
        if text.startswith("? ") or not text.endswith(": null\n") or _BREAKS.search(written):
            raise _Unsupported
        self._keys[memo] = written
        return written

    def memo_size(self) -> int:
        """How many scalars and lines it remembers."""
        items = sum(len(known) for known in self._items.values())
        return len(self._values) + len(self._keys) + len(self._lines) + items

    def _plain(self, text: str) -> bool:
        return (
            _PLAIN.fullmatch(text) is not None
            and self._resolver.resolve(ScalarNode, text, (True, False)) == _STR_TAG  # type: ignore[no-untyped-call]
        )


def _exact(value: Any) -> tuple[type, Any]:
    """A scalar as a memo key that tells apart what ``==`` does not: ``1``, ``1.0`` and ``True``, and
    ``0.0`` and ``-0.0``. Every NaN is one key: all are written ``.nan``."""
    if type(value) is float:
        return (float, repr(value))
    return (type(value), value)
