"""GET (or POST) /consent/withdraw?token=…: self-service withdrawal of marketing consent.

No login and no cookie: the token itself (sealed address + expiry, see
relay.consent_link) proves the link was made by relay for one person. The page
confirms the withdrawal and reveals nothing else, not even the address. POST is accepted too,
for one-click unsubscribe headers (RFC 8058). Repeating the request changes nothing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse

from relay import consent_link, privacy
from relay.errors import StoreUnavailable
from relay.web.deps import deps_of, store_of

HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    html = deps_of(request).pages.render("withdraw.html", title=title, message=message)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


async def withdraw(request: Request) -> HTMLResponse:
    """Record the withdrawal named by the token and confirm it."""
    deps = deps_of(request)
    now = deps.clock()
    token = request.query_params.get("token", "")
    try:
        email = consent_link.email_of_token(deps.keyring, token, now=now)
    except consent_link.InvalidLink as exc:
        contact = deps.settings.privacy_contact
        where = f"Write to {contact}" if contact else "Write to us"
        return _page(
            request,
            400,
            "This link cannot be used",
            f"{str(exc).capitalize()}. {where} and we will withdraw your consent by hand.",
        )
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
            request, 503, "Please try again in a moment", "Your request could not be saved."
        )
    return _page(
        request,
        200,
        "You will no longer receive our marketing emails",
        "Your consent is withdrawn. You do not need to do anything else.",
    )
