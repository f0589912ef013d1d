"""Encryption at rest for secrets the gateway must read back (apps' own provider keys).

Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from MODELYARD_SECRET_KEY, so any
string of enough entropy works as the operator's secret. Without it, BYOK is unavailable.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


class SecretBoxError(ValueError):
    pass


class SecretBox:
    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise SecretBoxError("MODELYARD_SECRET_KEY must be at least 16 characters")
        digest = hashlib.sha256(b"modelyard-secret-box:" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise SecretBoxError(
                "a stored provider key cannot be decrypted: was MODELYARD_SECRET_KEY changed?"
            ) from exc
