"""Exchange API keys in the database. Synchronous: called through asyncio.to_thread.

The API key, secret and passphrase are stored sealed (see app.core.secretbox); this module only
moves rows.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Engine, Table, Text, delete, select, update
from sqlmodel import Field, SQLModel


class ExchangeKeyRow(SQLModel, table=True):
    __tablename__ = "exchange_keys"

    id: str = Field(primary_key=True, max_length=36)
    exchange: str = Field(max_length=32)
    name: str = Field(max_length=255)
    api_key_sealed: str = Field(sa_column=Column(Text, nullable=False))
    api_secret_sealed: str = Field(sa_column=Column(Text, nullable=False))
    passphrase_sealed: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    permissions: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    created_at: str = Field(max_length=40)  # ISO 8601, as the API shows it
    created_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_used: str | None = Field(default=None, max_length=40)
    status: str = Field(max_length=16)
    testnet: bool = Field(default=True)


EXCHANGE_KEYS: Table = ExchangeKeyRow.__table__  # type: ignore[attr-defined]


class ExchangeKeyRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self) -> list[ExchangeKeyRow]:
        """Every key, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(EXCHANGE_KEYS).order_by(EXCHANGE_KEYS.c.created_ns))
            return [ExchangeKeyRow.model_validate(dict(row._mapping)) for row in rows]

    def get(self, key_id: str) -> ExchangeKeyRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(EXCHANGE_KEYS).where(EXCHANGE_KEYS.c.id == key_id)).first()
        return None if row is None else ExchangeKeyRow.model_validate(dict(row._mapping))

    def add(self, row: ExchangeKeyRow) -> None:
        with self.engine.begin() as conn:
            conn.execute(EXCHANGE_KEYS.insert().values(**row.model_dump()))

    def remove(self, key_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(delete(EXCHANGE_KEYS).where(EXCHANGE_KEYS.c.id == key_id))
        return bool(result.rowcount)

    def touch(self, key_id: str, when: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(EXCHANGE_KEYS).where(EXCHANGE_KEYS.c.id == key_id).values(last_used=when)
            )
