"""Every Prometheus collector relay exports, in one place, on a registry per app.

Why a registry per app: tests build many apps in one process; a global registry would share
(and refuse to re-register) collectors between them. Labels are forms, states, outcomes,
event types and verdicts — bounded sets, never anything typed by a person.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

from relay import states
from relay.store.delivery_stats import QueueStats

#: The content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNKNOWN_FORM = "unknown"


class Tally:
    """A counter family kept as plain integers and handed to Prometheus when it scrapes.

    Why: a flood counts every request (relay_submissions, relay_spam), and prometheus_client's
    Counter takes a lock and four calls an increment: in the server, where each request's code
    runs cold, that was about a tenth of a caught honeypot's cost (docs/performance.md). Here
    an increment is a dict update. It is exported as the Counter it replaces was: `_total`
    and `_created` samples, one series per label values. Increments come from the event
    loop's thread (the requests'); a scrape copies the counts first.
    """

    def __init__(
        self, name: str, documentation: str, labelnames: list[str], registry: CollectorRegistry
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = labelnames
        self._counts: dict[tuple[str, ...], int] = {}
        self._created: dict[tuple[str, ...], float] = {}
        registry.register(self)

    def inc(self, labels: tuple[str, ...]) -> None:
        """One more for these label values (in `labelnames` order)."""
        counts = self._counts
        if labels in counts:
            counts[labels] += 1
        else:
            self._created[labels] = time.time()
            counts[labels] = 1

    def value(self, labels: tuple[str, ...]) -> int:
        return self._counts.get(labels, 0)

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for labels, count in list(self._counts.items()):
            family.add_metric(labels, count, created=self._created[labels])
        return [family]

    def describe(self) -> Iterable[CounterMetricFamily]:
        return [CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)]


class Metrics:
    """The collectors of one app (or worker) and the registry they live on."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        # the two a flood counts through: Tally, not Counter (label values are bounded:
        # forms, outcomes, verdicts, rules)
        self.submissions = Tally(
            "relay_submissions",
            "Submissions received, by form and outcome (accepted or the refusal code).",
            ["form", "outcome"],
            reg,
        )
        self.deliveries = Gauge(
            "relay_deliveries",
            "Submissions in the database, by delivery state (read at scrape time).",
            ["state"],
            registry=reg,
        )
        self.queue_depth = Gauge(
            "relay_queue_depth",
            "Submissions waiting to be handed to Mailgun (queued, retrying or sending).",
            registry=reg,
        )
        self.oldest_queued_age = Gauge(
            "relay_queue_oldest_age_seconds",
            "Age of the oldest submission still waiting to be handed to Mailgun (0 if none).",
            registry=reg,
        )
        self.mailgun_request_seconds = Histogram(
            "relay_mailgun_request_duration_seconds",
            "Duration of requests to Mailgun's API, by operation (send, logs) and outcome.",
            ["operation", "outcome"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=reg,
        )
        self.webhook_events = Counter(
            "relay_webhook_events",
            "Mailgun webhooks received, by event type and verdict (recorded, refused, …).",
            ["event", "verdict"],
            registry=reg,
        )
        self.delayed_bounces = Counter(
            "relay_delayed_bounces",
            "Delivered submissions that bounced afterwards (Mailgun's delayed bounce), by source.",
            ["source"],
            registry=reg,
        )
        self.provider_failures = Counter(
            "relay_provider_failures",
            "Submissions Mailgun's events moved to failed, by event and source.",
            ["event", "source"],
            registry=reg,
        )
        self.logs_foreign_items = Counter(
            "relay_logs_foreign_items",
            "Logs API items about other messages than the one asked for (filter ignored).",
            registry=reg,
        )
        # what deploy/prometheus-alerts.yml watches besides the above (and dispatch_paused)
        self.task_last_success = Gauge(
            "relay_task_last_success_timestamp_seconds",
            "When a background task (housekeeping, reconciliation) last succeeded (Unix time).",
            ["task"],
            registry=reg,
        )
        self.purged = Counter(
            "relay_purged",
            "Rows or bodies removed by retention, by kind.",
            ["kind"],
            registry=reg,
        )
        self.rate_limit_unavailable = Counter(
            "relay_rate_limit_unavailable",
            "Rate-limit checks not made because Redis was unavailable, by RELAY_REDIS_FAIL "
            "mode: open (let through unchecked) or closed (refused with 503).",
            ["mode"],
            registry=reg,
        )
        self.dispatch_paused = Gauge(
            "relay_dispatch_paused",
            "1 while this process's dispatcher is paused (Mailgun refused the credentials or "
            "the domain), else 0 (also where no dispatcher runs).",
            registry=reg,
        )
        self.lease_takeovers = Counter(
            "relay_lease_takeovers",
            "Submissions this dispatcher took over after another's lease expired (a crash).",
            registry=reg,
        )

        self.spam = Tally(
            "relay_spam",
            "Submissions the spam defence caught, by form, verdict (dropped, quarantined) "
            "and rule (honeypot, time_trap, max_links, blocked_domain, blocked_word, …).",
            ["form", "verdict", "rule"],
            reg,
        )
        self.challenges = Counter(
            "relay_pow_challenges",
            "Proof-of-work challenges asked for, by form and outcome (issued, not_found, …).",
            ["form", "outcome"],
            registry=reg,
        )

    def caught(self, form: str, verdict: str, rules: tuple[str, ...]) -> None:
        """Count one submission caught by the spam defence, once per rule that caught it."""
        for rule in rules:
            self.spam.inc((form, verdict, rule))

    def challenge(self, form: str | None, outcome: str) -> None:
        """Count one challenge request; unknown form ids are counted as UNKNOWN_FORM."""
        self.challenges.labels(form or UNKNOWN_FORM, outcome).inc()

    def submission(self, form: str, outcome: str) -> None:
        """Count one submission; `form` must be a configured form id (or UNKNOWN_FORM)."""
        self.submissions.inc((form, outcome))

    def observe_queue(self, stats: QueueStats, now: datetime) -> None:
        """Set the scrape-time gauges from one read of the database."""
        for state in states.ALL:
            self.deliveries.labels(state).set(stats.by_state.get(state, 0))
        self.queue_depth.set(stats.depth)
        self.oldest_queued_age.set(max(0.0, stats.oldest_age(now)))

    def observe_dispatch(self, dispatcher: object | None) -> None:
        """Set the pause gauge from the dispatcher (if one runs in this process)."""
        paused = getattr(dispatcher, "paused_reason", None) if dispatcher is not None else None
        self.dispatch_paused.set(1 if paused else 0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
