"""Writing scrape jobs as YAML fast, byte for byte as ``dump_yaml`` writes them. No I/O.

PyYAML's representer and serializer run in Python even over libyaml's emitter: 10,000 jobs took
10 s. Jobs are plain data in block style, whose layout is simple (two-space indents, sequences in a
mapping not indented), so this writes the layout itself and asks ``dump_yaml`` only how each distinct
scalar is written (plain, quoted, escaped), remembering the answer: the same few hundred strings
make up most of a config. Whatever this does not reproduce exactly (a multi-line string, a key
PyYAML would write as ``? key``, a type other than dict, list, str, int, float, bool and None) makes
``dump`` hand the whole value to ``dump_yaml``, so the bytes never differ.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import ScalarNode

from config_operator.generate.common import dump_yaml

_EMPTY = {dict: "{}", list: "[]"}
# A string of these characters, starting with a letter or "_", is written plain (no indicator, space
# or special character in it) unless it would read back as something else (true, null, ...), which
# the resolver tells. Everything else asks dump_yaml.
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_STR_TAG = "tag:yaml.org,2002:str"
# A scalar written over several lines is indented by where it sits: dump_yaml writes those.
_BREAKS = re.compile("[\r\n\x85\u2028\u2029]")
# Well below the length at which PyYAML and libyaml stop writing a key as a simple key.
_SIMPLE_KEY_MAX = 100
_SCALARS = (str, int, float, bool, type(None))


class _Unsupported(Exception):
    """Not a layout this module reproduces; ``dump_yaml`` writes it."""


class Emitter:
    """``dump_yaml``'s output for block-style plain data; keeps what it learnt about scalars."""

    def __init__(self) -> None:
        self._values: dict[tuple[type, Any], str] = {}
        self._keys: dict[tuple[type, Any], str] = {}
        # Whole lines by (indentation, key, value): most lines of a config repeat, whole.
        self._lines: dict[tuple[Any, ...], str] = {}
        self._resolver = yaml.resolver.Resolver()
        # Whole flat mappings in a sequence, by (lead, indentation, _flat(item)).
        self._items: dict[tuple[Any, ...], str] = {}

    def dump(self, data: Any) -> bytes:
        """Exactly ``dump_yaml(data)``."""
        if type(data) not in (dict, list) or not data:
            return dump_yaml(data)
        out: list[str] = []
        try:
            if type(data) is dict:
                self._mapping(data, 0, False, out)
            else:
                self._sequence(data, 0, False, out)
        except (_Unsupported, TypeError):  # TypeError: an unhashable scalar, so not one of ours
            return dump_yaml(data)
        return "".join(out).encode()

    def _mapping(self, data: dict[Any, Any], indent: int, inline: bool, out: list[str]) -> None:
        lines, pad = self._lines, " " * indent
        # The first key of a mapping that is a sequence item goes on the item's line.
        lead = "" if inline else pad
        for key, value in data.items():
            kind = type(value)
            if kind is dict or kind is list:
                memo: tuple[Any, ...] = (lead, key, kind, not value)
                line = lines.get(memo)
                if line is None:
                    tail = f": {_EMPTY[kind]}\n" if not value else ":\n"
                    line = lines[memo] = lead + self._key(key) + tail
                out.append(line)
                if value:
                    if kind is dict:
                        self._mapping(value, indent + 2, False, out)
                    else:  # a sequence in a mapping is not indented
                        self._sequence(value, indent, False, out)
            else:
                memo = (lead, key, value) if kind is str else (lead, key, value, kind)
                line = lines.get(memo)
                if line is None:
                    line = lines[memo] = lead + self._key(key) + ": " + self._value(value) + "\n"
                out.append(line)
            lead = pad

    def _sequence(self, data: list[Any], indent: int, inline: bool, out: list[str]) -> None:
        lines = self._lines
        dash = " " * indent + "- "
        lead = "- " if inline else dash
        for item in data:
            kind = type(item)
            if kind is dict or kind is list:
                if not item:
                    out.append(f"{lead}{_EMPTY[kind]}\n")
                elif kind is dict and (flat := _flat(item)) is not None:
                    # A relabel rule and its like: the same few thousand recur across every job.
                    memo_item = (lead, indent, flat)
                    text = self._items.get(memo_item)
                    if text is None:
                        part: list[str] = [lead]
                        self._mapping(item, indent + 2, True, part)
                        text = self._items[memo_item] = "".join(part)
                    out.append(text)
                else:
                    out.append(lead)
                    if kind is dict:
                        self._mapping(item, indent + 2, True, out)
                    else:
                        self._sequence(item, indent + 2, True, out)
            else:
                memo: tuple[Any, ...] = (lead, item) if kind is str else (lead, item, kind)
                line = lines.get(memo)
                if line is None:
                    line = lines[memo] = lead + self._value(item) + "\n"
                out.append(line)
            lead = dash

    def _value(self, value: Any) -> str:
        memo = (type(value), value)
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
        memo = (type(key), key)
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
        return len(self._values) + len(self._keys) + len(self._lines) + len(self._items)

    def _plain(self, text: str) -> bool:
        return (
            _PLAIN.fullmatch(text) is not None
            and self._resolver.resolve(ScalarNode, text, (True, False)) == _STR_TAG  # type: ignore[no-untyped-call]
        )


def _flat(item: dict[Any, Any]) -> tuple[Any, ...] | None:
    """A hashable image of a mapping whose values are scalars or lists of scalars (a relabel rule),
    with every type in it (``1`` and ``True`` are equal in Python, not in YAML); None otherwise."""
    image: list[Any] = []
    for key, value in item.items():
        kind = type(value)
        if kind in _SCALARS:
            image.append((type(key), key, kind, value))
        elif kind is list and value and all(type(v) is str for v in value):
            image.append((type(key), key, list, tuple(value)))
        else:
            return None
    return tuple(image)
