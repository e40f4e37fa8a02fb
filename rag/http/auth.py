"""Who asks: the FastAPI dependencies that turn a request's key (or the chat's session cookie) into what it may see.

``rag.http.app`` keeps one ``rag.access.Access`` on ``app.state.access`` and the knowledge bases on
``app.state.bases``; a route takes ``Caller`` (the request's ``Grant``) or ``Bases`` (the bases as that grant
sees them: ``rag.access.BasesView``). A wrong, revoked or expired key is refused here, before the route runs
(401, ``WWW-Authenticate: Bearer``), whatever the route; no key at all is the anonymous grant.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from rag.access import Access, BasesView, Grant

# Declared for the OpenAPI schema (the lock icon in /docs); the check itself is Access.caller.
BEARER = HTTPBearer(auto_error=False, description="RAG_API_KEY or a key of RAG_KEYS_FILE (rag keys add)")
HEADER_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="the same key, as a header")


def request_grant(request: Request, _b: Annotated[Any, Depends(BEARER)] = None,
                  _h: Annotated[Any, Depends(HEADER_KEY)] = None) -> Grant:
    """The request's grant: its key's, its session's, or the anonymous one; a wrong key raises (401)."""
    access: Access = request.app.state.access
    return access.caller(request.headers)


Caller = Annotated[Grant, Depends(request_grant)]


def visible_bases(request: Request, grant: Caller) -> BasesView:
    access: Access = request.app.state.access
    return access.view(request.app.state.bases, grant)


Bases = Annotated[BasesView, Depends(visible_bases)]

__all__ = ["BEARER", "HEADER_KEY", "Bases", "Caller", "request_grant", "visible_bases"]
