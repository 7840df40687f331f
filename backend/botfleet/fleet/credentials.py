"""Passwords, tokens and secrets at rest.

- Passwords: Argon2id (argon2-cffi's defaults, RFC 9106).
- Tokens (login sessions, API tokens, agent tokens): 32 random bytes, URL-safe base64
  (``secrets.token_urlsafe``); only their SHA-256 hex digest is stored. A token has 256 bits of
  entropy, so a fast hash is enough and lets us look it up by digest.
- Secrets at rest (exchange keys, SSH keys): Fernet (cryptography) with the key in
  ``BOTFLEET_SECRET_KEY`` or ``HOME/secret.key`` (created 0600 on first use).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet

__all__ = [
    "hash_password",
    "hash_token",
    "load_fernet",
    "new_password",
    "new_token",
    "verify_password",
]

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_password() -> str:
    return secrets.token_urlsafe(12)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_fernet(secret_key: str | None, home: Path) -> Fernet:
    """The Fernet for secrets at rest: from ``secret_key`` if given, else ``home/secret.key``,
    created with mode 0600 when missing."""
    if secret_key:
        return Fernet(secret_key.encode())
    path = home / "secret.key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
    return Fernet(path.read_bytes().strip())
