"""A sandbox platform's gradebook (no Flask): the platform's side of LTI Assignment and Grade Services, so that
the tool's grade outbox has somewhere to send scores in development and the demo shows each score arriving in
the pupil's own platform.

- the token endpoint: OAuth 2 client credentials with the tool's signed client assertion (checked against the
  tool's published keys, issued to the platform's client id, addressed to the token URL), answering a bearer
  token for the scopes asked;
- line items per LMS course (context): listed (filtered by ``resource_link_id``, ``resource_id``, ``tag``),
  created; scores posted to a line item (the newest by ``timestamp`` is kept per user).

Kept in one JSON file per platform (next to its keys), so a restart of the demo keeps the columns the tool
remembers. Development only: one lock per process, no more.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import jwt

from ..domain.claims import SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE

GRANTED = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE)
TOKEN_SECONDS = 3600
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class GradebookError(ValueError):
    """The platform refuses the request; ``status`` is the HTTP status it answers with."""

    def __init__(self, message: str, status: int = 400, error: str = "invalid_request"):
        super().__init__(message)
        self.status = status
        self.error = error


class Gradebook:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    # -- storage -------------------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            data = {}
        for name in ("tokens", "columns", "scores"):
            data.setdefault(name, {})
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, ensure_ascii=False, indent=1), "utf-8")
        os.replace(temporary, self.path)

    # -- the token endpoint ----------------------------------------------------------------------------------
    def issue_token(self, form: Mapping[str, str], *, client_id: str, token_url: str, tool_jwks: Mapping) -> dict:
        """The answer to a client-credentials token request whose assertion the tool signed."""
        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != ASSERTION_TYPE:
            raise GradebookError("client credentials with a JWT client assertion only", error="unsupported_grant_type")
        assertion = form.get("client_assertion", "")
        try:
            kid = jwt.get_unverified_header(assertion).get("kid")
            keys = [k for k in tool_jwks.get("keys", []) if k.get("kid") == kid]
            if not keys:
                raise GradebookError("the assertion is signed with a key the tool does not publish",
                                     status=401, error="invalid_client")
            claims = jwt.decode(assertion, jwt.PyJWK(keys[0]).key, algorithms=["RS256"], audience=token_url,
                                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]})
        except jwt.PyJWTError as exc:
            raise GradebookError(f"client assertion refused: {exc}", status=401, error="invalid_client") from exc
        if claims["iss"] != client_id or claims["sub"] != client_id:
            raise GradebookError("the assertion is not the registered client's", status=401, error="invalid_client")
        scopes = [s for s in form.get("scope", "").split() if s in GRANTED]
        if not scopes:
            raise GradebookError("no scope this platform grants", error="invalid_scope")
        token = secrets.token_urlsafe(24)
        with self._lock:
            data = self._load()
            now = time.time()
            data["tokens"] = {t: v for t, v in data["tokens"].items() if v["expires"] > now}
            data["tokens"][token] = {"expires": now + TOKEN_SECONDS, "scopes": scopes}
            self._save(data)
        return {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_SECONDS, "scope": " ".join(scopes)}

    def check_token(self, authorization: str | None, *scopes: str) -> None:
        """The request's bearer token must be one of ours, unexpired, with one of ``scopes``."""
        token = (authorization or "").removeprefix("Bearer ").strip()
        granted = self._load()["tokens"].get(token)
        if not token or granted is None or granted["expires"] <= time.time():
            raise GradebookError("no valid access token", status=401, error="invalid_token")
        if not set(scopes) & set(granted["scopes"]):
            raise GradebookError("the token's scopes do not allow this", status=403, error="insufficient_scope")

    # -- line items and scores -------------------------------------------------------------------------------
    def line_items(self, context: str, filters: Mapping[str, str], url_of) -> list[dict]:
        found = []
        for column_id, column in self._load()["columns"].items():
            if column["context"] != context:
                continue
            item = {"id": url_of(context, column_id), **column["item"]}
            if all(not filters.get(name) or item.get(field) == filters[name]
                   for name, field in (("resource_link_id", "resourceLinkId"), ("resource_id", "resourceId"),
                                       ("tag", "tag"))):
                found.append(item)
        return found

    def add_line_item(self, context: str, item: Any, url_of) -> dict:
        if not isinstance(item, Mapping) or not str(item.get("label", "")).strip():
            raise GradebookError("a line item needs a label")
        if not isinstance(item.get("scoreMaximum"), (int, float)) or item["scoreMaximum"] <= 0:
            raise GradebookError("a line item needs a positive scoreMaximum")
        kept = {k: item[k] for k in ("label", "scoreMaximum", "resourceId", "resourceLinkId", "tag", "startDateTime",
                                     "endDateTime") if k in item}
        with self._lock:
            data = self._load()
            column_id = str(len(data["columns"]) + 1)
            data["columns"][column_id] = {"context": context, "item": kept}
            self._save(data)
        return {"id": url_of(context, column_id), **kept}

    def add_score(self, context: str, column_id: str, score: Any) -> None:
        if not isinstance(score, Mapping) or not score.get("userId") or not score.get("timestamp"):
            raise GradebookError("a score needs a userId and a timestamp")
        with self._lock:
            data = self._load()
            column = data["columns"].get(column_id)
            if column is None or column["context"] != context:
                raise GradebookError("no such line item", status=404, error="not_found")
            scores = data["scores"].setdefault(column_id, {})
            kept = scores.get(str(score["userId"]))
            if kept is not None and kept["timestamp"] > str(score["timestamp"]):
                raise GradebookError("a newer score is stored", status=409, error="conflict")
            scores[str(score["userId"])] = {k: score[k] for k in (
                "scoreGiven", "scoreMaximum", "comment", "timestamp", "activityProgress", "gradingProgress")
                if k in score}
            self._save(data)

    def view(self) -> list[dict]:
        """Every LMS course's columns with their scores, for the sandbox's gradebook page."""
        data = self._load()
        contexts: dict[str, list[dict]] = {}
        for column_id, column in sorted(data["columns"].items(), key=lambda item: int(item[0])):
            scores = sorted(data["scores"].get(column_id, {}).items())
            contexts.setdefault(column["context"], []).append({"id": column_id, **column["item"],
                                                              "scores": [{"user": u, **s} for u, s in scores]})
        return [{"context": context, "columns": columns} for context, columns in sorted(contexts.items())]
