"""API tokens: created once and printed once, stored as a SHA-256 digest only."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from lrm.store.schema import api_token

TOKEN_PREFIX = "lrm_"  # noqa: S105 - a marker that makes leaked tokens easy to grep for, not a secret


@dataclass(frozen=True)
class Principal:
    """Who is calling: a provider sees everything; a tenant token only its tenants."""

    token_id: int
    role: str
    tenant_ids: frozenset[int]

    @property
    def is_provider(self) -> bool:
        return self.role == "provider"

    def may_see_tenant(self, tenant_id: int) -> bool:
        return self.is_provider or tenant_id in self.tenant_ids


@dataclass(frozen=True)
class TokenInfo:
    id: int
    prefix: str
    role: str
    tenant_ids: list[int]
    description: str
    created_at: datetime
    revoked_at: datetime | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(connection: sa.Connection, role: str, tenant_ids: list[int],
                 description: str = "") -> tuple[int, str]:
    """A new token: returns (id, secret). The secret is not stored and cannot be shown again."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = connection.execute(sa.insert(api_token).values(
        token_hash=digest(secret), prefix=secret[:10], role=role, tenant_ids=tenant_ids,
        description=description).returning(api_token.c.id)).scalar_one()
    return int(token_id), secret


def authenticate(connection: sa.Connection, token: str) -> Principal | None:
    """The principal of a live token, or None. The stored digest is compared in constant time
    (the lookup itself is by digest, which reveals nothing about the secret)."""
    wanted = digest(token)
    row = connection.execute(sa.select(api_token).where(
        api_token.c.token_hash == wanted, api_token.c.revoked_at.is_(None))).first()
    if row is None or not hmac.compare_digest(row.token_hash, wanted):
        return None
    return Principal(row.id, row.role, frozenset(row.tenant_ids))


def revoke_token(connection: sa.Connection, key: str) -> int:
    """Revoke by id or by the printed prefix; returns how many tokens were revoked."""
    condition = (api_token.c.id == int(key)) if key.isdigit() else (api_token.c.prefix == key)
    result = connection.execute(sa.update(api_token).where(condition,
                                                           api_token.c.revoked_at.is_(None))
                                .values(revoked_at=sa.func.now()))
    return int(result.rowcount)


def list_tokens(connection: sa.Connection) -> list[TokenInfo]:
    rows = connection.execute(sa.select(api_token).order_by(api_token.c.id))
    return [TokenInfo(r.id, r.prefix, r.role, list(r.tenant_ids), r.description, r.created_at,
                      r.revoked_at) for r in rows]
