"""Every Prometheus collector relay exports, in one place, on a registry per app.

Why a registry per app: tests build many apps in one process; a global registry would share
(and refuse to re-register) collectors between them. Labels are forms, states, outcomes,
event types and verdicts — bounded sets, never anything typed by a person.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from relay import states
from relay.store.delivery_stats import QueueStats

#: The content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNKNOWN_FORM = "unknown"


class Metrics:
    """The collectors of one app (or worker) and the registry they live on."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Children kept by their label values: labels() costs a few µs a call, and a flood
        # counts through submission() and caught() (label values are bounded: forms,
        # outcomes, verdicts, rules).
        self._submissions: dict[tuple[str, str], Any] = {}
        self._caught: dict[tuple[str, str, tuple[str, ...]], list[Any]] = {}
        reg = self.registry
        self.submissions = Counter(
            "relay_submissions",
            "Submissions received, by form and outcome (accepted or the refusal code).",
            ["form", "outcome"],
            registry=reg,
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

        self.spam = Counter(
            "relay_spam",
            "Submissions the spam defence caught, by form, verdict (dropped, quarantined) "
            "and rule (honeypot, time_trap, max_links, blocked_domain, blocked_word, …).",
            ["form", "verdict", "rule"],
            registry=reg,
        )
        self.challenges = Counter(
            "relay_pow_challenges",
            "Proof-of-work challenges asked for, by form and outcome (issued, not_found, …).",
            ["form", "outcome"],
            registry=reg,
        )

    def caught(self, form: str, verdict: str, rules: tuple[str, ...]) -> None:
        """Count one submission caught by the spam defence, once per rule that caught it."""
        key = (form, verdict, rules)
        children = self._caught.get(key)
        if children is None:
            children = self._caught[key] = [self.spam.labels(form, verdict, r) for r in rules]
        for child in children:
            child.inc()

    def challenge(self, form: str | None, outcome: str) -> None:
        """Count one challenge request; unknown form ids are counted as UNKNOWN_FORM."""
        self.challenges.labels(form or UNKNOWN_FORM, outcome).inc()

    def submission(self, form: str, outcome: str) -> None:
        """Count one submission; `form` must be a configured form id (or UNKNOWN_FORM)."""
        key = (form, outcome)
        child = self._submissions.get(key)
        if child is None:
            child = self._submissions[key] = self.submissions.labels(form, outcome)
        child.inc()

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
