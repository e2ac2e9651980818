"""Account e-mail: single-use tokens and the messages that carry them, sent over SMTP.

Tokens are made by the job that sends the mail (`jobs/accounts.py`), so the clear token exists
only in the message: the database keeps its SHA-256, the queue only the user id.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import urlencode

import aiosmtplib
import structlog

from core.settings import Settings
from domain.accounts.models import OneTimeToken, User
from domain.accounts.tokens import hash_refresh_token as hash_token

log = structlog.get_logger(__name__)

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
PURPOSES = (VERIFY_EMAIL, RESET_PASSWORD)

# The ARQ jobs that make a token and mail it (jobs/accounts.py); they take the user id only.
SEND_VERIFICATION_JOB = "accounts.send_email_verification"
SEND_RESET_JOB = "accounts.send_password_reset"
SEND_INVITATION_JOB = "accounts.send_invitation"


class InvalidOneTimeToken(Exception):
    """Unknown, expired, already used, or issued for another purpose or address."""


def ttl_for(settings: Settings, purpose: str) -> timedelta:
    seconds = (
        settings.email_verification_ttl_seconds
        if purpose == VERIFY_EMAIL
        else settings.password_reset_ttl_seconds
    )
    return timedelta(seconds=seconds)


async def issue_token(settings: Settings, purpose: str, user: User) -> str:
    """A new token for `user` (inside the caller's transaction); returns the clear token."""
    token = secrets.token_urlsafe(32)
    await OneTimeToken.create(
        purpose=purpose,
        token_hash=hash_token(token),
        user_id=user.id,
        email=user.email,
        expires_at=datetime.now(UTC) + ttl_for(settings, purpose),
    )
    return token


async def consume_token(purpose: str, token: str) -> OneTimeToken:
    """Mark the token used and return it (with its user), or raise InvalidOneTimeToken.

    Runs in the caller's transaction under a row lock, so two concurrent uses cannot both win.
    """
    if not token or len(token) > 200:
        raise InvalidOneTimeToken
    row = (
        await OneTimeToken.filter(token_hash=hash_token(token), purpose=purpose)
        .select_for_update()
        .first()
    )
    now = datetime.now(UTC)
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise InvalidOneTimeToken
    row.used_at = now
    await row.save(update_fields=["used_at"])
    user = await User.get_or_none(id=row.user_id, is_active=True)
    if user is None or user.email != row.email:
        raise InvalidOneTimeToken
    row.user = user
    return row


def _link(settings: Settings, path: str, token: str) -> str:
    return f"{settings.app_url.rstrip('/')}/{path}?{urlencode({'token': token})}"


def verification_message(settings: Settings, user: User, token: str) -> EmailMessage:
    hours = settings.email_verification_ttl_seconds // 3600
    return _message(
        settings,
        user.email,
        "Confirm your e-mail address",
        f"Hello{' ' + user.display_name if user.display_name else ''},\n\n"
        f"Confirm that {user.email} is your address by opening this link:\n\n"
        f"{_link(settings, 'verify-email', token)}\n\n"
        f"The link works once, for {hours} hours. If you did not sign up for Trendscope, "
        "ignore this message.\n",
    )


def reset_message(settings: Settings, user: User, token: str) -> EmailMessage:
    minutes = settings.password_reset_ttl_seconds // 60
    return _message(
        settings,
        user.email,
        "Reset your Trendscope password",
        "Someone (hopefully you) asked to reset the password of the Trendscope account "
        f"{user.email}. Choose a new password here:\n\n"
        f"{_link(settings, 'reset-password', token)}\n\n"
        f"The link works once, for {minutes} minutes; choosing a new password signs out every "
        "session. If you did not ask for this, ignore this message: your password stays.\n",
    )


def invitation_message(
    settings: Settings,
    *,
    to: str,
    tenant_name: str,
    role: str,
    inviter: str | None,
    expires_at: datetime,
    token: str,
) -> EmailMessage:
    by = f"{inviter} invited you" if inviter else "You are invited"
    return _message(
        settings,
        to,
        f"Join {tenant_name} on Trendscope",
        f"{by} to join {tenant_name} on Trendscope as {role}. Accept here:\n\n"
        f"{_link(settings, 'accept-invitation', token)}\n\n"
        f"The link works once, until {expires_at:%Y-%m-%d %H:%M} UTC. If you do not know "
        "this team, ignore this message.\n",
    )


def _message(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp.from_address
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


async def send(settings: Settings, message: EmailMessage) -> None:
    """Deliver through the configured SMTP server (aiosmtplib).

    Without `SMTP__HOST` a development server logs the message (links included) instead, so
    the flows can be tried locally; production refuses."""
    smtp = settings.smtp
    if smtp.host is None:
        if settings.is_production:
            raise RuntimeError("SMTP__HOST is not set: account mail cannot be sent")
        log.warning(
            "mail_not_sent_no_smtp_host",
            to=message["To"],
            subject=message["Subject"],
            body=message.get_content(),
        )
        return
    await aiosmtplib.send(
        message,
        hostname=smtp.host,
        port=smtp.port,
        username=smtp.user,
        password=smtp.password,
        use_tls=smtp.use_tls,
        start_tls=smtp.starttls and not smtp.use_tls,
        timeout=smtp.timeout_seconds,
    )
