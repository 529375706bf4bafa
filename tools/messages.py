"""Refresh relay/locale/*/LC_MESSAGES/relay.po from the sources (`make messages`).

Extracts every message (templates' `_()`, `N_()`, SubmissionRejected/FieldError messages) into
relay/locale/relay.pot, then adds new messages to each catalogue, untranslated: translate them
(the English catalogue repeats the source) before tests/test_i18n.py passes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "relay" / "locale"
KEYWORDS = ["-k", "N_", "-k", "SubmissionRejected:3", "-k", "FieldError:3"]


def main() -> None:
    pot = LOCALE / "relay.pot"
    subprocess.run(  # noqa: S603 - our own venv's pybabel, fixed arguments
        [
            Path(sys.executable).parent / "pybabel",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            *KEYWORDS,
            "--no-location",
            "--omit-header",
            "--sort-output",
            "-o",
            str(pot),
            str(ROOT),
        ],
        check=True,
        cwd=ROOT,
    )
    for po in sorted(LOCALE.glob("*/LC_MESSAGES/relay.po")):
        language = po.parent.parent.name
        with pot.open("rb") as f:  # read afresh: update() shares the template's messages
            template = read_po(f)
        with po.open("rb") as f:
            catalog = read_po(f, locale=language)
        catalog.update(template, no_fuzzy_matching=True)
        if language == "en":
            for message in catalog:
                if message.id and not message.string:
                    message.string = message.id
        with po.open("wb") as f:
            write_po(f, catalog, omit_header=False, no_location=True, sort_output=True)
        sys.stdout.write(f"{po.relative_to(ROOT)}: {len(catalog)} messages\n")


if __name__ == "__main__":
    main()
