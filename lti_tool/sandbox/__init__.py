"""The built-in sandbox LTI 1.3 platforms, for development, the demo and the test suite; never in production.

- ``platform``: the emulator (no Flask): :class:`SandboxPlatform` registers itself with the tool and launches
  it through the real ``/lti/login`` and ``/lti/launch`` with real signed id_tokens; :class:`LaunchSpec` is
  what the person picked. Two platforms (:data:`PROFILES`): Sandbox Canvas (the first: issuer
  ``<sandbox base URL>/sandbox``, client id :data:`CLIENT_ID`) and Sandbox Moodle (``.../sandbox/moodle``),
  each with its own keys, registration and deployments. Outside ``lti/`` it is the only code that signs JWTs.
- ``views``: their pages (blueprint ``sandbox``), ``init_app`` (made and served only while ``SANDBOX`` is on),
  ``get_platform`` (the first, or one by key) and ``get_platforms``.
- ``demo_round``: the demo's cross-border round (``flask demo``) and its ready-made launches.
"""

from __future__ import annotations

from .platform import (CANVAS, CLIENT_ID, MOODLE, PROFILES, ROLES, SHARED_DEPLOYMENT, SHARED_PARAM, STORAGE_FRAME,
                       STORAGE_MODES, LaunchSpec, PlatformProfile, SandboxError, SandboxPlatform,
                       sandbox_deployment_id)
from .views import bp, get_platform, get_platforms, init_app, is_sandbox_registration

__all__ = ["CANVAS", "CLIENT_ID", "MOODLE", "PROFILES", "ROLES", "SHARED_DEPLOYMENT", "SHARED_PARAM", "STORAGE_FRAME",
           "STORAGE_MODES", "LaunchSpec", "PlatformProfile", "SandboxError", "SandboxPlatform", "bp", "get_platform",
           "get_platforms", "init_app", "is_sandbox_registration", "sandbox_deployment_id"]
