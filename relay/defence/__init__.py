"""Spam defence, the "defend" step of the flow (design step 2): pure verdicts, no I/O.

    honeypot.py  a filled trap field           → certain: drop (answer as a success)
    pow.py       ALTCHA challenge and proof    → refuse (missing, invalid, expired, …)
                 solved too soon after issue   → suspicious: time trap
    content.py   links, blocked domains/words, disposable addresses → suspicious
    verdict.py   the rules caught → deliver | quarantine | drop

The web layer calls them in this order (cheapest first) and acts on the Verdict; the single-use
record of a proof is the only state, kept at the edge (relay.store.proofs, relay.web.replay).
"""

from __future__ import annotations

from relay.defence.verdict import Action, Verdict, screen_fields, screen_raw

__all__ = ["Action", "Verdict", "screen_fields", "screen_raw"]
