"""Platform credentials encrypted at rest with cryptography's MultiFernet.

Keys come from the `CREDENTIAL_KEYS` setting (comma-separated Fernet keys, the first is the
current one). Rotation: prepend a new key, deploy, then `rotate()` each stored token lazily
(e.g. when a job loads the credential, or in a one-off sweep); tokens under the old key keep
decrypting until the old key is removed from the list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CredentialDecryptFailed(Exception):
    """The token was not made by any configured key (or was altered)."""


Token = str | bytes | bytearray | memoryview  # PlatformConnection.secret is a BinaryField


def _raw(token: Token) -> bytes:
    return token.encode() if isinstance(token, str) else bytes(token)


class CredentialCipher:
    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ValueError("at least one credential key is required")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self._current = Fernet(keys[0])

    def encrypt(self, plaintext: str) -> str:
        """A Fernet token (URL-safe ASCII); store `.encode()` of it in a binary column."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: Token) -> str:
        try:
            return self._fernet.decrypt(_raw(token)).decode()
        except InvalidToken as exc:
            raise CredentialDecryptFailed("credential cannot be decrypted") from exc

    def encrypt_json(self, secrets: Mapping[str, str]) -> str:
        return self.encrypt(json.dumps(dict(secrets), separators=(",", ":"), sort_keys=True))

    def decrypt_json(self, token: Token) -> dict[str, str]:
        value = json.loads(self.decrypt(token))
        if not isinstance(value, dict):
            raise CredentialDecryptFailed("credential is not a JSON object")
        return {str(k): str(v) for k, v in value.items()}

    def needs_rotation(self, token: Token) -> bool:
        """True when the token is not under the current (first) key."""
        try:
            self._current.decrypt(_raw(token))
        except InvalidToken:
            return True
        return False

    def rotate(self, token: Token) -> str:
        """Re-encrypt under the current key (MultiFernet.rotate); same plaintext."""
        try:
            return self._fernet.rotate(_raw(token)).decode()
        except InvalidToken as exc:
            raise CredentialDecryptFailed("credential cannot be decrypted") from exc


def cipher_from_settings() -> CredentialCipher:
    from core.settings import get_settings

    return CredentialCipher(get_settings().credential_key_list())
