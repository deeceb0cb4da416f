"""The users table, as a SQLAlchemy 2 declarative model."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MAX_NAME_LENGTH = 80


class Base(DeclarativeBase):
    """The declarative base of the service's models."""


class User(Base):
    """A person in the directory."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    # GET /users?name=... finds a user by name (a write audit looks up the creates it is unsure of).
    __table_args__ = (Index("users_name_idx", "name"),)
