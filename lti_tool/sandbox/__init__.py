"""The built-in sandbox LTI 1.3 platform, for development, the demo and the test suite; never in production.

- ``platform``: the emulator (no Flask): :class:`SandboxPlatform` registers itself with the tool and launches
  it through the real ``/lti/login`` and ``/lti/launch`` with real signed id_tokens; :class:`LaunchSpec` is
  what the person picked. Outside ``lti/`` it is the only code that signs JWTs.
- ``views``: its pages (blueprint ``sandbox``), ``init_app`` (made and served only while ``SANDBOX`` is on)
  and ``get_platform``.
"""

from __future__ import annotations

from .platform import (CLIENT_ID, ROLES, SHARED_DEPLOYMENT, SHARED_PARAM, STORAGE_FRAME, STORAGE_MODES, LaunchSpec,
                       SandboxError, SandboxPlatform, sandbox_deployment_id)
from .views import bp, get_platform, init_app

__all__ = ["CLIENT_ID", "ROLES", "SHARED_DEPLOYMENT", "SHARED_PARAM", "STORAGE_FRAME", "STORAGE_MODES", "LaunchSpec",
           "SandboxError", "SandboxPlatform", "bp", "get_platform", "init_app", "sandbox_deployment_id"]
