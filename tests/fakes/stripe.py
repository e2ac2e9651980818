"""A fake Stripe API on a loopback port: the documented request and response shapes of the
endpoints Trendscope calls (form-encoded bodies with bracketed keys, `Authorization: Bearer`,
`Idempotency-Key` replays, objects with `id` and `object`, list objects, error bodies), plus
what a customer and Stripe's billing engine do in between (completing a checkout, a card
failing, a retry succeeding) and webhook events signed the way Stripe signs them
(`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the endpoint secret>`).

It stands in for the external service only; the app talks to it through stripe-python
(`STRIPE_API_BASE`).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_KEY = "sk_test_fake_0123456789"
WEBHOOK_SECRET = "whsec_test_fake_secret_0123456789"
API_VERSION = "2026-10-28.endive"
PRICES = {
    "starter": {"month": "price_starter_month", "year": "price_starter_year"},
    "pro": {"month": "price_pro_month", "year": "price_pro_year"},
}
AMOUNTS = {
    "price_starter_month": 2900,
    "price_starter_year": 29000,
    "price_pro_month": 9900,
    "price_pro_year": 99000,
}
MONTH = 30 * 24 * 3600


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) back to nested dicts and lists."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt: Any = value if last else ([] if parts[i + 1].isdigit() else {})
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None or last:
                    node[index] = nxt
                node = node[index]
            else:
                if part not in node or last:
                    node[part] = nxt
                node = node[part]
    return out


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for `payload` (Stripe's documented scheme)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


@dataclass
class Recorded:
    method: str
    path: str
    idempotency_key: str | None
    params: dict[str, Any]


@dataclass
class FakeStripe:
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    replays: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    clock: int = field(default_factory=lambda: int(time.time()))

    run: str = field(default_factory=lambda: secrets.token_hex(4))  # ids unique across runs

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_test{self.run}{next(self.ids):06d}"

    # --- the API -----------------------------------------------------------------------------

    async def _call(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {API_KEY}":
            return _error(401, "Invalid API Key provided.")
        body = (await request.body()).decode()
        params = decode_form(body) if request.method == "POST" else dict(request.query_params)
        key = request.headers.get("idempotency-key")
        self.requests.append(Recorded(request.method, request.url.path, key, params))
        if request.method == "POST" and key:
            replay = self.replays.get((request.url.path, key))
            if replay is not None:  # Stripe returns the first response for a reused key
                return JSONResponse(
                    replay[1], status_code=replay[0], headers={"Idempotent-Replayed": "true"}
                )
        status, obj = self._route(request.method, request.url.path, params)
        if request.method == "POST" and key:
            self.replays[(request.url.path, key)] = (status, obj)
        return JSONResponse(obj, status_code=status, headers={"Stripe-Version": API_VERSION})

    def _route(self, method: str, path: str, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/customers":
            return 200, self._create_customer(p)
        if method == "POST" and path == "/v1/checkout/sessions":
            return self._create_session(p)
        if method == "POST" and path == "/v1/billing_portal/sessions":
            if p.get("customer") not in self.customers:
                return 400, {
                    "error": {"type": "invalid_request_error", "message": "No such customer"}
                }
            return 200, {
                "id": self._new_id("bps"),
                "object": "billing_portal.session",
                "customer": p["customer"],
                "return_url": p.get("return_url"),
                "livemode": False,
                "url": f"https://billing.stripe.com/p/session/{self._new_id('test')}",
            }
        if method == "GET" and len(parts) == 4 and parts[1:3] == ["checkout", "sessions"]:
            return self._get(self.sessions, parts[3], "checkout.session")
        if method == "GET" and len(parts) == 3 and parts[1] == "subscriptions":
            return self._get(self.subscriptions, parts[2], "subscription")
        if method == "GET" and len(parts) == 3 and parts[1] == "invoices":
            return self._get(self.invoices, parts[2], "invoice")
        if method == "GET" and path == "/v1/invoices":
            return 200, self._list_invoices(p)
        return 404, {
            "error": {
                "type": "invalid_request_error",
                "message": f"Unrecognized request URL ({method}: {path}).",
            }
        }

    def _get(
        self, table: dict[str, dict[str, Any]], ident: str, kind: str
    ) -> tuple[int, dict[str, Any]]:
        if ident not in table:
            return 404, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "message": f"No such {kind}: '{ident}'",
                }
            }
        return 200, table[ident]

    def _create_customer(self, p: dict[str, Any]) -> dict[str, Any]:
        cid = self._new_id("cus")
        self.customers[cid] = {
            "id": cid,
            "object": "customer",
            "created": self.clock,
            "email": p.get("email"),
            "name": p.get("name"),
            "metadata": p.get("metadata", {}),
            "livemode": False,
        }
        return self.customers[cid]

    def _create_session(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        price = (p.get("line_items") or [{}])[0].get("price")
        if price not in AMOUNTS:
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "param": "line_items[0][price]",
                    "message": f"No such price: '{price}'",
                }
            }
        sid = self._new_id("cs")
        self.sessions[sid] = {
            "id": sid,
            "object": "checkout.session",
            "mode": p.get("mode"),
            "customer": p.get("customer"),
            "client_reference_id": p.get("client_reference_id"),
            "metadata": p.get("metadata", {}),
            "status": "open",
            "payment_status": "unpaid",
            "subscription": None,
            "success_url": p.get("success_url"),
            "cancel_url": p.get("cancel_url"),
            "url": f"https://checkout.stripe.com/c/pay/{sid}",
            "livemode": False,
            # kept for `complete_checkout` (the real session has them as line items)
            "_price": price,
            "_subscription_metadata": (p.get("subscription_data") or {}).get("metadata", {}),
        }
        return 200, self._public(self.sessions[sid])

    @staticmethod
    def _public(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def _list_invoices(self, p: dict[str, Any]) -> dict[str, Any]:
        rows = sorted(
            (i for i in self.invoices.values() if i["customer"] == p.get("customer")),
            key=lambda i: (i["created"], i["id"]),
            reverse=True,
        )
        if p.get("starting_after"):
            ids = [i["id"] for i in rows]
            if p["starting_after"] in ids:
                rows = rows[ids.index(p["starting_after"]) + 1 :]
        limit = int(p.get("limit", 10))
        return {
            "object": "list",
            "url": "/v1/invoices",
            "has_more": len(rows) > limit,
            "data": rows[:limit],
        }

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/{path:path}", self._call, methods=["GET", "POST"])])

    # --- what happens outside the API (the customer, Stripe's billing engine) ----------------

    def tick(self, seconds: int = 60) -> int:
        self.clock += seconds
        return self.clock

    def _invoice(self, sub: dict[str, Any], status: str, attempted: bool) -> dict[str, Any]:
        price = sub["items"]["data"][0]["price"]["id"]
        iid = self._new_id("in")
        invoice = {
            "id": iid,
            "object": "invoice",
            "customer": sub["customer"],
            "number": f"TS-{len(self.invoices) + 1:04d}",
            "status": status,
            "currency": "usd",
            "amount_due": AMOUNTS[price],
            "amount_paid": AMOUNTS[price] if status == "paid" else 0,
            "amount_remaining": 0 if status == "paid" else AMOUNTS[price],
            "attempted": attempted,
            "created": self.tick(),
            "hosted_invoice_url": f"https://invoice.stripe.com/i/{iid}",
            "invoice_pdf": f"https://pay.stripe.com/invoice/{iid}/pdf",
            "livemode": False,
            "parent": {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"subscription": sub["id"], "metadata": sub["metadata"]},
            },
        }
        self.invoices[iid] = invoice
        sub["latest_invoice"] = iid
        return invoice

    def complete_checkout(self, session_id: str) -> list[dict[str, Any]]:
        """The customer pays on the Checkout page: a subscription and a paid invoice."""
        session = self.sessions[session_id]
        price = session["_price"]
        sid = self._new_id("sub")
        start = self.tick()
        sub = {
            "id": sid,
            "object": "subscription",
            "customer": session["customer"],
            "status": "active",
            "metadata": session["_subscription_metadata"],
            "cancel_at_period_end": False,
            "created": start,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": self._new_id("si"),
                        "object": "subscription_item",
                        "price": {
                            "id": price,
                            "object": "price",
                            "unit_amount": AMOUNTS[price],
                            "currency": "usd",
                            "recurring": {"interval": price.rsplit("_", 1)[1]},
                        },
                        "quantity": 1,
                        "current_period_start": start,
                        "current_period_end": start + MONTH,
                    }
                ],
                "has_more": False,
                "url": f"/v1/subscription_items?subscription={sid}",
            },
            "latest_invoice": None,
            "livemode": False,
        }
        self.subscriptions[sid] = sub
        invoice = self._invoice(sub, "paid", attempted=True)
        session.update(status="complete", payment_status="paid", subscription=sid)
        return [
            self.event("customer.subscription.created", sub),
            self.event("invoice.paid", invoice),
            self.event("checkout.session.completed", self._public(session)),
        ]

    def fail_renewal(self, sub_id: str) -> list[dict[str, Any]]:
        """The renewal charge is declined: the invoice stays open, the subscription past_due."""
        sub = self.subscriptions[sub_id]
        previous = {"status": sub["status"]}
        sub["status"] = "past_due"
        invoice = self._invoice(sub, "open", attempted=True)
        return [
            self.event("invoice.payment_failed", invoice),
            self.event("customer.subscription.updated", sub, previous),
        ]

    def pay_open_invoice(self, sub_id: str) -> list[dict[str, Any]]:
        """A retry (or a new card) pays the open invoice: the subscription is active again."""
        sub = self.subscriptions[sub_id]
        invoice = self.invoices[sub["latest_invoice"]]
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
        previous = {"status": sub["status"]}
        sub["status"] = "active"
        return [
            self.event("invoice.paid", invoice),
            self.event("customer.subscription.updated", sub, previous),
        ]

    def event(
        self, kind: str, obj: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A v1 snapshot event as Stripe delivers it (a copy of the object at that time)."""
        data: dict[str, Any] = {"object": json.loads(json.dumps(obj))}
        if previous is not None:
            data["previous_attributes"] = previous
        return {
            "id": self._new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.tick(1),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]
