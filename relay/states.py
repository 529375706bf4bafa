"""The states a submission moves through, from accepted by relay to final.

    queued ──claim──▶ sending ──200──▶ accepted ──delivered event──▶ delivered
       ▲                 │  429/5xx/timeout ▶ retrying ──(due)──▶ sending …   past max age ▶ dead
       │                 │  400/413 ▶ failed                       permanent failure ▶ failed
       └── 401/403: stays queued while dispatch pauses             unknown after retention ▶ unknown

A submission the spam defence finds suspicious starts as `quarantined` instead of `queued`: never
claimed, until an admin releases it (→ queued) or deletes it, or retention purges it.

`queued` and `retrying` rows are due when next_attempt_at <= now. `accepted` means Mailgun
took it; `delivered`, `failed`, `dead` and `unknown` are final.
"""

from __future__ import annotations

QUEUED = "queued"
SENDING = "sending"
RETRYING = "retrying"
ACCEPTED = "accepted"
DELIVERED = "delivered"
FAILED = "failed"
DEAD = "dead"
UNKNOWN = "unknown"
QUARANTINED = "quarantined"

ALL = (QUEUED, SENDING, RETRYING, ACCEPTED, DELIVERED, FAILED, DEAD, UNKNOWN, QUARANTINED)
DUE = (QUEUED, RETRYING)
FINAL = (DELIVERED, FAILED, DEAD, UNKNOWN)

#: The `last_error` of a submission erased at its sender's request (relay.rights.erasure): it
#: ends `failed`, and the alerts watch does not report it as a delivery failure.
ERASED = "erased at the person's request"
