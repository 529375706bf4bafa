"""What the prospect record costs on the accept path, and how long a purge takes.

Runs the real write jobs through the real group writer on a temporary SQLite database:
N accepts without the prospect record, N with it and no consent box, N with a ticked box (half
of each are returning people), then a purge that expires all of them. Prints its figures;
asserts nothing.

    .venv/bin/python bench/privacy_overhead.py [N]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from relay.accept.submission import Submission
from relay.config import load_forms
from relay.crypto import KeyRing, generate_key
from relay.ids import new_submission_id
from relay.minimise.retention import purge
from relay.store import Store, outbox
from relay.web.prospect import prospect_of

FORMS = """
[[forms]]
id = "contact"
recipients = ["sales@example.com"]
legal_basis = "legitimate_interest"
notice_version = "2026-03-20"

[forms.marketing_consent]
field = "newsletter"
wording = "I agree to receive news by email."
wording_version = "v1"
"""


def _row(keyring: KeyRing, sub: Submission, mac: str, now: datetime) -> outbox.NewSubmission:
    sid = new_submission_id()
    return outbox.NewSubmission(
        id=sid,
        form_id="contact",
        received_at=now,
        legal_basis="legitimate_interest",
        notice_version="2026-03-20",
        consent_given=False,
        consent_wording_version="v1",
        body_enc=outbox.seal_body(keyring, sid, sub.model_dump()),
        subject_mac=mac,
    )


async def _run(n: int, folder: Path) -> None:
    (folder / "forms.toml").write_text(FORMS, encoding="utf-8")
    form = load_forms(folder / "forms.toml")["contact"]
    keyring = KeyRing.from_text(generate_key())
    store = await Store.open(f"sqlite+aiosqlite:///{folder / 'bench.db'}", migrate=True)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        scenarios = (
            ("outbox only              ", False, False),
            ("+ record, no consent box ", True, False),
            ("+ record, box ticked     ", True, True),
        )
        for label, with_prospect, ticked in scenarios:
            started = time.perf_counter()
            jobs = []
            for i in range(n):
                person = i // 2  # every other submission is from a returning person
                sub = Submission(
                    name=f"Person {person}",
                    email=f"p{person}-{len(label.split())}-{ticked}@example.com",
                    phone="",
                    company="ACME",
                    message="Hello " * 40,
                )
                raw = {"newsletter": "on"} if ticked else {}
                prospect = prospect_of(keyring, form, sub, raw) if with_prospect else None
                mac = prospect.email_mac if prospect else keyring.mac(sub.email)
                jobs.append(
                    store.write(outbox.accept(_row(keyring, sub, mac, now), None, prospect))
                )
            await asyncio.gather(*jobs)
            elapsed = time.perf_counter() - started
            print(f"accept {label}: {n} in {elapsed:.2f} s = {elapsed / n * 1e6:.0f} µs each")
        started = time.perf_counter()
        report = await purge(store, now + timedelta(days=4 * 365))
        elapsed = time.perf_counter() - started
        print(f"purge of {report.total} items: {elapsed * 1000:.0f} ms ({report.as_dict()})")
    finally:
        await store.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_run(n, Path(folder)))


if __name__ == "__main__":
    main()
