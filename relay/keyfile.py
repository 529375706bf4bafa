"""Where the key ring comes from: RELAY_SECRET_KEY, or a trial key file under var/.

Without RELAY_SECRET_KEY, `relay serve` creates a random key file (mode 0600) on first start
and says so: fine for a trial, but a real deployment sets the variable (README: keys).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from relay.config import Settings
from relay.crypto import KeyRing, generate_key
from relay.errors import ConfigError

log = logging.getLogger("relay.keys")


def _read(path: Path) -> KeyRing:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read the key file ({type(exc).__name__})"
        raise ConfigError(msg) from None
    try:
        return KeyRing.from_text(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(generate_key() + "\n")


def load_keyring(settings: Settings, *, create: bool = False) -> KeyRing:
    """The configured keys; with `create`, a missing trial key file is made (and announced)."""
    if settings.secret_key is not None:
        return KeyRing.from_text(settings.secret_key.get_secret_value())
    path = settings.key_file
    if not path.exists():
        if not create:
            msg = f"RELAY_SECRET_KEY is not set and {path} does not exist (run `relay serve` once)"
            raise ConfigError(msg)
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            _create(path)
        log.warning(
            "RELAY_SECRET_KEY is not set: created a random trial key in %s. Set "
            "RELAY_SECRET_KEY for a real deployment (README: keys).",
            path,
        )
    return _read(path)
