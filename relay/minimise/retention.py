"""How long relay keeps each kind of data (privacy policy §6), as date math, and the purge.

The date functions are pure: `now` and the dates are arguments. Periods are *calendar*
periods with the EU end-of-month rule (Regulation 1182/71 art. 3(2)(c)): a period that would
end on a day the month does not have ends on that month's last day, so 29 February + 3 years
is 28 February and 31 January + 1 month is 28 (or 29) February. `dateutil.relativedelta`
does exactly this.

`purge` is the one place that applies them to the database; the Housekeeper runs it daily
and `relay purge` runs it by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from dateutil.relativedelta import relativedelta

if TYPE_CHECKING:
    from relay.store import Store

#: Prospects & inquiries: 3 years after the last interaction the prospect initiated (§6).
PROSPECT_YEARS = 3
#: Clients: 5 years after their last activity (§6).
CLIENT_YEARS = 5
#: Website logs (the delivery log, which holds no personal data): up to 2 years (§6).
DELIVERY_LOG_YEARS = 2
#: The opposition list keeps a keyed hash for at least 3 years (CNIL liste repoussoir).
OPPOSITION_YEARS = 3
#: A data-subject request is answered within one month of receipt (GDPR art. 12(3)).
REQUEST_MONTHS = 1

PROSPECT = "prospect"
CLIENT = "client"


def add_years(moment: datetime, years: int) -> datetime:
    """`moment` plus calendar years; 29 February lands on 28 February.

    What `moment + relativedelta(years=years)` gives (a property test compares them), at a
    tenth of its cost: every accepted submission computes two of these.
    """
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February into a year that has none
        return moment.replace(year=moment.year + years, day=28)


def prospect_expiry(last_interaction: datetime, status: str = PROSPECT) -> datetime:
    """When a record expires: last interaction + 3 years, or + 5 years for a client."""
    years = CLIENT_YEARS if status == CLIENT else PROSPECT_YEARS
    return add_years(last_interaction, years)


def delivery_log_cutoff(now: datetime) -> datetime:
    """Delivery-log rows received before this moment are older than 2 years: they go."""
    return now - relativedelta(years=DELIVERY_LOG_YEARS)


def body_cutoff(now: datetime, days: float) -> datetime:
    """Outbox bodies received before this moment are past their bound, delivered or not."""
    return now - timedelta(days=days)


def quarantine_cutoff(now: datetime, days: float) -> datetime:
    """Quarantined submissions received before this moment were never released: they go."""
    return now - timedelta(days=days)


def opposition_keep_until(added: datetime) -> datetime:
    """An opposition entry is kept at least this long (3 years)."""
    return add_years(added, OPPOSITION_YEARS)


def request_due(received: datetime) -> datetime:
    """A request received at `received` must be answered by this moment (+1 calendar month)."""
    return received + relativedelta(months=REQUEST_MONTHS)


def orphan_consent_cutoff(now: datetime) -> datetime:
    """Consent events of nobody on record (a withdrawal by someone never seen) go after 3 years."""
    return now - relativedelta(years=PROSPECT_YEARS)


def rights_register_cutoff(now: datetime) -> datetime:
    """Rights-register entries (re-applied after a restore) go after 3 years, as the
    opposition list: no backup older than that may be restored."""
    return now - relativedelta(years=OPPOSITION_YEARS)


def audit_cutoff(now: datetime, months: int) -> datetime:
    """Audit entries older than this are dropped (CNIL journalisation: 6-12 months)."""
    return now - relativedelta(months=months)


def request_log_cutoff(now: datetime, years: int) -> datetime:
    """Completed requests older than this leave the register (limitation period)."""
    return now - relativedelta(years=years)


@dataclass(frozen=True)
class Bounds:
    """The configurable bounds purge applies besides the policy's fixed periods."""

    body_days: float = 7
    audit_months: int = 12
    request_years: int = 5
    idempotency_hours: int = 24
    quarantine_days: float = 30


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed (or, dry, would remove): counts only, never content."""

    prospects: int = 0
    consent_events: int = 0
    submissions_unlinked: int = 0
    bodies_wiped: int = 0
    delivery_log_rows: int = 0
    opposition_entries: int = 0
    audit_entries: int = 0
    requests: int = 0
    idempotency_keys: int = 0
    rights_register_entries: int = 0  # issue 12
    quarantined: int = 0
    proof_nonces: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def total(self) -> int:
        return sum(self.as_dict().values())


async def purge(
    store: Store,
    now: datetime,
    dry_run: bool = False,
    bounds: Bounds | None = None,
    *,
    actor: str = "housekeeper",
) -> PurgeReport:
    """Apply every retention rule at `now` in one transaction; `dry_run` only counts.

    A real purge records its counts (and nothing else) in the audit log. The dry run counts
    with the very conditions the real run deletes with, so the two always agree.
    """
    from relay.store import purging  # the store layer; imported here to keep the math pure

    if dry_run:
        return await store.read(purging.count_job(now, bounds or Bounds()))
    report = await store.write(purging.purge_job(now, bounds or Bounds(), actor=actor))
    if report.total:  # nothing removed stays recoverable in SQLite's write-ahead log
        await store.checkpoint()
    return report


async def restricted_past_expiry(store: Store, now: datetime) -> int:
    """How many restricted records have outlived their expiry: purge keeps them (art. 18(1)(c):
    kept for a legal claim) until the restriction is lifted; `relay purge` lists them."""
    from relay.store import purging

    return await store.read(purging.restricted_kept_job(now))
