"""Provider clients, one module each; the registry maps the user-facing names to classes."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from workers.errors import ConfigurationError
from workers.providers.base import ProviderClient

REGISTRY: dict[str, str] = {
    "ghasedak": "workers.providers.ghasedak:GhasedakClient",
    "mediapayamak": "workers.providers.mediapayamak:MediaPayamakClient",
    "amoot": "workers.providers.amoot:AmootClient",
    "negin": "workers.providers.negin:NeginClient",
    "ghasedak-gateway": "workers.providers.ghasedak_gateway:GhasedakGatewayClient",
}

NAMES = tuple(REGISTRY)


def client_class(name: str) -> type[ProviderClient]:
    target = REGISTRY.get(name)
    if target is None:
        raise ConfigurationError(f"unknown provider {name!r}; choose one of {', '.join(NAMES)}")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def build_client(name: str, env: Mapping[str, str] | None = None) -> ProviderClient:
    cls = client_class(name)
    return cls(cls.load_settings(env))
