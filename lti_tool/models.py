"""SQLAlchemy 2.0 typed mappings. Nothing but tables; behaviour lives in services and the domain."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class AwareDateTime(TypeDecorator):
    """Stores UTC; always returns aware datetimes (SQLite forgets the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to an AwareDateTime column")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Municipality(Base):
    """A kommun / kommune, identified as ``SE-1490`` or ``NO-0301``."""

    __tablename__ = "municipalities"

    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    code: Mapped[str] = mapped_column(String(4))
    name: Mapped[str] = mapped_column(String(200))
    county_code: Mapped[str | None] = mapped_column(String(4))
    county_name: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("country", "code"),)


class Registration(Base):
    """A platform's client_id at an issuer: what the tool knows to verify launches and call services."""

    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    issuer: Mapped[str] = mapped_column(String(500), index=True)
    client_id: Mapped[str] = mapped_column(String(255))
    auth_login_url: Mapped[str] = mapped_column(String(1000))
    auth_token_url: Mapped[str] = mapped_column(String(1000))
    jwks_url: Mapped[str] = mapped_column(String(1000))
    token_audience: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=utcnow)

    deployments: Mapped[list["Deployment"]] = relationship(back_populates="registration",
                                                           cascade="all, delete-orphan")

    __table_args__ = (UniqueConstraint("issuer", "client_id"),)


DEPLOYMENT_PENDING = "pending"
DEPLOYMENT_ACTIVE = "active"
DEPLOYMENT_INACTIVE = "inactive"


class Deployment(Base):
    """One installation of the tool in a platform, bound to the municipalities it serves."""

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=DEPLOYMENT_PENDING)
    # Name of the signed custom parameter that picks the municipality on a shared deployment.
    custom_param: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=utcnow)

    registration: Mapped[Registration] = relationship(back_populates="deployments")
    municipalities: Mapped[list["DeploymentMunicipality"]] = relationship(
        cascade="all, delete-orphan", back_populates="deployment")

    __table_args__ = (UniqueConstraint("registration_id", "deployment_id"),)


class DeploymentMunicipality(Base):
    __tablename__ = "deployment_municipalities"

    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"),
                                               primary_key=True)
    municipality_id: Mapped[str] = mapped_column(ForeignKey("municipalities.id"), primary_key=True)

    deployment: Mapped[Deployment] = relationship(back_populates="municipalities")


class LoginState(Base):
    """One OIDC login: its state and nonce, used at most once (when Redis is not configured)."""

    __tablename__ = "login_states"

    state: Mapped[str] = mapped_column(String(100), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(100), unique=True)
    registration_id: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(AwareDateTime())


class PlatformKeySet(Base):
    """A platform's JWKS as last fetched, kept as long as its HTTP cache headers allow."""

    __tablename__ = "platform_key_sets"

    jwks_url: Mapped[str] = mapped_column(String(1000), primary_key=True)
    keys: Mapped[dict] = mapped_column(JSON)
    fetched_at: Mapped[datetime] = mapped_column(AwareDateTime())
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime())
    etag: Mapped[str | None] = mapped_column(String(500))


class Launch(Base):
    """An accepted launch. Holds the pseudonymous LTI ``sub``, never names or e-mail."""

    __tablename__ = "launches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"),
                                                 index=True)
    deployment_pk: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    message_type: Mapped[str] = mapped_column(String(50))
    sub: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(20))
    roles: Mapped[list] = mapped_column(JSON)
    context_id: Mapped[str | None] = mapped_column(String(255))
    resource_link_id: Mapped[str | None] = mapped_column(String(255))
    custom: Mapped[dict] = mapped_column(JSON)
    municipality_id: Mapped[str] = mapped_column(ForeignKey("municipalities.id"), index=True)
    resolution_method: Mapped[str] = mapped_column(String(30))
    locale: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=utcnow, index=True)

    municipality: Mapped[Municipality] = relationship()
    registration: Mapped[Registration] = relationship()
