"""Reading YAML fast: libyaml's parser and composer, and a plain-data constructor. No I/O.

``yaml.safe_load`` on 5,000 ServiceMonitors spends most of its time in PyYAML's Python constructor
and resolver, even with libyaml's ``CSafeLoader`` underneath. Kubernetes manifests are plain data
(mappings, sequences, strings, numbers, booleans, nulls), so this builds them straight from the
composed nodes, and remembers each plain scalar's resolved tag (the same few values repeat across
thousands of objects). Anything out of the ordinary (merge keys, sets, ordered maps, custom tags,
recursive aliases) falls back to PyYAML's own constructor for that document, so the result, and any
error, is always what ``yaml.safe_load`` gives.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
# Tags whose scalars SafeConstructor builds without surprises; others take the fallback.
_SCALAR_TAGS = frozenset({_STR, _NULL, _BOOL, _INT, "tag:yaml.org,2002:float"})
_TRUE_FALSE = {"true": True, "false": False}


class _Unusual(Exception):
    """The document needs PyYAML's full constructor."""


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._resolved: dict[tuple[str, Any], str] = {}
        if not self.yaml_path_resolvers:
            # The composer calls these for every node, and without path resolvers they do nothing:
            # C callables that take the same arguments and do nothing are several times cheaper.
            self.descend_resolver: Any = {}.get
            self.ascend_resolver: Any = tuple

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # Without path resolvers (the safe loader has none) a scalar's tag depends only on its value
        # and on whether it was plain or quoted, and a collection's is the default one.
        if self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)
        if kind is MappingNode:
            return self.DEFAULT_MAPPING_TAG
        if kind is SequenceNode:
            return self.DEFAULT_SEQUENCE_TAG
        key = (value, implicit)
        tag = self._resolved.get(key)
        if tag is None:
            tag = self._resolved[key] = super().resolve(kind, value, implicit)
        return tag

    def construct_document(self, node: Node) -> Any:
        try:
            data = self._plain(node, {}, set())
        except _Unusual:
            self.constructed_objects.clear()
            return super().construct_document(node)
        self.constructed_objects.clear()  # what construct_object built for scalars above
        return data

    def _plain(self, node: Node, done: dict[int, Any], busy: set[int]) -> Any:
        ident = id(node)
        if ident in done:  # an alias: the same object, as PyYAML gives
            return done[ident]
        if ident in busy:
            raise _Unusual
        tag = node.tag
        result: Any
        if isinstance(node, ScalarNode):
            value = node.value
            if tag == _STR:
                result = value
            elif tag == _BOOL and value in _TRUE_FALSE:
                result = _TRUE_FALSE[value]
            elif tag in _SCALAR_TAGS:
                result = self.construct_object(node)
            else:
                raise _Unusual
        elif isinstance(node, MappingNode):
            if tag != _MAP:
                raise _Unusual
            busy.add(ident)
            result = {}
            for key_node, value_node in node.value:
                # Most keys and values are plain strings: no call for those.
                if key_node.tag == _STR and type(key_node) is ScalarNode:
                    key = key_node.value
                elif key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Unusual
                else:
                    key = self._plain(key_node, done, busy)
                try:
                    if value_node.tag == _STR and type(value_node) is ScalarNode:
                        result[key] = value_node.value
                    else:
                        result[key] = self._plain(value_node, done, busy)
                except TypeError:  # an unhashable key: PyYAML's error message
                    raise _Unusual from None
            busy.discard(ident)
        elif isinstance(node, SequenceNode):
            if tag != _SEQ:
                raise _Unusual
            busy.add(ident)
            result = [self._plain(item, done, busy) for item in node.value]
            busy.discard(ident)
        else:
            raise _Unusual
        done[ident] = result
        return result


def load(text: str | bytes) -> Any:
    """``yaml.safe_load(text)``, faster."""
    return yaml.load(text, Loader=_Loader)


def load_all(text: str | bytes) -> list[Any]:
    """``list(yaml.safe_load_all(text))``, faster."""
    return list(yaml.load_all(text, Loader=_Loader))
