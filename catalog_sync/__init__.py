"""Imports from national sources: the course catalog feed and the municipality registry.

Never imports the web layer: fetch/read -> validate -> apply in one transaction -> report.

The catalog feed (``kulturskola-catalog/1``, see FEED.md):

- ``sync_catalog_from_source(session_factory, source, dry_run=False, config=None)``: the whole run
  (fetch with conditional GET and retries, validate, apply and commit, record in ``catalog_syncs``).
- ``sync_catalog(session, feed, *, dry_run=False, now=None)``: diff and apply a parsed feed in the
  caller's transaction; raises ``FeedRejectedError`` for an invalid feed.
- ``check_feed(feed)`` / ``validate_feed(feed)``: every problem, with its JSON path.
- ``fetch_feed(source, ...)``, ``render_markdown(text)``.
- ``cli.make_catalog_cli(...)``: the ``catalog`` commands (click only; ``lti_tool/cli`` registers them).
"""

from .fetch import FetchError, Fetched, NotJSONError, fetch_feed
from .markdown import render_markdown
from .sync import (CourseChange, FeedRejectedError, SyncReport, history, list_courses, run_sync, sync_catalog,
                   sync_catalog_from_source)
from .validate import FeedIssue, check_feed, validate_feed

__all__ = ["CourseChange", "FeedIssue", "FeedRejectedError", "FetchError", "Fetched", "NotJSONError", "SyncReport",
           "check_feed", "fetch_feed", "history", "list_courses", "render_markdown", "run_sync", "sync_catalog",
           "sync_catalog_from_source", "validate_feed"]
