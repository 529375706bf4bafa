"""GET /: an example page with a real form for `contact`, in French and English (issue 10).

What `make run` shows a newcomer: a form that posts to relay without JavaScript (303 to the
thank-you page) and, with it, submits with fetch as Formspree's clients do and shows each
error beside its field. It is the forms file's `contact` form (or the first form).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from relay import i18n
from relay.accept.fields import BUILT_IN
from relay.web.deps import deps_of
from relay.web.pages import default_templates_dir

EXAMPLE_FORM = "contact"
#: The page runs relay's own /example.js (relay.web.middleware: `script-src 'self'`, and a
#: same-origin referrer policy: with no-referrer a browser's form post says `Origin: null`,
#: which relay refuses (403) like any origin the form does not list).
HEADERS = {"Cache-Control": "no-store", "X-Relay-Own-Scripts": "1"}
SCRIPT = "example.js"
#: The ALTCHA widget's strict-CSP build (no inline styles, workers from files), served from the
#: repository's node_modules when `make npm` installed it: third-party code is never committed,
#: so the example page uses proof of work only when the widget is there ("when available").
WIDGET_DIR = Path(__file__).resolve().parent.parent.parent / "node_modules" / "altcha" / "dist"
WIDGET_FILES = {
    "altcha.js": ("external/altcha.js", "text/javascript; charset=utf-8"),
    "altcha.css": ("external/altcha.css", "text/css; charset=utf-8"),
    "pbkdf2.js": ("workers/pbkdf2.js", "text/javascript; charset=utf-8"),
    "sha.js": ("workers/sha.js", "text/javascript; charset=utf-8"),
}


def widget_available() -> bool:
    """Whether the ALTCHA widget files are installed (node_modules, by `make npm`)."""
    return all((WIDGET_DIR / path).is_file() for path, _ in WIDGET_FILES.values())


async def page(request: Request) -> HTMLResponse:
    """The example page, in ?lang=, else Accept-Language, else the form's language."""
    deps = deps_of(request)
    form = deps.forms.get(EXAMPLE_FORM) or next(iter(deps.forms.values()))
    language = i18n.pick(
        asked=request.query_params.get("lang"),
        accept_language=request.headers.get("accept-language", ""),
        form_language=form.language,
        default=deps.settings.default_language,
    )
    html = deps.pages.render(
        "example.html",
        language=language,
        referrer="same-origin",
        languages=i18n.available(),
        form=form,
        built_in=[name for name in BUILT_IN if name != "message"],
        declared=[(f, f.label_in(language)) for f in form.fields],
        proof_of_work=form.proof_of_work,
        widget=form.proof_of_work and widget_available(),
    )
    return HTMLResponse(html, headers=HEADERS)


async def script(_request: Request) -> Response:
    """GET /example.js: the example page's script (relay's own file, not third-party code)."""
    body = (default_templates_dir() / "pages" / SCRIPT).read_bytes()
    return Response(
        body,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "max-age=300"},
    )


async def widget(request: Request) -> Response:
    """GET /altcha/{name}: the ALTCHA widget's files for the example page, when installed."""
    entry = WIDGET_FILES.get(request.path_params["name"])
    if entry is None or not widget_available():
        return Response("Not found.\n", status_code=404, media_type="text/plain")
    path, media_type = entry
    return Response(
        (WIDGET_DIR / path).read_bytes(),
        media_type=media_type,
        headers={"Cache-Control": "max-age=300"},
    )
