"""Process settings, read from the environment (and a `.env` file when present)."""

from __future__ import annotations

import base64
import hashlib
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MAX_COST = 5_000
# Published in this repository: fine on a laptop, refused in production (`insecure_settings`).
DEV_SECRET_KEY = "dev-insecure-change-me-0123456789abcdef"
MIN_SECRET_BYTES = 32


class Limits(BaseModel):
    """Abuse limits of the GraphQL API, all in one place (docs/api-limits.md).

    Set from the environment with the `LIMITS__` prefix, e.g. `LIMITS__MAX_DEPTH=12` or
    `LIMITS__PLAN_MAX_COST='{"pro": 20000}'`.
    """

    max_depth: int = Field(default=10, ge=1)
    max_aliases: int = Field(default=15, ge=0)
    # Lexical tokens of the document (comments are capped separately at the same number).
    max_tokens: int = Field(default=2_000, ge=1)
    max_query_length: int = Field(default=100_000, ge=1)
    max_directives: int = Field(default=25, ge=0)
    # Query cost: objects 1, scalars 0, lists and connections x `first`/`last`/`limit`.
    # Each plan has its ceiling (tenants/plans.py `max_query_cost`); `max_cost`, when set,
    # overrides it for every plan, and `plan_max_cost` overrides both for the plans it names.
    # Requests without a tenant get `max_cost`, else DEFAULT_MAX_COST.
    max_cost: int | None = Field(default=None, ge=1)
    plan_max_cost: dict[str, int] = Field(default_factory=dict)
    # Assumed size of a list field that takes no `first`/`last`/`limit` argument.
    default_list_size: int = Field(default=10, ge=1)
    # Operations in one batched (JSON array) request.
    max_batch: int = Field(default=10, ge=1)
    # Bytes of a JSON request body; larger is 413 REQUEST_TOO_LARGE, refused while reading
    # (a multipart upload may carry `import_max_bytes` more, for the file).
    max_json_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # None: on in development and test, off in production.
    introspection: bool | None = None
    suggestions: bool | None = None
    # Automatic persisted queries kept in Redis this long after their last use.
    apq_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # How long an api process trusts its copy of a tenant's plan and allow-list switch.
    tenant_policy_ttl_seconds: float = Field(default=10.0, ge=0)


class Smtp(BaseModel):
    """Outgoing mail (verification and password-reset links), e.g. `SMTP__HOST=smtp.example`.

    `starttls` upgrades a plain connection (port 587); `use_tls` is implicit TLS (port 465).
    No host: production refuses to send; development and tests log the message instead.
    """

    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    user: str | None = None
    password: str | None = None
    from_address: str = "Trendscope <no-reply@trendscope.localhost>"
    starttls: bool = True
    use_tls: bool = False
    timeout_seconds: float = Field(default=30.0, gt=0)


class SignInProvider(BaseModel):
    """One OAuth / OpenID Connect sign-in provider (docs/authentication.md).

    `google` and `github` need only `client_id` and `client_secret`; any other name is an
    OpenID Connect issuer found by `discovery_url` (`.../.well-known/openid-configuration`).
    The other fields override the preset or the discovery document (staging, test fakes).
    """

    client_id: str
    client_secret: str
    kind: Literal["oidc", "github"] | None = None  # None: "github" for github, else "oidc"
    discovery_url: str | None = None
    scope: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    api_base_url: str | None = None  # GitHub's REST API (/user, /user/emails)
    # The exact redirect URI registered with the provider; by default
    # `<public_url>/auth/<name>/callback`.
    redirect_uri: str | None = None
    display_name: str | None = None


