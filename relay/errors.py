"""Every exception relay raises, in one tree.

- ``RelayError`` — base of everything below; never raised itself.
  - ``ConfigError`` — a setting or the forms file is invalid; start-up stops with its message,
    which names the file (or variable), the field and the problem.
  - ``SubmissionRejected`` — a submission cannot be accepted as sent (bad media type, too
    large, malformed, a file part, invalid fields); carries the HTTP status and a Formspree-style
    code so the web layer can answer in JSON or HTML.
    - ``relay.web.ratelimit.RateLimited`` — too many submissions (429 with Retry-After).
  - ``StoreUnavailable`` — the database could not commit or answer; the client gets 503 with
    Retry-After and nothing is claimed to be accepted.
    - ``SchemaNotReady`` — the database answers but holds no relay schema, or another
      release's; start-up stops and says to run `relay db upgrade`.
  - ``relay.ops.redis_conn.RedisUnavailable`` — Redis did not answer `relay check` (or a start-up
    probe); the message names the host (never the password) and the setting to check.
  - ``DeliveryError`` — sending an email failed (issue "Deliver through Mailgun EU"); the
    transports report outcomes as values (relay.mail.transport), not exceptions.
    - ``RenderError`` — an email template (or a form's subject template) cannot be rendered;
      the submission stays queued and retries until the operator fixes the template.
  - ``relay.mail.mailgun_logs.MailgunLogsError`` — Mailgun's Logs API could not answer
    (reconciliation tries again later).
  - ``relay.crypto.DecryptionFailed`` — a ciphertext was sealed by an unknown key or altered.
  - ``SubjectError`` — a data-subject action cannot be done as asked (the record is
    restricted, the new address belongs to another record, the request id is unknown).
    - ``relay.rights.consent_link.InvalidLink`` — a withdrawal link is forged, altered or expired.
  - ``relay.minimise.backup.BackupError`` — `relay db backup`/`restore` cannot be done as asked (no
    database, the target file exists, not a relay backup, pg_dump or pg_restore failed).
  - ``relay.web.subject_actions.UnknownAction`` — an admin page asked for an action that
    does not exist.

Messages never contain personal data: only ids, field names, codes and HTTP statuses.
"""

from __future__ import annotations

from dataclasses import dataclass


class RelayError(Exception):
    """Base class: catching it catches every error relay raises on purpose."""


class ConfigError(RelayError):
    """Raised at start-up or by `relay check` when a setting or the forms file is invalid."""


@dataclass(frozen=True)
class FieldError:
    """One problem with one field, in the shape Formspree's client library reads."""

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class SubmissionRejected(RelayError):
    """Raised while reading or validating a submission; the web layer turns it into 4xx."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: tuple[FieldError, ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors


class StoreUnavailable(RelayError):
    """Raised when the database cannot commit or answer (locked, down, disk full)."""


class SchemaNotReady(StoreUnavailable):
    """Raised at start-up (serve, worker) when the schema is not this release's."""


class DeliveryError(RelayError):
    """Base for failures while handing an email to a transport."""


class SubjectError(RelayError):
    """Raised by relay.rights.privacy when an action on a person's data must be refused as asked."""


class RenderError(DeliveryError):
    """Raised by relay.mail.render when a template is missing or uses an unknown name."""
