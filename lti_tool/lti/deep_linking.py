"""Deep Linking 2.0 response: the courses a teacher or administrator picked, as signed content items."""

from __future__ import annotations

import secrets
import time
from typing import Any, Mapping

import jwt

from ..domain.claims import (CLAIM_DEPLOYMENT_ID, CLAIM_MESSAGE_TYPE, CLAIM_VERSION)
from .keys import KeyStore

CLAIM_CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
CLAIM_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
CLAIM_MSG = "https://purl.imsglobal.org/spec/lti-dl/claim/msg"
RESOURCE_LINK = "ltiResourceLink"


def resource_link_item(*, title: str, text: str | None, url: str, course: str, round_id: str,
                       line_item: Mapping[str, Any] | None) -> dict[str, Any]:
    """An ``ltiResourceLink`` with ``custom`` inside the item (Schoology reads it only there)."""
    item: dict[str, Any] = {"type": RESOURCE_LINK, "title": title, "url": url,
                            "custom": {"course": course, "round": round_id}}
    if text:
        item["text"] = text
    if line_item:
        item["lineItem"] = dict(line_item)
    return item


def build_response(keys: KeyStore, *, client_id: str, issuer: str, deployment_id: str, settings: Mapping[str, Any],
                   items: list[dict[str, Any]], message: str | None = None) -> str:
    """The signed LtiDeepLinkingResponse; the request's ``data`` is echoed unchanged."""
    key = keys.current()
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id, "aud": issuer, "iat": now, "exp": now + 600, "nonce": secrets.token_urlsafe(24),
        CLAIM_DEPLOYMENT_ID: deployment_id, CLAIM_MESSAGE_TYPE: "LtiDeepLinkingResponse", CLAIM_VERSION: "1.3.0",
        CLAIM_CONTENT_ITEMS: items,
    }
    if "data" in settings:
        claims[CLAIM_DATA] = settings["data"]
    if message:
        claims[CLAIM_MSG] = message
    return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})
