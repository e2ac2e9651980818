"""A local OpenID Connect provider and a GitHub-style OAuth 2.0 provider, served over HTTP.

Speaks the documented shapes: OIDC Discovery (`/.well-known/openid-configuration`), a JWKS,
the RFC 6749 token endpoint returning an RS256 ID token (OIDC Core 3.1.3.3); GitHub's
`/login/oauth/access_token`, `/user` and `/user/emails`. The browser's visit to `/authorize`
is simulated by `authorize()`: it checks the request the way the provider would and returns
the redirect back to the client with a fresh code.

Each code is single use. A code can carry `tamper` instructions for the ID token it yields
(other nonce, audience, issuer, expired, signed with an unknown key).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CLIENT_ID = "trendscope-client"
CLIENT_SECRET = "trendscope-secret"


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    subject: str
    email: str | None
    email_verified: bool
    name: str
    tamper: dict[str, Any]


@dataclass
class GitHubUser:
    id: int
    login: str
    name: str | None
    emails: list[dict[str, Any]]


@dataclass
class FakeProvider:
    url: str = ""
    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "test-key-1"})
    )
    codes: dict[str, Grant] = field(default_factory=dict)
    github_codes: dict[str, tuple[str, str, GitHubUser]] = field(default_factory=dict)
    github_tokens: dict[str, GitHubUser] = field(default_factory=dict)
    access_tokens: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    api_requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def authorize(
        self,
        authorization_url: str,
        *,
        subject: str,
        email: str | None,
        email_verified: bool = True,
        name: str = "",
        **tamper: Any,
    ) -> tuple[str, dict[str, str]]:
        """The user consents at /authorize: returns (redirect_uri, {"code", "state"})."""
        url = urlparse(authorization_url)
        assert f"{url.scheme}://{url.netloc}{url.path}" == f"{self.url}/authorize"
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
        assert "openid" in q["scope"].split()
        assert q["code_challenge_method"] == "S256" and q["code_challenge"]
        assert q["state"] and q["nonce"]
        code = secrets.token_urlsafe(16)
        self.codes[code] = Grant(
            client_id=q["client_id"],
            redirect_uri=q["redirect_uri"],
            challenge=q["code_challenge"],
            nonce=q["nonce"],
            subject=subject,
            email=email,
            email_verified=email_verified,
            name=name,
            tamper=tamper,
        )
        return q["redirect_uri"], {"code": code, "state": q["state"]}

    def authorize_github(
        self, authorization_url: str, user: GitHubUser
    ) -> tuple[str, dict[str, str]]:
        url = urlparse(authorization_url)
        assert f"{url.scheme}://{url.netloc}{url.path}" == f"{self.url}/login/oauth/authorize"
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert q["client_id"] == CLIENT_ID and q["state"]
        code = secrets.token_urlsafe(16)
        self.github_codes[code] = (q["redirect_uri"], q.get("code_challenge", ""), user)
        return q["redirect_uri"], {"code": code, "state": q["state"]}

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": grant.subject,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            "name": grant.name,
            "email_verified": grant.email_verified,
        }
        if grant.email:
            claims["email"] = grant.email
        if grant.tamper.get("thin"):  # the profile is only at the UserInfo endpoint
            for claim in ("email", "email_verified", "name"):
                claims.pop(claim, None)
        for claim in ("nonce", "aud", "iss", "exp"):
            if claim in grant.tamper:
                claims[claim] = grant.tamper[claim]
        if grant.tamper.get("hs256"):  # algorithm confusion: "signed" with the client secret
            return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(CLIENT_SECRET))
        kid = str(self.key.kid)
        key = self.key
        if grant.tamper.get("foreign_key"):  # same kid, another key
            key = RSAKey.generate_key(2048, parameters={"kid": kid})
        return jwt.encode({"alg": "RS256", "kid": kid}, claims, key)

    def rotate_key(self, kid: str) -> None:
        """The provider rolls its signing key: new tokens carry a kid clients have not seen."""
        self.key = RSAKey.generate_key(2048, parameters={"kid": kid})


def _client_auth(request: Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        return cid, secret
    return form.get("client_id", ""), form.get("client_secret", "")


def _s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def _app(fake: FakeProvider) -> Starlette:
    async def discovery(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": fake.issuer,
                "authorization_endpoint": f"{fake.url}/authorize",
                "token_endpoint": f"{fake.url}/token",
                "jwks_uri": f"{fake.url}/jwks",
                "userinfo_endpoint": f"{fake.url}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(KeySet([fake.key]).as_dict(private=False))

    def refuse(error: str) -> JSONResponse:
        return JSONResponse({"error": error}, status_code=400)

    async def token(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        cid, secret = _client_auth(request, form)
        fake.token_requests.append({"form": form, "auth": request.headers.get("authorization")})
        if (cid, secret) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "authorization_code":
            return refuse("unsupported_grant_type")
        grant = fake.codes.pop(form.get("code", ""), None)  # single use
        if grant is None:
            return refuse("invalid_grant")
        if form.get("redirect_uri") != grant.redirect_uri:
            return refuse("invalid_grant")
        if _s256(form.get("code_verifier", "")) != grant.challenge:
            return refuse("invalid_grant")
        access = secrets.token_urlsafe(16)
        fake.access_tokens[access] = grant
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": fake.id_token(grant),
            },
            headers={"Cache-Control": "no-store"},
        )

    async def userinfo(request: Request) -> JSONResponse:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        grant = fake.access_tokens.get(value) if scheme.lower() == "bearer" else None
        if grant is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        info: dict[str, Any] = {
            "sub": grant.tamper.get("userinfo_sub", grant.subject),
            "email_verified": grant.email_verified,
            "name": grant.name,
        }
        if grant.email:
            info["email"] = grant.email
        return JSONResponse(info)

    async def github_token(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        fake.token_requests.append(
            {"form": form, "auth": request.headers.get("authorization"), "github": True}
        )
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"error": "incorrect_client_credentials"})
        entry = fake.github_codes.pop(form.get("code", ""), None)
        if entry is None or form.get("redirect_uri") != entry[0]:
            # GitHub answers 200 with an error body
            return JSONResponse({"error": "bad_verification_code"})
        if entry[1] and _s256(form.get("code_verifier", "")) != entry[1]:
            return JSONResponse({"error": "bad_verification_code"})
        access = f"gho_{secrets.token_hex(12)}"
        fake.github_tokens[access] = entry[2]
        return JSONResponse({"access_token": access, "token_type": "bearer", "scope": "user"})

    def github_user_of(request: Request) -> GitHubUser | None:
        fake.api_requests.append(
            {"path": request.url.path, "auth": request.headers.get("authorization")}
        )
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return fake.github_tokens.get(value) if scheme.lower() == "bearer" else None

    async def github_user(request: Request) -> JSONResponse:
        user = github_user_of(request)
        if user is None:
            return JSONResponse({"message": "Requires authentication"}, status_code=401)
        return JSONResponse({"login": user.login, "id": user.id, "name": user.name})

    async def github_emails(request: Request) -> JSONResponse:
        user = github_user_of(request)
        if user is None:
            return JSONResponse({"message": "Requires authentication"}, status_code=401)
        return JSONResponse(user.emails)

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            # the same document under another path: its issuer is not that path's
            Route("/impostor/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/token", token, methods=["POST"]),
            Route("/userinfo", userinfo),
            Route("/login/oauth/access_token", github_token, methods=["POST"]),
            Route("/user", github_user),
            Route("/user/emails", github_emails),
        ]
    )


@asynccontextmanager
async def running_provider() -> AsyncIterator[FakeProvider]:
    fake = FakeProvider()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    srv = uvicorn.Server(
        uvicorn.Config(_app(fake), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        srv.should_exit = True
        await task
