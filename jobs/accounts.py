"""ARQ jobs of the accounts context: verification, password-reset and invitation mail.

Each job takes the user id only, makes the single-use token in its own short transaction
(committed before the mail leaves, so the link works when it arrives) and sends the message.
A failed delivery raises and ARQ retries; the retry makes a fresh token.
"""

from __future__ import annotations

from typing import Any

import structlog

from core.settings import get_settings
from domain.accounts import mail
from domain.accounts.members import members
from domain.accounts.models import User
from jobs.registry import job
from tenants.tx import public_tx

log = structlog.get_logger(__name__)


@job(mail.SEND_VERIFICATION_JOB, max_tries=5, timeout=60)
async def send_email_verification(ctx: dict[str, Any], schema: str, user_id: int) -> str:
    settings = get_settings()
    async with public_tx():
        user = await User.get_or_none(id=user_id, is_active=True)
        if user is None or user.email_verified_at is not None:
            return "nothing to send"
        token = await mail.issue_token(settings, mail.VERIFY_EMAIL, user)
    await mail.send(settings, mail.verification_message(settings, user, token))
    log.info("accounts.verification_sent", user_id=user_id)
    return "sent"


@job(mail.SEND_RESET_JOB, max_tries=5, timeout=60)
async def send_password_reset(ctx: dict[str, Any], schema: str, user_id: int) -> str:
    settings = get_settings()
    async with public_tx():
        user = await User.get_or_none(id=user_id, is_active=True)
        if user is None:
            return "nothing to send"
        token = await mail.issue_token(settings, mail.RESET_PASSWORD, user)
    await mail.send(settings, mail.reset_message(settings, user, token))
    log.info("accounts.password_reset_sent", user_id=user_id)
    return "sent"


@job(mail.SEND_INVITATION_JOB, max_tries=5, timeout=60)
async def send_invitation(ctx: dict[str, Any], schema: str, invitation_id: int) -> str:
    """Mail a pending invitation's accept link (a fresh token, committed before it leaves)."""
    settings = get_settings()
    issued = await members.reissue_for_mail(invitation_id)
    if issued is None:
        return "nothing to send"
    invitation, token = issued
    inviter = invitation.invited_by
    await mail.send(
        settings,
        mail.invitation_message(
            settings,
            to=invitation.email,
            tenant_name=invitation.tenant.name,
            role=invitation.role,
            inviter=(inviter.display_name or inviter.email) if inviter else None,
            expires_at=invitation.expires_at,
            token=token,
        ),
    )
    log.info("accounts.invitation_sent", invitation_id=invitation_id)
    return "sent"
