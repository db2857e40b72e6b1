"""The platform-storage script's message handling, tested apart from a browser with Node's test runner
(tests/js/lti-storage.test.js); skipped where Node is not installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_message_handling_script():
    folder = Path(__file__).parent / "js"
    result = subprocess.run([NODE, "--test", str(folder / "lti-storage.test.js")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout and "# pass 9" in result.stdout
