"""Webhook signatures: HMAC-SHA256 under a per-key secret that is never stored.

A key's webhook secret is derived, not kept: `key_secret(server_secret, key_id)` =
HMAC-SHA256(SMSDISPATCH_WEBHOOK_SECRET, "smsdispatch-webhook:<key id>") in hex. The server secret lives
in the environment only; the database holds the key's id, so a copy of the database reveals no
secret. The key's owner is shown its secret once, when the key is created (README, "Webhooks").

A delivery carries `X-Smsdispatch-Timestamp` (Unix seconds) and `X-Smsdispatch-Signature:
sha256=<hex>`, the HMAC of `"<timestamp>.<body>"` under the key's secret; `verify` checks one.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Smsdispatch-Signature"
TIMESTAMP_HEADER = "X-Smsdispatch-Timestamp"
EVENT_HEADER = "X-Smsdispatch-Event"
DELIVERY_HEADER = "X-Smsdispatch-Delivery"


def key_secret(server_secret: str, key_id: int | None) -> str:
    """The webhook secret of API key `key_id` (64 hex characters); None: campaigns stored without a key."""
    if not server_secret:
        raise ValueError("SMSDISPATCH_WEBHOOK_SECRET is not set; no webhook secret can be derived")
    label = f"smsdispatch-webhook:{key_id if key_id is not None else 'none'}".encode()
    return hmac.new(server_secret.encode(), label, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>`: the HMAC-SHA256 of `b"<timestamp>." + body` under `secret`."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether `signature` is this body's at this timestamp (constant-time compare)."""
    try:
        expected = sign(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, signature)
