"""relay.metrics: the counters a flood counts through are exported as Prometheus counters."""

from __future__ import annotations

import re
import time

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, generate_latest

from relay.metrics import Tally

LABELS = ["form", "verdict", "rule"]
label_values = st.tuples(
    st.sampled_from(["contact", "devis", "unknown"]),
    st.sampled_from(["dropped", "quarantined"]),
    st.sampled_from(["honeypot", "time_trap", "max_links"]),
)


def _masked(exposition: bytes) -> str:
    """The text with the `_created` timestamps (the moment of a first count) made equal."""
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", exposition.decode())


@given(counts=st.lists(label_values, max_size=30))
def test_a_tally_is_exported_as_the_counter_it_replaces(counts):
    """Property: whatever label values are counted, and how often, the exposition of a Tally
    is the text prometheus_client's own Counter gives for the same counts (HELP, TYPE,
    `_total` and `_created` series, label order, values), but for the creation times."""
    counter_registry, tally_registry = CollectorRegistry(), CollectorRegistry()
    counter = Counter("relay_spam", "Caught.", LABELS, registry=counter_registry)
    tally = Tally("relay_spam", "Caught.", LABELS, tally_registry)
    for labels in counts:
        counter.labels(*labels).inc()
        tally.inc(labels)
    assert _masked(generate_latest(tally_registry)) == _masked(generate_latest(counter_registry))
    for labels in counts:
        assert tally.value(labels) == counts.count(labels)


def test_a_tally_first_counted_later_is_created_later():
    """Each series' `_created` is the time of its first count, not the tally's creation."""
    registry = CollectorRegistry()
    tally = Tally("relay_submissions", "Received.", ["form", "outcome"], registry)
    before = time.time()
    tally.inc(("contact", "accepted"))
    after = time.time()
    tally.inc(("contact", "accepted"))
    assert (
        registry.get_sample_value(
            "relay_submissions_total", {"form": "contact", "outcome": "accepted"}
        )
        == 2.0
    )
    created = registry.get_sample_value(
        "relay_submissions_created", {"form": "contact", "outcome": "accepted"}
    )
    assert created is not None
    assert before <= created <= after  # the first count's moment, not the second's
    assert (
        registry.get_sample_value(
            "relay_submissions_total", {"form": "contact", "outcome": "refused"}
        )
        is None
    )