class RateLimits(BaseModel):
    """Request rate limits (docs/api-keys.md), set with the `RATE_LIMITS__` prefix.

    Every authenticated request counts against its tenant's hourly budget (the plan's
    `api_requests_per_hour`) and its credential's share of it; the sign-in mutations and the
    token endpoint are limited per client IP and per account / client id.
    """

    enabled: bool = True
    # One credential (a user's token, an API key, a partner app) may use this share of the
    # tenant's budget, so one runaway integration cannot exhaust the whole tenant's.
    credential_share: float = Field(default=0.5, gt=0, le=1)
    # Requests per hour by plan name, overriding tenants/plans.py (staging, tests).
    plan_requests_per_hour: dict[str, int] = Field(default_factory=dict)
    # logIn / signUp / refreshToken and POST /oauth/token: attempts per client IP and per
    # account (e-mail) or client id, in `auth_period_seconds`.
    auth_per_ip: int = Field(default=100, ge=1)
    auth_per_account: int = Field(default=10, ge=1)
    auth_period_seconds: float = Field(default=900, gt=0)
    # Requests without a credential (GraphQL, OAuth callbacks...), per client IP, in
    # `anonymous_period_seconds`; probes, /metrics and signed webhooks are not counted.
    anonymous_per_ip: int = Field(default=600, ge=1)
    anonymous_period_seconds: float = Field(default=3600, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_nested_delimiter="__")

    env: Literal["development", "production", "test"] = "development"
    # None means "start the embedded server" (only `trendscope up` does that).
    database_url: str | None = None
    redis_url: str | None = None
    # Signs every access token: whoever knows it can mint an owner token for any tenant.
    # Production refuses the published development default and anything under 32 bytes.
    secret_key: str = Field(default=DEV_SECRET_KEY, min_length=32)
    jwt_issuer: str = "trendscope"
    jwt_audience: str = "trendscope-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # Revocation (domain/accounts/sessions.py): how long a process trusts its copy of a user's
    # session version; the bound on a revocation's delay when its pub/sub message is lost.
    session_check_seconds: float = Field(default=2.0, gt=0, le=60)
    # Browser origins allowed to open the websocket (JSON list or comma-separated, e.g.
    # https://app.example.com). Unset: any origin outside production, only APP_URL's in
    # production. Clients that send no Origin (not browsers) are not concerned.
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Member invitations (docs/members.md): how long an invitation's token may be accepted.
    invitation_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    data_dir: Path = Path(".trendscope")
    db_pool_min: int = 1
    db_pool_max: int = 10
    # Behind PgBouncer in transaction mode the statement cache must be off (design.md).
    db_statement_cache_size: int = 100
    # Set when DATABASE_URL points at PgBouncer (transaction mode): forces the cache to 0.
    database_pgbouncer: bool = False
    # A request waits at most this long for a pooled connection, then gets 503
    # SERVICE_UNAVAILABLE with Retry-After instead of hanging (tenants/pgclient.py).
    db_acquire_timeout_seconds: float = Field(default=5.0, gt=0)
    # Server-side limits on every connection (milliseconds, 0 = off): PostgreSQL cancels a
    # statement running longer, and closes a connection idle inside a transaction longer.
    db_statement_timeout_ms: int = Field(default=60_000, ge=0)
    db_idle_in_transaction_timeout_ms: int = Field(default=60_000, ge=0)
    arq_queue_name: str = "trendscope:arq"
    dramatiq_namespace: str = "trendscope-dramatiq"
    import_batch_size: int = Field(default=500, ge=1, le=10_000)
    import_max_bytes: int = 20 * 1024 * 1024
    max_page_size: int = 100
    subscription_queue_size: int = 256
    # Redis keys of automatic persisted queries: <prefix>:<tenant schema | public>:<sha256>
    apq_key_prefix: str = "trendscope:apq"
    # Redis keys of the platform quota buckets: <prefix>:quota:<platform>:<credential>:<bucket>
    quota_key_prefix: str = "trendscope"
    # Redis keys of the rate-limit buckets: <prefix>:<what>:<who>
    rate_limit_key_prefix: str = "trendscope:rl"
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    # Partner apps' access tokens (client credentials) live this long.
    partner_token_ttl_seconds: int = Field(default=3600, ge=60)
    # An API key's last_used_at is written at most this often (one write per key per minute).
    api_key_touch_seconds: float = Field(default=60, ge=0)
    log_level: str = "INFO"
    # `/metrics` on the API port answers only `Authorization: Bearer <METRICS_TOKEN>` when set;
    # unset, it is open outside production and 404 in production (docs/operations.md).
    # An empty value (compose's `${METRICS_TOKEN:-}`) counts as unset.
    metrics_token: str | None = None
    # Fernet keys (comma-separated, the first is current) that encrypt platform credentials at
    # rest; rotate by prepending a new key. Required in production; elsewhere a key derived
    # from SECRET_KEY is used, with a warning.
    credential_keys: str | None = None
    # Collection: platform API base URLs to override (JSON, e.g. {"youtube": "http://..."}) for
    # staging or test fakes; comments are fetched for the newest N posts of the last D days.
    connector_base_urls: dict[str, str] = Field(default_factory=dict)
    # OAuth connection flows (docs/connectors.md), per platform ("x", "instagram"): client_id,
    # client_secret, and for staging or test fakes authorize_url, token_url, api_base_url,
    # redirect_uri. JSON, e.g. OAUTH_PLATFORMS='{"x": {"client_id": "...", ...}}'.
    oauth_platforms: dict[str, dict[str, str]] = Field(default_factory=dict)
    collect_comment_posts: int = Field(default=10, ge=0, le=100)
    collect_comment_days: int = Field(default=7, ge=0, le=90)
    # Per-tenant collection schedule: None means each plan's `collect_interval_hours`.
    collect_interval_hours: int | None = Field(default=None, ge=1)
    # Job retries (docs/operations.md, "Job retries"): a collection task whose run fails
    # (platform unreachable, database blip, lost job) is retried after base * 2^(n-1) seconds,
    # capped, until `job_max_attempts` runs in a row have failed without progress or the
    # failures have lasted `job_max_age_seconds`; then it ends FAILED with the reason.
    job_max_attempts: int = Field(default=8, ge=1, le=100)
    job_max_age_seconds: float = Field(default=3600.0, gt=0)
    job_retry_base_seconds: float = Field(default=5.0, gt=0)
    job_retry_max_seconds: float = Field(default=300.0, gt=0)
    # The first back-off window of a connector's in-call retries (it doubles per attempt).
    connector_retry_base_seconds: float = Field(default=1.0, gt=0)
    # Stripe (docs/billing.md). Price ids per plan and interval, JSON:
    # STRIPE_PRICES='{"pro": {"month": "price_...", "year": "price_..."}, ...}'.
    # STRIPE_API_BASE points the client elsewhere (staging proxies, the tests' fake).
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_prices: dict[str, dict[str, str]] = Field(default_factory=dict)
    stripe_api_base: str | None = None
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1)
    # Where Checkout and the Customer Portal send the user back ({tenant} = the tenant's slug).
    billing_success_url: str = "http://localhost:8000/billing/success?tenant={tenant}"
    billing_cancel_url: str = "http://localhost:8000/billing/cancel?tenant={tenant}"
    billing_portal_return_url: str = "http://localhost:8000/billing?tenant={tenant}"
    # Dunning: days a past-due tenant keeps full access before it is restricted to read-only.
    billing_grace_days: float = Field(default=7, ge=0)
    # Outbound webhooks (docs/webhooks.md): attempts per message, exponential back-off
    # (base * 2^(attempt-1), capped), per-request timeout, and whether endpoints may be private
    # addresses (loopback, RFC 1918, link-local...): None = only outside production.
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_retry_base_seconds: float = Field(default=30.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=6 * 3600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_allow_private_urls: bool | None = None
    # Keep serving (with /readyz at 503) this long after SIGTERM before draining.
    shutdown_delay_seconds: float = Field(default=0.0, ge=0)
    limits: Limits = Field(default_factory=Limits)
    # Optional rewrite of the daily digest's prose by an OpenAI-compatible endpoint (base URL
    # such as https://api.openai.com/v1); off when unset (docs/analytics.md).
    insights_llm_url: str | None = None
    insights_llm_api_key: str | None = None
    insights_llm_model: str = "gpt-4o-mini"
    insights_llm_timeout_seconds: float = Field(default=30.0, gt=0)
    # The API's external base URL (https://api.example.com): sign-in redirect URIs are
    # `<public_url>/auth/<provider>/callback`. Required in production; elsewhere the request's
    # own URL is used.
    public_url: str | None = None
    # The web app: e-mail links (`/verify-email?token=`, `/reset-password?token=`) and the end
    # of a provider sign-in (`/auth/complete?code=` or `?error=`) point there.
    app_url: str = "http://localhost:3000"
    # Sign-in providers by name, JSON, e.g.
    # SIGN_IN_PROVIDERS='{"google": {"client_id": "...", "client_secret": "..."}}'.
    sign_in_providers: dict[str, SignInProvider] = Field(default_factory=dict)
    sign_in_state_ttl_seconds: int = Field(default=600, ge=30)
    sign_in_code_ttl_seconds: int = Field(default=120, ge=10)
    email_verification_ttl_seconds: int = Field(default=48 * 3600, ge=60)
    password_reset_ttl_seconds: int = Field(default=3600, ge=60)
    smtp: Smtp = Field(default_factory=Smtp)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    def websocket_origin_allowed(self, origin: str | None) -> bool:
        """May a browser on `origin` open the websocket? No Origin: not a browser, yes."""
        if origin is None:
            return True
        allowed = self.allowed_origins
        if not allowed:
            if not self.is_production:
                return True
            allowed = [self.app_url]
        return _origin(origin) in {_origin(o) for o in allowed}

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        """Production does not start on a public or missing secret (`trendscope check-config`
        lists the same problems without starting anything)."""
        if self.is_production:
            problems = insecure_settings(self)
            if problems:
                raise ValueError("refusing to start in production:\n  - " + "\n  - ".join(problems))
        return self

    @property
    def introspection_enabled(self) -> bool:
        on = self.limits.introspection
        return not self.is_production if on is None else on

    @property
    def suggestions_enabled(self) -> bool:
        on = self.limits.suggestions
        return not self.is_production if on is None else on

    @property
    def webhook_private_urls_allowed(self) -> bool:
        on = self.webhook_allow_private_urls
        return not self.is_production if on is None else on

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set (trendscope up starts an embedded one)")
        return self.database_url

    def credential_key_list(self) -> list[str]:
        keys = [k.strip() for k in (self.credential_keys or "").split(",") if k.strip()]
        if keys:
            return keys
        if self.is_production:
            raise RuntimeError(
                "CREDENTIAL_KEYS is not set: generate one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            )
        warnings.warn(
            "CREDENTIAL_KEYS is not set: platform credentials are encrypted with a key derived "
            "from SECRET_KEY (development only)",
            stacklevel=2,
        )
        digest = hashlib.sha256(b"trendscope-credentials:" + self.secret_key.encode()).digest()
        return [base64.urlsafe_b64encode(digest).decode()]

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError("REDIS_URL is not set (trendscope up starts an embedded one)")
        return self.redis_url


def insecure_settings(settings: Settings) -> list[str]:
    """What would make `settings` unsafe in production, one line per setting, naming it."""
    problems = []
    secret = settings.secret_key
    if secret == DEV_SECRET_KEY:
        problems.append("SECRET_KEY is the published development default: set a random one")
    elif len(secret.encode()) < MIN_SECRET_BYTES:
        problems.append(f"SECRET_KEY is shorter than {MIN_SECRET_BYTES} bytes")
    if not [k for k in (settings.credential_keys or "").split(",") if k.strip()]:
        problems.append(
            "CREDENTIAL_KEYS is not set (Fernet keys that encrypt platform credentials): "
            "python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        )
    if not settings.public_url:
        problems.append("PUBLIC_URL is not set (the API's external https:// base URL)")
    elif not settings.public_url.startswith("https://"):
        problems.append("PUBLIC_URL must be an https:// URL in production")
    if not settings.database_url:
        problems.append("DATABASE_URL is not set")
    if not settings.redis_url:
        problems.append("REDIS_URL is not set")
    if _is_local(settings.app_url):
        # e-mail links and the end of a sign-in point there; the websocket's Origin check
        # allows only its origin unless ALLOWED_ORIGINS says otherwise
        problems.append("APP_URL is the development default (localhost): set the web app's URL")
    if settings.stripe_api_key:
        if not settings.stripe_webhook_secret:
            problems.append("STRIPE_WEBHOOK_SECRET is not set while STRIPE_API_KEY is")
        for name in ("billing_success_url", "billing_cancel_url", "billing_portal_return_url"):
            if _is_local(getattr(settings, name)):
                problems.append(f"{name.upper()} points at localhost while STRIPE_API_KEY is set")
    return problems


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in {"localhost", "127.0.0.1", "::1"} or host.endswith(".localhost")


def _origin(url: str) -> str:
    """scheme://host[:port], lower-case, default ports dropped (RFC 6454 serialisation)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip().lower()
    if not parts.scheme or not parts.hostname:
        return url.strip().lower()  # "null" (sandboxed pages) or garbage: matches itself only
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    host = parts.hostname.lower()
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port and port != default else "")


@lru_cache
def get_settings() -> Settings:
    return Settings()
