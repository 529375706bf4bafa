"""Spam defence, the "defend" step of the flow (design step 2): pure verdicts, no I/O.

    honeypot.py  a filled trap field           → certain: drop (answer as a success)
    pow.py       ALTCHA challenge and proof    → refuse (missing, invalid, expired, …)
                 solved too soon after issue   → suspicious: time trap
    content.py   links, blocked domains/words, disposable addresses → suspicious
    verdict.py   the rules caught → deliver | quarantine | drop
    proxies.py   who the client is, behind trusted reverse proxies
    windows.py   sliding-window counters in memory (the rate limits' arithmetic)
    quarantine.py  an admin's release or deletion of a quarantined submission (a store job)

The web layer calls them in this order (cheapest first) and acts on the Verdict; the single-use
record of a proof is the only state, kept at the edge (relay.store.proofs, relay.web.replay).
Nothing is imported here, so relay.config may use relay.defence.proxies without a cycle.
"""
