"""The signing key of a development install that sets no SYMPTRACK_SECRET_KEY: random, made on the
first run and kept in the data folder, so tokens survive restarts and no key is ever written in the code.

Several processes may start at once on a fresh folder (`serve` and `worker`): each writes its own key to
a private temporary file and hard-links it into place, which succeeds for one of them only; the others
read the winner's file. A reader never sees a half-written key.
"""

from __future__ import annotations

import math
import os
import secrets
import tempfile
import zlib
from collections import Counter
from pathlib import Path

KEY_FILE = "secret_key"
MIN_KEY_LENGTH = 32
# What a production key must carry by `estimated_bits`: 128 bits, as NIST SP 800-131A asks of an HMAC key.
MIN_KEY_BITS = 128
# zlib's header and checksum around the compressed bytes.
_ZLIB_FRAME_BYTES = 6


class LocalSecretError(ValueError):
    """The key file can't be made or read; the message names the file, never the key."""


def estimated_bits(key: str) -> float:
    """A simple estimate of the guessing work a key stands for, the lower of two: its length times the
    Shannon entropy of its own characters (from how often each occurs), and its size once compressed
    (which sees a repeated word that character counts can't). 32 identical characters are 0 bits;
    "password" 8 times about 100; `secrets.token_urlsafe(48)` (64 characters) about 330; 64 hex
    digits about 240. A short sample shows fewer distinct characters than its alphabet has, so 32 hex
    digits (128 random bits) estimate at about 117: keys should be long and from a random generator."""
    if not key:
        return 0.0
    length = len(key)
    shannon = -sum(count * math.log2(count / length) for count in Counter(key).values())
    compressed = 8 * (len(zlib.compress(key.encode(), 9)) - _ZLIB_FRAME_BYTES)
    return max(0.0, min(shannon, compressed))


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
