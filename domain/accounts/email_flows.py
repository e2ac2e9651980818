"""E-mail verification and password reset: single-use links by mail (domain/accounts/mail.py).

Public (tenant-less) flows: each opens its own transaction (joining the caller's when one is
open); the mails are sent by jobs enqueued after commit.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from domain.accounts import mail, rules
from domain.accounts.models import OneTimeToken, RefreshToken, User
from domain.accounts.service import _hasher
from domain.accounts.sessions import sessions
from domain.errors import (
    AuthenticationFailed,
    FieldError,
    ValidationFailed,
)
from tenants import outbox
from tenants.tx import public_tx

_BAD_TOKEN = "invalid, expired or already used: ask for a new link"


class EmailFlowService:
    async def request_email_verification(self, user_id: int) -> bool:
        """Queue a verification mail to the user's address; False if it is verified already."""
        async with public_tx():
            user = await User.get_or_none(id=user_id, is_active=True)
            if user is None:
                raise AuthenticationFailed("authentication required")
            if user.email_verified_at is not None:
                return False
            outbox.enqueue(mail.SEND_VERIFICATION_JOB, "public", user.id, suffix=uuid.uuid4().hex)
        return True

    async def verify_email(self, token: str) -> User:
        async with public_tx():
            try:
                row = await mail.consume_token(mail.VERIFY_EMAIL, token)
            except mail.InvalidOneTimeToken as exc:
                raise ValidationFailed(FieldError("token", _BAD_TOKEN)) from exc
            user = row.user
            if user.email_verified_at is None:
                user.email_verified_at = datetime.now(UTC)
                await user.save(update_fields=["email_verified_at"])
        return user

    async def request_password_reset(self, email: str) -> None:
        """Queue a reset mail if an active account has this address. The caller's answer is
        the same either way (no account enumeration)."""
        email = rules.normalize_email(email)
        problem = rules.check_email(email)
        if problem is not None:
            raise ValidationFailed(problem)
        async with public_tx():
            user = await User.get_or_none(email=email, is_active=True)
            if user is not None:
                outbox.enqueue(mail.SEND_RESET_JOB, "public", user.id, suffix=uuid.uuid4().hex)

    async def reset_password(self, token: str, new_password: str) -> User:
        """Set a new password with a reset token; every refresh token of the user is revoked
        and the user's other reset links stop working."""
        problem = rules.check_password(new_password)
        if problem is not None:  # checked first: a weak password leaves the token usable
            raise ValidationFailed(FieldError("newPassword", problem.message))
        password_hash = await asyncio.to_thread(_hasher.hash, new_password)
        now = datetime.now(UTC)
        async with public_tx():
            try:
                row = await mail.consume_token(mail.RESET_PASSWORD, token)
            except mail.InvalidOneTimeToken as exc:
                raise ValidationFailed(FieldError("token", _BAD_TOKEN)) from exc
            user = row.user
            user.password_hash = password_hash
            fields = ["password_hash"]
            if user.email_verified_at is None:  # the link proved they read this mailbox
                user.email_verified_at = now
                fields.append("email_verified_at")
            await user.save(update_fields=fields)
            await OneTimeToken.filter(
                user_id=user.id, purpose=mail.RESET_PASSWORD, used_at=None
            ).update(used_at=now)
            await RefreshToken.filter(user_id=user.id, revoked_at=None).update(revoked_at=now)
            sessions.revoke_after_commit(user.id)  # and the access tokens, within seconds
        return user


email_flows = EmailFlowService()
