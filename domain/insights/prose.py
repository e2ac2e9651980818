"""Optional rewrite of a digest's prose by an OpenAI-compatible chat completions endpoint.

Off unless `INSIGHTS_LLM_URL` is set. The figures, highlights and recommendations stay the
data-built ones; the model only gets them as JSON and returns a short paragraph, stored beside
them as `prose`. Any failure (network, status, shape) leaves the digest without prose."""

from __future__ import annotations

import json
from typing import Any

import httpx
import structlog

from core.settings import Settings

log = structlog.get_logger(__name__)

SYSTEM_PROMPT = (
    "You write the daily digest of a social media analytics product. Rewrite the JSON you are "
    "given as one short, plain paragraph for a marketing manager. Use only the figures in it; "
    "do not invent numbers, names or causes."
)


class ProseRewriter:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.transport = transport

    @classmethod
    def from_settings(cls, settings: Settings) -> ProseRewriter | None:
        if not settings.insights_llm_url:
            return None
        return cls(
            settings.insights_llm_url,
            settings.insights_llm_model,
            settings.insights_llm_api_key,
            settings.insights_llm_timeout_seconds,
        )

    async def rewrite(self, digest: dict[str, Any]) -> str | None:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        request = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": json.dumps(digest, ensure_ascii=False)},
            ],
            "temperature": 0.2,
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as http:
                response = await http.post(self.url, json=request, headers=headers)
                response.raise_for_status()
                content = response.json()["choices"][0]["message"]["content"]
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning("digest_prose_failed", url=self.url, error=str(exc))
            return None
        text = content.strip() if isinstance(content, str) else ""
        return text[:4000] or None
