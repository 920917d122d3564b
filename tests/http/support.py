"""Build a real gateway app over any store, for tests of the HTTP front-end."""

from __future__ import annotations

from gateway.app import HTTP, WEBDAV, Gateway
from gateway.engine import Engine
from gateway.fs.share import Share
from gateway.settings import (
    EngineSettings,
    Policy,
    ServerSettings,
    Settings,
    ShareSettings,
    Source,
)
from gateway.storage.base import ObjectStore


def build_gateway(
    store: ObjectStore,
    *,
    source: Source | None = None,
    policy: Policy | None = None,
    max_ranges: int = 64,
    metadata_ttl: float = 5.0,
) -> Gateway:
    """One share at ``/`` over ``store``, wired exactly as ``open_gateway`` wires it."""
    engine_settings = EngineSettings(metadata_ttl=metadata_ttl)
    share_settings = ShareSettings(
        mount="/",
        source=source or Source("s3", "bucket", ""),
        policy=policy or Policy(),
    )
    engine = Engine(engine_settings)
    settings = Settings(ServerSettings(max_ranges=max_ranges), engine_settings, (share_settings,))
    gateway = Gateway(settings, engine, [Share(share_settings, engine.view(store))], [store])
    for frontend in (WEBDAV, HTTP):
        for method in frontend.handlers:
            gateway.methods[method] = frontend
    return gateway
