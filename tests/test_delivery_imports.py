"""The pure delivery modules stay pure: importing them pulls in no I/O library."""

from __future__ import annotations

import subprocess
import sys

PURE = ("relay.mail.render", "relay.mail.transport", "relay.deliver.backoff")
IO = ("httpx", "sqlalchemy", "starlette", "relay.store", "relay.web", "relay.cli")


def test_pure_modules_import_no_io_library():
    """Rendering and the retry policy are functions of values (style: pure core)."""
    code = (
        "import sys\n"
        f"for name in {PURE!r}: __import__(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {IO!r} "
        f"or m.startswith({IO!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
