"""GET and POST /consent/withdraw?token=…: self-service withdrawal of marketing consent.

No login and no cookie: the token itself (sealed address + expiry, see
relay.rights.consent_link) proves the link was made by relay for one person. A GET only shows a
confirmation page with a button, because mail scanners and link previewers fetch every link
in an email: a withdrawal is a person's act, made by the POST that button sends. The POST is
also what RFC 8058 one-click unsubscribe clients send. The pages reveal nothing about the
person, not even the address, and link back to the organisation's site. Repeating the POST
changes nothing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse

from relay import i18n
from relay.errors import StoreUnavailable
from relay.i18n import N_
from relay.rights import consent_link, privacy
from relay.web.deps import deps_of, store_of

HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
#: relay.rights.consent_link's reasons as the page shows them (capitalised), marked for translation.
LINK_PROBLEMS = (
    N_("This withdrawal link is not valid."),
    N_("This withdrawal link has expired."),
)
#: The largest token read from a POST body (a sealed address is a few hundred characters).
MAX_TOKEN = 4096


def _site(request: Request) -> str | None:
    """The organisation's site: the first allowed origin of the forms file, if any."""
    for form in deps_of(request).forms.values():
        if form.allowed_origins:
            return form.allowed_origins[0] + "/"
    return None


def _page(
    request: Request,
    status: int,
    title: str,
    message: str,
    *,
    after: str | None = None,
    **ctx: object,
) -> HTMLResponse:
    """The page in the visitor's language; `after` is a second sentence, translated and then
    given the privacy contact as {contact}."""
    deps = deps_of(request)
    language = i18n.pick(  # ?lang=, else Accept-Language, else the default
        asked=request.query_params.get("lang"),
        accept_language=request.headers.get("accept-language", ""),
        form_language=None,
        default=deps.settings.default_language,
    )
    text = i18n.translate(language, message)
    if after is not None:
        contact = deps.settings.privacy_contact or ""
        text += " " + i18n.translate(language, after).format(contact=contact)
    html = deps.pages.render(
        "withdraw.html",
        language=language,
        title=i18n.translate(language, title),
        message=text,
        site=_site(request),
        confirm=ctx.get("confirm"),
        controller={
            "name": deps.settings.controller_name,
            "address": deps.settings.controller_address,
            "contact": deps.settings.privacy_contact,
        },
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _invalid(request: Request, exc: consent_link.InvalidLink) -> HTMLResponse:
    """The link cannot be used: say why, and how to withdraw anyway (the privacy contact)."""
    return _page(
        request,
        400,
        N_("This link cannot be used"),
        f"{str(exc).capitalize()}.",
        after=N_("Write to {contact} and we will withdraw your consent by hand.")
        if deps_of(request).settings.privacy_contact
        else N_("Write to us and we will withdraw your consent by hand."),
    )


async def confirm(request: Request) -> HTMLResponse:
    """GET: check the link, then ask for the click that withdraws; nothing is recorded yet."""
    deps = deps_of(request)
    token = request.query_params.get("token", "")
    try:
        consent_link.email_of_token(deps.keyring, token, now=deps.clock())
    except consent_link.InvalidLink as exc:
        return _invalid(request, exc)
    return _page(
        request,
        200,
        N_("Stop receiving our marketing emails?"),
        N_("Press the button to withdraw your consent to our marketing emails."),
        confirm=token,
    )


async def withdraw(request: Request) -> HTMLResponse:
    """POST: record the withdrawal named by the token (query, or the page's form field)."""
    deps = deps_of(request)
    now = deps.clock()
    token = request.query_params.get("token", "")
    if not token:
        async with request.form(max_files=0, max_fields=5, max_part_size=MAX_TOKEN) as form:
            value = form.get("token")
            token = value if isinstance(value, str) else ""
    try:
        email = consent_link.email_of_token(deps.keyring, token, now=now)
    except consent_link.InvalidLink as exc:
        return _invalid(request, exc)
    try:
        await privacy.withdraw_consent(
            store_of(request),
            deps.keyring,
            email,
            actor="withdraw_link",
            now=now,
            source="withdraw_link",
        )
    except StoreUnavailable:
        return _page(
            request, 503, N_("Please try again in a moment"), N_("Your request could not be saved.")
        )
    return _page(
        request,
        200,
        N_("You will no longer receive our marketing emails"),
        N_("Your consent is withdrawn. You do not need to do anything else."),
    )
