"""Secrets at rest: passwords hashed with argon2id (argon2-cffi), API keys drawn at random and kept as their
SHA-256, and the list of common passwords a new password is checked against.

Passwords: argon2-cffi's `PasswordHasher` with its defaults (argon2id, RFC 9106's low-memory profile);
a hash made with older parameters is re-hashed at the next successful login (`needs_rehash`).
API keys: `smsd_` + 32 random bytes (256 bits, base64url): far above the 112 bits with which a plain hash
is enough (OWASP ASVS 5.0 6.5.2, shared/research/console.md §7), so SHA-256 without a salt or a slow KDF
lets a key be found by its hash in one indexed lookup.
"""

from __future__ import annotations

import gzip
import hashlib
import secrets
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from campaigns.identity import KEY_PREFIX, password_problem

KEY_BYTES = 32
_hasher = PasswordHasher()


@cache
def _dummy() -> str:
    """Verified when a name is unknown, so a wrong name costs as long as a wrong password (no user
    enumeration by timing). Made at the first login, not at import: hashing takes ~0.2 s and touches
    argon2's 64 MiB, which every command importing the application layer paid (`send` included)."""
    return _hasher.hash("not a password of anyone")


@cache
def common_passwords() -> frozenset[str]:
    """The common-passwords list shipped as package data (dispatcher/app/data/README.md: its source)."""
    data = resources.files("dispatcher.app").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(line.strip() for line in gzip.decompress(data).decode("utf-8").splitlines() if line)


def check_password(password: str) -> str | None:
    """Why this password may not be set (`campaigns.identity.password_problem`), or None."""
    return password_problem(password, common_passwords())


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string: algorithm, parameters, salt, hash); never the password."""
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches the stored hash. None (no such user) still spends a verification."""
    try:
        return _hasher.verify(stored or _dummy(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def new_key() -> str:
    """A new API key: `smsd_` and 32 random bytes in base64url (43 characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def key_digest(key: str) -> str:
    """The SHA-256 of a key (hex): all the store keeps of it, beside its last characters."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
