"""The signing key of a development install that sets no SYMPTRACK_SECRET_KEY: random, made on the
first run and kept in the data folder, so tokens survive restarts and no key is ever written in the code.

Several processes may start at once on a fresh folder (`serve` and `worker`): each writes its own key to
a private temporary file and hard-links it into place, which succeeds for one of them only; the others
read the winner's file. A reader never sees a half-written key.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

KEY_FILE = "secret_key"
MIN_KEY_LENGTH = 32


class LocalSecretError(ValueError):
    """The key file can't be made or read; the message names the file, never the key."""


def new_key() -> str:
    return secrets.token_urlsafe(48)


def load_or_create(data_dir: Path) -> str:
    path = data_dir / KEY_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = new_key()
        descriptor, temporary = tempfile.mkstemp(dir=data_dir, prefix=f".{KEY_FILE}.")  # mode 0600
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as file:
                file.write(key + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.link(temporary, path)  # fails if another process put its key there first
        finally:
            os.unlink(temporary)
    except FileExistsError:
        return _read(path)
    except OSError as exc:
        raise LocalSecretError(
            f"cannot keep the development secret key in {path} ({exc.strerror}): "
            "set SYMPTRACK_SECRET_KEY, or SYMPTRACK_DATA_DIR to a folder this user can write"
        ) from exc
    return key


def _read(path: Path) -> str:
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise LocalSecretError(f"cannot read the development secret key in {path}: {exc}") from exc
    if len(key) < MIN_KEY_LENGTH:
        raise LocalSecretError(
            f"the development secret key in {path} is shorter than {MIN_KEY_LENGTH} characters: "
            "delete the file to make a new one (everyone signs in again)"
        )
    return key
