"""Authenticated encryption for secrets kept at rest (AES-256-GCM).

The key is derived (HKDF-SHA256) from a master secret: `VELOZ_MASTER_KEY`, or one generated
once into a 0600 file in the data dir. Each value is bound to a context (the row and field it
belongs to) as associated data, so a sealed value copied to another row does not open.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """A sealed value that does not open: another master key, or tampered with."""


class SecretBox:
    def __init__(self, master_secret: str) -> None:
        if not master_secret:
            raise ValueError("the master secret is empty")
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"veloz stored secrets v1"
        ).derive(master_secret.encode())
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{VERSION}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, token: str, context: str) -> str:
        version, _, body = token.partition(":")
        if version != VERSION:
            raise SecretUnreadable(f"unknown sealed-value version {version!r}")
        try:
            raw = base64.b64decode(body, validate=True)
            nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
            return self._aead.decrypt(nonce, sealed, context.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise SecretUnreadable("a stored secret could not be decrypted") from exc
