"""The one seam through which generation reads Secrets and ConfigMaps. No I/O.

The reconciler (from what it fetched) and ``render`` (from its input files) both hand generation a
``Lookup``. Every reference asked for is recorded, found or not, so the reconciler knows which
Secrets and ConfigMaps a PrometheusConfig depends on and can watch exactly those.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from config_operator.resources import ConfigMap, ObjectKey, Secret


class UnreadableValue(ValueError):
    """A referenced value cannot be read; the message names the object and key, never the value."""


@dataclass(frozen=True, order=True)
class Reference:
    """One object generation asked for."""

    kind: str
    """``Secret`` or ``ConfigMap``."""
    namespace: str
    name: str


class Lookup:
    """Secret and ConfigMap values by namespace, name and key."""

    def __init__(self, secrets: Iterable[Secret] = (), configmaps: Iterable[ConfigMap] = ()) -> None:
        self._secrets = {ObjectKey.of(s): s for s in secrets}
        self._configmaps = {ObjectKey.of(c): c for c in configmaps}
        self._asked: set[Reference] = set()

    @property
    def references(self) -> frozenset[Reference]:
        """Every object asked for so far, found or not."""
        return frozenset(self._asked)

    def secret(self, namespace: str, name: str) -> Secret | None:
        """The whole Secret, or None."""
        self._asked.add(Reference("Secret", namespace, name))
        return self._secrets.get(ObjectKey(namespace, name))

    def configmap(self, namespace: str, name: str) -> ConfigMap | None:
        """The whole ConfigMap, or None."""
        self._asked.add(Reference("ConfigMap", namespace, name))
        return self._configmaps.get(ObjectKey(namespace, name))

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """The decoded value of ``key``; None when the Secret or the key is missing.

        Raises UnreadableValue when the value is not base64-encoded UTF-8.
        """
        secret = self.secret(namespace, name)
        if secret is None:
            return None
        # stringData wins, as the API server merges it over data on write.
        string_data = secret.get("stringData") or {}
        if key in string_data:
            return str(string_data[key])
        data = secret.get("data") or {}
        if key not in data:
            return None
        try:
            return base64.b64decode(data[key], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, TypeError):
            raise UnreadableValue(
                f"Secret {namespace}/{name} key {key!r} is not base64-encoded UTF-8"
            ) from None

    def configmap_value(self, namespace: str, name: str, key: str) -> str | None:
        """The value of ``key`` (``data``, then ``binaryData`` decoded as UTF-8); None when missing."""
        cm = self.configmap(namespace, name)
        if cm is None:
            return None
        data = cm.get("data") or {}
        if key in data:
            return str(data[key])
        binary = cm.get("binaryData") or {}
        if key not in binary:
            return None
        try:
            return base64.b64decode(binary[key], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, TypeError):
            raise UnreadableValue(
                f"ConfigMap {namespace}/{name} key {key!r} is not base64-encoded UTF-8"
            ) from None
