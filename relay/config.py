"""Settings (environment variables prefixed ``RELAY_``) and the forms file (TOML).

Both are parsed once, at start-up, into validated immutable objects that are passed to
whatever needs them; nothing here is read at import time. Every error names the file (or the
variable), the field and the problem, so an operator can fix it without reading code.
"""

from __future__ import annotations

import re
import tomllib
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from relay import i18n
from relay.accept.fields import BUILT_IN, DeclaredField
from relay.accept.urls import origin_of, web_url
from relay.defence.proxies import Network, parse_networks
from relay.defence.windows import parse_limits
from relay.errors import ConfigError

#: A host name in RELAY_ALLOWED_HOSTS: letters, digits, dots and dashes, optionally `*.` first.
_HOST_PATTERN = re.compile(r"^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$|^\[[0-9A-Fa-f:.]+\]$")
#: Always answered, for health checks from the same machine or pod.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

EXAMPLE_FORMS_FILE = "examples/forms.toml"
FORM_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")
#: Keys shorter than this (in bytes, once decoded) are refused: they could be guessed.
MIN_SECRET_KEY_BYTES = 32


def example_forms_file() -> Path:
    """The forms file shipped inside the package, used when RELAY_FORMS_FILE is not set."""
    return Path(str(resources.files("relay").joinpath(EXAMPLE_FORMS_FILE)))


class LegalBasis(StrEnum):
    """The Art. 6(1) GDPR basis a form declares for handling its submissions."""

    CONTRACT = "contract"  # Art. 6(1)(b): quotes, pre-contractual steps
    LEGITIMATE_INTEREST = "legitimate_interest"  # Art. 6(1)(f): general inquiries

    @property
    def article(self) -> str:
        """The article as sales and the DPO read it."""
        return "Art. 6(1)(b) GDPR" if self is LegalBasis.CONTRACT else "Art. 6(1)(f) GDPR"


class MarketingConsent(BaseModel):
    """An optional, unticked marketing checkbox (Art. 6(1)(a)) and the exact words beside it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    wording: Annotated[str, Field(min_length=1, max_length=2000)]
    wording_version: Annotated[str, Field(min_length=1, max_length=64)]


def _check_origin(origin: str) -> str:
    parsed = web_url(origin)
    if parsed is None:
        msg = f"{origin!r} is not an origin such as https://www.example.com"
        raise ValueError(msg)
    parts = urlsplit(origin)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        msg = f"{origin!r} must be scheme://host[:port] only, without a path"
        raise ValueError(msg)
    return parsed.origin


def check_language(value: str) -> str:
    """A language relay has a catalogue for (relay/locale/<lang>/LC_MESSAGES/relay.po)."""
    if value not in i18n.available():
        msg = f"{value!r} is not a language relay speaks ({', '.join(i18n.available())})"
        raise ValueError(msg)
    return value


def _check_url(url: str) -> str:
    if web_url(url) is None:
        msg = f"{url!r} is not an absolute http(s) URL"
        raise ValueError(msg)
    return url


#: The drivers relay runs on: the embedded SQLite file, or PostgreSQL for several instances.
DATABASE_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
#: asyncpg's numeric connection options, accepted in the URL's query (`?timeout=3`).
DATABASE_URL_TIMEOUTS = ("timeout", "command_timeout")


def check_database_url(url: str) -> str:
    """A SQLAlchemy async URL relay can use, or ValueError saying what to write instead."""
    # imported here: relay.mail.render imports this module and must stay free of SQLAlchemy
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    hint = "use sqlite+aiosqlite:///path/relay.db or postgresql+asyncpg://user@host:5432/db"
    try:
        parsed = make_url(url)
    except ArgumentError:
        msg = f"is not a database URL; {hint}"
        raise ValueError(msg) from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if DATABASE_DRIVERS.get(backend) != driver:
        msg = f"{backend}+{driver} is not supported; {hint}"
        raise ValueError(msg)
    if backend == "postgresql" and not parsed.host:
        msg = f"names no host; {hint}"
        raise ValueError(msg)
    for name in DATABASE_URL_TIMEOUTS:
        if name in parsed.query:
            url_timeout(parsed.query[name], name)
    return url


def url_timeout(value: str | tuple[str, ...], name: str) -> float:
    """A `?timeout=3`-style URL parameter as seconds, or ValueError naming it."""
    text = value[-1] if isinstance(value, tuple) else value
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:  # also refuses nan
        msg = f"?{name}= must be a number of seconds between 0 and 3600"
        raise ValueError(msg)
    return seconds


def check_redis_url(url: str) -> str:
    """redis://[:password@]host[:port][/db], rediss://… or unix:///path, else ValueError."""
    hint = "use redis://host:6379/0 (rediss:// for TLS, unix:///path/redis.sock)"
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("redis", "rediss", "unix") or port == -1:
        msg = f"is not a Redis URL; {hint}"
        raise ValueError(msg)
    if parts.scheme == "unix":
        if not parts.path:
            msg = f"names no socket path; {hint}"
            raise ValueError(msg)
        return url
    if not parts.hostname:
        msg = f"names no host; {hint}"
        raise ValueError(msg)
    if parts.path not in ("", "/") and not parts.path.lstrip("/").isdigit():
        msg = f"the database must be a number (/0); {hint}"
        raise ValueError(msg)
    return url


