"""uvicorn's HTTP protocol for ``dockyard serve``, its log lines naming the client.

Kept out of :mod:`dockyard.observability` (which every process loads, job workers
included) because importing uvicorn's protocol imports uvicorn whole, with its
supervisors and their file watcher: only the server needs it.
"""

from __future__ import annotations

import logging
from typing import Any

try:
    import httptools  # noqa: F401 (uvicorn's choice: httptools when installed)
except ImportError:  # pragma: no cover
    from uvicorn.protocols.http.h11_impl import H11Protocol as _UvicornHttp
else:
    from uvicorn.protocols.http.httptools_impl import (  # type: ignore[assignment]
        HttpToolsProtocol as _UvicornHttp,
    )


class _ClientLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """uvicorn's connection logger, adding the client's address to every line."""

    def __init__(self, logger: logging.Logger, protocol: Any) -> None:
        super().__init__(logger, {})
        self.protocol = protocol

    @property
    def level(self) -> int:  # uvicorn reads it to skip its trace lines
        level: int = self.logger.level
        return level

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        client = getattr(self.protocol, "client", None)
        if client:
            extra = kwargs.setdefault("extra", {})
            extra["fields"] = {**extra.get("fields", {}), "client": f"{client[0]}:{client[1]}"}
        return msg, kwargs


class HttpProtocol(_UvicornHttp):
    """uvicorn's HTTP protocol (httptools when installed, as uvicorn's ``auto`` would
    pick), whose own log lines name the client they are about."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = _ClientLog(self.logger, self)  # type: ignore[assignment]
