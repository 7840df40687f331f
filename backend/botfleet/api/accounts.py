"""``/api/v1/accounts``: passivbot accounts (api-keys.json entries), stored encrypted; secrets
are accepted, never returned. ``GET /api/v1/agent/credentials`` gives an agent its host's
api-keys.json. Logic lives in :mod:`botfleet.fleet.accounts`."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, Response, delete, get, post, put
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import Host, User
from botfleet.fleet import accounts as service
from botfleet.protocol import HostCredentials
from botfleet.settings import Settings

__all__ = ["AccountController", "AgentCredentialsController"]


class AccountKeysIn(BaseModel):
    """The secret fields of an api-keys.json entry; which ones an exchange needs is listed by
    ``GET /api/v1/accounts/exchanges`` (e.g. bitget/okx/kucoin also take a passphrase,
    hyperliquid a wallet_address and private_key)."""

    key: str | None = None
    secret: str | None = None
    passphrase: str | None = None
    wallet_address: str | None = None
    private_key: str | None = None
    is_vault: bool | None = None


class AccountIn(AccountKeysIn):
    name: str = Field(description="The account's name in api-keys.json: what config.live.user says.")
    exchange: str


class AccountOut(BaseModel):
    id: str
    name: str
    exchange: str
    hint: str = Field(description="Last 4 characters of the key (or wallet address); secrets are never returned.")
    fields: list[str] = Field(description="Names of the stored secret fields.")
    used_by: list[str] = Field(description="Instances whose current config names this account.")
    created_at: datetime
    updated_at: datetime


class ExchangeOut(BaseModel):
    exchange: str
    required: list[str]
    optional: list[str]


def _out(view: service.AccountView) -> AccountOut:
    return AccountOut(**view.__dict__)


def _keys(data: AccountKeysIn) -> service.AccountKeys:
    return service.AccountKeys(**{f: getattr(data, f) for f in service.SECRET_FIELDS})


class AccountController(Controller):
    path = "/api/v1/accounts"
    tags = ["accounts"]

    @get("/", operation_id="listAccounts")
    async def list_accounts(self, session: AsyncSession, settings: Settings, user: User) -> list[AccountOut]:
        return [_out(v) for v in await service.list_accounts(session, settings)]

    @get("/exchanges", operation_id="listAccountExchanges")
    async def exchanges(self, user: User) -> list[ExchangeOut]:
        """The exchanges botfleet knows the api-keys.json format of, and their fields."""
        return [ExchangeOut(exchange=e, required=list(r), optional=list(o))
                for e, (r, o) in sorted(service.EXCHANGES.items())]

    @get("/{account_id:str}", operation_id="getAccount")
    async def get_account(self, account_id: str, session: AsyncSession, settings: Settings,
                          user: User) -> AccountOut:
        return _out(await service.get_account(session, settings, account_id))

    @post("/", operation_id="createAccount")
    async def create_account(self, data: AccountIn, session: AsyncSession, redis: Redis, settings: Settings,
                             user: User) -> AccountOut:
        view = await service.create_account(session, redis, settings, data.name, data.exchange, _keys(data))
        return _out(view)

    @put("/{account_id:str}/keys", operation_id="rotateAccount")
    async def rotate(self, account_id: str, data: AccountKeysIn, session: AsyncSession, redis: Redis,
                     settings: Settings, user: User) -> AccountOut:
        """Replace the account's secret fields; hosts that use it get the new api-keys.json.
        Running bots read it at start: restart them to trade with the new keys."""
        return _out(await service.rotate_account(session, redis, settings, account_id, _keys(data)))

    @delete("/{account_id:str}", operation_id="deleteAccount")
    async def delete_account(self, account_id: str, session: AsyncSession, redis: Redis, settings: Settings,
                             user: User) -> None:
        """Refused (409) while an instance's config names the account."""
        await service.delete_account(session, redis, settings, account_id)


class AgentCredentialsController(Controller):
    path = "/api/v1/agent/credentials"
    tags = ["agent"]

    @get("/", operation_id="agentCredentials")
    async def credentials(self, session: AsyncSession, settings: Settings,
                          agent_host: Host) -> Response[HostCredentials]:
        """This host's api-keys.json: only the accounts its instances use (agent token)."""
        body = await service.host_credentials(session, settings, agent_host)
        return Response(body, headers={"Cache-Control": "no-store"})
