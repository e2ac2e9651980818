"""Credential encryption at rest: MultiFernet with rotation, keys from settings."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from core.settings import Settings
from domain.collection.secrets import CredentialCipher, CredentialDecryptFailed
from tests.conftest import production_settings

SECRETS = {"api_key": "AIzaSyExample", "note": "tenant A"}


def test_round_trip_and_ciphertext_hides_the_secret() -> None:
    cipher = CredentialCipher([Fernet.generate_key()])
    token = cipher.encrypt_json(SECRETS)
    assert "AIzaSyExample" not in token
    assert cipher.decrypt_json(token) == SECRETS


def test_binary_column_tokens_are_read_too() -> None:
    cipher = CredentialCipher([Fernet.generate_key()])
    stored = cipher.encrypt_json(SECRETS).encode()  # as in PlatformConnection.secret
    assert cipher.decrypt_json(stored) == SECRETS
    assert cipher.decrypt_json(memoryview(stored)) == SECRETS
    assert not cipher.needs_rotation(stored)


def test_rotation_prepend_a_key_then_rotate_lazily() -> None:
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    old = CredentialCipher([old_key])
    stored = old.encrypt_json(SECRETS)

    rotated_cipher = CredentialCipher([new_key, old_key])  # new key first = current
    assert rotated_cipher.decrypt_json(stored) == SECRETS  # old tokens still read
    assert rotated_cipher.needs_rotation(stored)
    fresh = rotated_cipher.rotate(stored)
    assert not rotated_cipher.needs_rotation(fresh)
    assert rotated_cipher.decrypt_json(fresh) == SECRETS
    # Once every token is rotated the old key can go: the new token needs only the new key.
    assert CredentialCipher([new_key]).decrypt_json(fresh) == SECRETS
    with pytest.raises(CredentialDecryptFailed):
        CredentialCipher([new_key]).decrypt_json(stored)
    # New encryptions always use the current key.
    assert not rotated_cipher.needs_rotation(rotated_cipher.encrypt("x"))


def test_tampered_or_foreign_token_is_refused() -> None:
    cipher = CredentialCipher([Fernet.generate_key()])
    token = cipher.encrypt("secret")
    with pytest.raises(CredentialDecryptFailed):
        cipher.decrypt(token[:-4] + "AAAA")
    with pytest.raises(CredentialDecryptFailed):
        CredentialCipher([Fernet.generate_key()]).decrypt(token)
    with pytest.raises(CredentialDecryptFailed):
        cipher.rotate(CredentialCipher([Fernet.generate_key()]).encrypt("other"))


def test_settings_keys_list_first_is_current() -> None:
    k1, k2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = production_settings(credential_keys=f" {k1} , {k2} ")
    assert settings.credential_key_list() == [k1, k2]
    token = CredentialCipher([k2]).encrypt("s")
    assert CredentialCipher(settings.credential_key_list()).needs_rotation(token)


def test_production_requires_credential_keys() -> None:
    with pytest.raises(ValueError, match="CREDENTIAL_KEYS"):
        production_settings(credential_keys=None)
    # and a production object made without validation still never derives a key
    unchecked = production_settings().model_copy(update={"credential_keys": None})
    with pytest.raises(RuntimeError, match="CREDENTIAL_KEYS"):
        unchecked.credential_key_list()


def test_development_derives_a_stable_key_from_secret_key_with_a_warning() -> None:
    settings = Settings(env="development", secret_key="s" * 40, credential_keys=None)
    with pytest.warns(UserWarning, match="CREDENTIAL_KEYS"):
        keys = settings.credential_key_list()
    with pytest.warns(UserWarning):
        assert settings.credential_key_list() == keys  # stable across calls
    other = Settings(env="development", secret_key="t" * 40, credential_keys=None)
    with pytest.warns(UserWarning):
        assert other.credential_key_list() != keys
    cipher = CredentialCipher(keys)
    assert cipher.decrypt(cipher.encrypt("ok")) == "ok"