class FormConfig(BaseModel):
    """One form of the forms file. Frozen: a running relay never changes its forms."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    recipients: Annotated[tuple[str, ...], Field(min_length=1)]
    allowed_origins: tuple[str, ...] = ()
    legal_basis: LegalBasis
    notice_version: Annotated[str, Field(min_length=1, max_length=64)]
    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    #: The default keeps personal data out of Mailgun's logs: the form's title and a short id.
    subject: Annotated[str, Field(min_length=1, max_length=500)] = "{{ title }} - {{ short_id }}"
    max_body_bytes: Annotated[int, Field(ge=1024, le=1_000_000)] = 20_000
    success_url: str | None = None
    error_url: str | None = None
    marketing_consent: MarketingConsent | None = None
    # --- issue 10: Formspree drop-in, declared fields, languages ---
    language: str | None = None  # None: RELAY_DEFAULT_LANGUAGE
    required: tuple[str, ...] = ("name", "email", "message")
    allow_subject: bool = False
    fields: tuple[DeclaredField, ...] = ()

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return None if value is None else check_language(value)

    @field_validator("required")
    @classmethod
    def _required(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in BUILT_IN]
        if unknown:
            msg = f"{unknown[0]!r} is not a built-in field ({', '.join(BUILT_IN)})"
            raise ValueError(msg)
        if "email" not in value:
            msg = "must include 'email': replies, exports and erasure depend on it"
            raise ValueError(msg)
        return value

    @field_validator("fields")
    @classmethod
    def _unique_fields(cls, value: tuple[DeclaredField, ...]) -> tuple[DeclaredField, ...]:
        seen: set[str] = set()
        for declared in value:
            if declared.name.casefold() in seen:
                msg = f"field {declared.name!r} is declared twice (names differing in case count)"
                raise ValueError(msg)
            seen.add(declared.name.casefold())
        return value

    # --- issue 8: spam defence (relay.defence) ---
    honeypot: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = None
    proof_of_work: bool = False
    proof_of_work_cost: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    proof_of_work_counter: Annotated[int, Field(ge=1, le=1_000_000)] = 2000
    min_fill_seconds: Annotated[float, Field(ge=0, le=3600)] = 3
    max_links: Annotated[int, Field(ge=0, le=1000)] | None = None
    blocked_domains: tuple[str, ...] = ()
    blocked_words: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = ()
    block_disposable_domains: bool = False

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not FORM_ID.match(value):
            msg = "must be 1-64 lowercase letters, digits, '-' or '_' (it is part of the URL)"
            raise ValueError(msg)
        return value

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for address in value:
            try:
                out.append(validate_email(address, check_deliverability=False).normalized)
            except EmailNotValidError as exc:
                msg = f"{address!r} is not a valid email address ({exc})"
                raise ValueError(msg) from None
        return tuple(out)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_origin(origin) for origin in value)

    @field_validator("success_url", "error_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        try:
            SandboxedEnvironment().parse(value)
        except TemplateSyntaxError as exc:
            msg = f"is not a valid template: {exc.message}"
            raise ValueError(msg) from None
        return value

    def heading(self) -> str:
        """What a person reads as the form's name: its title, else its id."""
        return self.title or self.id

    @field_validator("blocked_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for domain in value:
            clean = domain.strip().lower().lstrip("@").rstrip(".")
            if not DOMAIN.match(clean):
                msg = f"{domain!r} is not a domain name such as spam.example"
                raise ValueError(msg)
            out.append(clean)
        return tuple(out)

    @field_validator("blocked_words")
    @classmethod
    def _words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(word.strip().casefold() for word in value if word.strip())

    def allows_origin(self, origin: str) -> bool:
        """Whether a browser page served from `origin` may post to this form."""
        return origin.lower() in self.allowed_origins

    def allows_redirect(self, url: object) -> bool:
        """Formspree's `_next` is honoured only towards the form's own sites: no open redirect."""
        origin = origin_of(url)  # None for anything malformed: refused whole, never a 500
        return origin is not None and self.allows_origin(origin)


class FormsFile(BaseModel):
    """The whole forms file: a list of forms with unique ids."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    forms: Annotated[tuple[FormConfig, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> FormsFile:
        seen: set[str] = set()
        for form in self.forms:
            if form.id in seen:
                msg = f"form id {form.id!r} appears twice"
                raise ValueError(msg)
            seen.add(form.id)
        return self

    def by_id(self) -> dict[str, FormConfig]:
        return {form.id: form for form in self.forms}


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.isprintable():  # a key of the file: a line break in it would forge a line
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def describe_validation_error(source: str, exc: ValidationError) -> str:
    """One line per problem: 'source: field: problem', the shape every config error takes."""
    lines = [f"{source}: {_location(err['loc'])}: {err['msg']}" for err in exc.errors()]
    return "\n".join(lines)


def load_forms(path: Path) -> dict[str, FormConfig]:
    """Parse and validate the forms file, or raise ConfigError naming file, field and problem."""
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{path}: forms file not found (set RELAY_FORMS_FILE)"
        raise ConfigError(msg) from None
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read the forms file ({type(exc).__name__})"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path}: not valid TOML: {exc}"
        raise ConfigError(msg) from None
    try:
        return FormsFile.model_validate(raw).by_id()
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(str(path), exc)) from None


class AdminUser(BaseModel):
    """One admin of /admin: a name, a role and an argon2 hash (`relay admin hash-password`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
    role: Literal["viewer", "dpo"]
    password_hash: Annotated[str, Field(pattern=r"^\$argon2(id|i|d)\$")]

    def __repr__(self) -> str:
        return f"AdminUser(name={self.name!r}, role={self.role!r})"


class Settings(BaseSettings):
    """Every setting of relay. Each field is documented in the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="RELAY_", extra="forbid", frozen=True)

    environment: Literal["development", "production"] = "development"
    var_dir: Path = Path("var")
    database_url: str | None = None
    forms_file: Path | None = None
    secret_key: SecretStr | None = None
    phone_default_region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "FR"
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "FULL"
    write_batch_max: Annotated[int, Field(ge=1, le=1000)] = 64
    db_busy_timeout_ms: Annotated[int, Field(ge=0, le=600_000)] = 5000
    auto_migrate: bool | None = None
    idempotency_ttl_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 24
    public_url: str | None = None
    allowed_hosts: str | None = None
    body_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    # --- Mailgun EU (shared by delivery, webhooks and reconciliation) ---
    mailgun_api_key: SecretStr | None = None
    mailgun_domain: str | None = None
    mailgun_base_url: str = "https://api.eu.mailgun.net"
    mailgun_allow_non_eu: bool = False
    mail_from: str | None = None
    allow_file_transport: bool = False
    # --- issue 16: who answers for the data (export, invalid-link page) ---
    controller_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    controller_address: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    privacy_contact: Annotated[str, Field(min_length=3, max_length=200)] | None = None
    # --- issue 5: webhooks, reconciliation, admin web, health and metrics ---
    mailgun_webhook_signing_key: SecretStr | None = None
    mailgun_read_key: SecretStr | None = None
    webhook_max_age_seconds: Annotated[int, Field(ge=10, le=86_400)] = 36_000
    sync_interval_minutes: Annotated[int, Field(ge=5, le=24 * 60)] = 180
    mailgun_retention_days: Annotated[int, Field(ge=1, le=30)] = 3
    admin_users: tuple[AdminUser, ...] = ()
    admin_session_hours: Annotated[int, Field(ge=1, le=24 * 7)] = 8
    admin_login_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    metrics_token: SecretStr | None = None
    ready_max_queue_age_seconds: Annotated[int, Field(ge=10, le=7 * 86_400)] = 900
    # --- issue 4: retention, data-subject rights, rate limits ---
    audit_retention_months: Annotated[int, Field(ge=1, le=24)] = 12
    request_log_years: Annotated[int, Field(ge=1, le=10)] = 5
    housekeeping_interval_seconds: Annotated[int, Field(ge=60, le=86_400)] = 3600
    consent_link_days: Annotated[int, Field(ge=1, le=3650)] = 365
    ip_v4_prefix: Annotated[int, Field(ge=0, le=32)] = 24
    ip_v6_prefix: Annotated[int, Field(ge=0, le=128)] = 48
    redis_url: str | None = None
    redis_key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9:_.-]{1,64}$")] = "relay:"
    rate_limit_client: str = "30/minute;300/hour"
    rate_limit_form: str = "600/minute"
    rate_limit_quarantine: str = "60/minute"
    redis_fail: Literal["open", "closed"] = "open"
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    trusted_proxy_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    # --- issue 3: delivery (dispatcher, retries, minimisation, email templates) ---
    dispatch_in_serve: bool = True
    dispatch_concurrency: Annotated[int, Field(ge=1, le=500)] = 20
    dispatch_lease_seconds: Annotated[int, Field(ge=5, le=3600)] = 120
    dispatch_poll_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    dispatch_stop_grace_seconds: Annotated[float, Field(ge=0, le=600)] = 10.0
    dispatch_max_age_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 72
    dispatch_backoff_base_seconds: Annotated[float, Field(gt=0, le=86_400)] = 30
    dispatch_backoff_cap_seconds: Annotated[float, Field(gt=0, le=86_400)] = 3600
    dispatch_pause_max_seconds: Annotated[float, Field(gt=0, le=86_400)] = 900
    body_retention_days: Annotated[float, Field(gt=0, le=365)] = 7
    # --- issue 13: what relay says stays true to what Mailgun knows ---
    delivered_body_hours: Annotated[float, Field(ge=0, le=24 * 30)] = 24
    resend_lookup_delay_seconds: Annotated[int, Field(ge=0, le=86_400)] = 900
    mailgun_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10
    email_templates_dir: Path | None = None
    # --- issue 14: several instances (timeouts of every dependency) ---
    database_connect_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 3
    database_statement_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 10
    redis_connect_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 1
    redis_socket_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 1
    # --- issue 12: alerts ---
    alert_email: str | None = None
    alert_webhook_url: str | None = None
    alert_check_seconds: Annotated[float, Field(gt=0, le=3600)] = 30
    alert_repeat_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 30
    # --- issue 10: languages and dates people read ---
    default_language: str = "fr"
    timezone: str = "Europe/Paris"

    @field_validator("default_language")
    @classmethod
    def _default_language(cls, value: str) -> str:
        return check_language(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"{value!r} is not an IANA time zone such as 'Europe/Paris'"
            raise ValueError(msg) from None
        return value

    # --- issue 8: spam defence ---
    proof_of_work_ttl_seconds: Annotated[int, Field(ge=30, le=86_400)] = 600
    quarantine_retention_days: Annotated[float, Field(gt=0, le=365)] = 30

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value).rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return None if value is None else check_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return None if value is None else check_redis_url(value)

    @field_validator("alert_email")
    @classmethod
    def _alert_email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            msg = f"{value!r} is not a valid email address ({exc})"
            raise ValueError(msg) from None

    @field_validator("alert_webhook_url")
    @classmethod
    def _alert_webhook_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("allowed_hosts")
    @classmethod
    def _allowed_hosts(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for host in (h.strip() for h in value.split(",")):
            if not _HOST_PATTERN.match(host):
                msg = f"{host!r} is not a host name such as forms.example.com or *.example.com"
                raise ValueError(msg)
        return value

    @field_validator("admin_users")
    @classmethod
    def _unique_admins(cls, value: tuple[AdminUser, ...]) -> tuple[AdminUser, ...]:
        names = [u.name for u in value]
        if len(names) != len(set(names)):
            msg = "each admin user name may appear once"
            raise ValueError(msg)
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        # "127.0.0.1, 10.0.0.0/8" from the environment; a list when built in code
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(network) for network in parse_networks(value))

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        """The proxies whose X-Forwarded-For / Forwarded headers relay believes."""
        return parse_networks(self.trusted_proxies)

    @field_validator("rate_limit_client", "rate_limit_form", "rate_limit_quarantine")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_limits(value)
        except ValueError:
            msg = f"{value!r} is not a rate limit such as '30/minute' or '30/minute;300/hour'"
            raise ValueError(msg) from None
        return value

    @model_validator(mode="after")
    def _lease_outlasts_a_request(self) -> Settings:
        # A lease shorter than one request would let a second worker send a row still in flight.
        if self.dispatch_lease_seconds <= 2 * self.mailgun_timeout_seconds:
            msg = (
                "RELAY_DISPATCH_LEASE_SECONDS must be more than twice "
                "RELAY_MAILGUN_TIMEOUT_SECONDS, or a slow send could be taken over and sent twice"
            )
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.environment == "production" and self.secret_key is None:
            msg = "RELAY_SECRET_KEY must be set in production (see README: generating a key)"
            raise ValueError(msg)
        return self

    @property
    def trusted_hosts(self) -> list[str]:
        """The Host headers relay answers: RELAY_ALLOWED_HOSTS, RELAY_PUBLIC_URL's host and
        loopback (health checks); every host ("*") only in development with neither set."""
        hosts = [h.strip().lower() for h in (self.allowed_hosts or "").split(",") if h.strip()]
        public = web_url(self.public_url) if self.public_url else None
        if public is not None:
            hosts.append(public.host)
        if not hosts:
            return ["*"]
        return [*dict.fromkeys([*hosts, *LOOPBACK_HOSTS])]

    @model_validator(mode="after")
    def _production_keeps_the_policys_promises(self) -> Settings:
        if self.environment == "production":
            problems = production_problems(self)
            if problems:
                raise ValueError("; ".join(problems))
        return self

    @property
    def uses_file_transport(self) -> bool:
        """No Mailgun key: emails are written as files under var/mail (trials only)."""
        return self.mailgun_api_key is None

    @property
    def effective_database_url(self) -> str:
        """The embedded default is a SQLite file under var_dir."""
        return self.database_url or f"sqlite+aiosqlite:///{self.var_dir / 'relay.db'}"

    @property
    def migrates_on_start(self) -> bool:
        """The embedded SQLite database upgrades itself; PostgreSQL waits for `relay db upgrade`."""
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.effective_database_url.startswith("sqlite")

    @property
    def effective_forms_file(self) -> Path:
        return self.forms_file or example_forms_file()

    @property
    def key_file(self) -> Path:
        """Where a trial key is kept when RELAY_SECRET_KEY is not set."""
        return self.var_dir / "secret.key"


#: Mailgun's EU region: the policy names Mailgun *EU* as the processor that sends the emails.
MAILGUN_EU_HOST = "api.eu.mailgun.net"
LOOPBACK_URL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "[::1]"})  # noqa: S104


def is_loopback_url(url: str) -> bool:
    """Whether a URL points at this machine (a link nobody else can open)."""
    host = (urlsplit(url).hostname or "").lower()
    return host in LOOPBACK_URL_HOSTS or host.startswith("127.") or host.endswith(".localhost")


def production_problems(settings: Settings) -> list[str]:
    """What production refuses (start-up and `relay check`): each promise the privacy policy
    makes that these settings would break, as a message naming the setting to fix."""
    problems = []
    if not (settings.public_url or settings.allowed_hosts):
        # Without either, the Host header of any request would shape relay's answers (the
        # thank-you URL): a poisoned cache or proxy could send visitors elsewhere.
        problems.append("RELAY_PUBLIC_URL or RELAY_ALLOWED_HOSTS must be set in production")
    parts = urlsplit(settings.mailgun_base_url)
    if parts.scheme != "https":
        problems.append(
            "RELAY_MAILGUN_BASE_URL must use https in production (the API key and every "
            "email would cross the network in clear)"
        )
    if (parts.hostname or "").lower() != MAILGUN_EU_HOST and not settings.mailgun_allow_non_eu:
        problems.append(
            f"RELAY_MAILGUN_BASE_URL must be https://{MAILGUN_EU_HOST} in production: the "
            "privacy policy names Mailgun's EU region (set RELAY_MAILGUN_ALLOW_NON_EU=true only "
            "if the policy and the Art. 30 record are changed first)"
        )
    if settings.uses_file_transport and not settings.allow_file_transport:
        problems.append(
            "RELAY_MAILGUN_API_KEY is not set: production would write every email as a plain "
            "file under var/mail (for trials only; set RELAY_ALLOW_FILE_TRANSPORT=true to allow it)"
        )
    if settings.public_url is not None and is_loopback_url(settings.public_url):
        problems.append(
            "RELAY_PUBLIC_URL points at this machine: withdrawal links would not open for "
            "anyone else (set the public https address)"
        )
    if settings.privacy_contact is None or settings.controller_name is None:
        problems.append(
            "RELAY_CONTROLLER_NAME and RELAY_PRIVACY_CONTACT must be set in production (the "
            "export and the withdrawal pages name who answers for the data)"
        )
    return problems


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and overrides) or raise ConfigError naming variable and problem."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "RELAY_" + "_".join(str(p) for p in err["loc"]).upper() if err["loc"] else ""
            lines.append(f"settings: {name or '(settings)'}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None
