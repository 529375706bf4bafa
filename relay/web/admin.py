"""/admin: the delivery log, one submission's timeline, retry, and the DPO's prospect lookup.

Server-rendered, no JavaScript. Every page needs a login (relay.web.auth); `viewer` sees the
delivery log (which holds no personal data), `dpo` also looks prospects up by email and runs
the subject actions. Every page view and every action writes one audit line (who, what, which
reference), never the data itself. Emails are posted in form bodies, never put in URLs.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from relay import spans, states
from relay.defence import quarantine
from relay.defence.quarantine import EXPLAIN
from relay.minimise.housekeeping import bounds_of
from relay.rights.subject_export import controller_info
from relay.store import admin_sessions
from relay.store.deliveries import (
    DeliveryFilter,
    audit,
    list_deliveries,
    requeue,
    timeline,
)
from relay.store.delivery_stats import counts_by_state
from relay.store.keycheck import MissingKey, require_keys
from relay.store.prospects_read import find_prospect, open_prospect
from relay.web.auth import AdminAuth, Session, csrf_ok
from relay.web.deps import deps_of, store_of
from relay.web.ratelimit import LimitsUnavailable
from relay.web.subject_actions import ACTIONS, Context, run_action

log = logging.getLogger("relay.admin")
MAX_FORM = 4096


def auth_of(request: Request) -> AdminAuth:
    """The app's AdminAuth, made at the first admin request (relay.web.routes.on_first_use)."""
    state = request.app.state
    auth: AdminAuth | None = getattr(state, "admin_auth", None)
    if auth is None:
        deps = deps_of(request)
        auth = state.admin_auth = AdminAuth(deps.settings, deps.keyring, deps.clock)
    return auth


def _page(
    request: Request, session: Session | None, name: str, status: int = 200, **ctx: Any
) -> HTMLResponse:
    html = deps_of(request).pages.render(
        f"admin/{name}",
        user=session.user if session else None,
        csrf=session.csrf if session else "",
        **ctx,
    )
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    return HTMLResponse(html, status_code=status, headers=headers)


async def _audit(
    request: Request, actor: str, action: str, target: str | None = None, detail: str = ""
) -> None:
    await store_of(request).write(audit(actor, action, deps_of(request).clock(), target, detail))


async def _guard(request: Request, role: str = "viewer") -> Session | Response:
    """The session, or the answer to give instead: to the login page, or 403 for the role."""
    auth = auth_of(request)
    session = auth.session(request)
    if session is not None:
        # The cookie is genuine; the session must also still exist on the server (logout).
        live = admin_sessions.is_live(
            auth.session_mac(session.sid), session.name, deps_of(request).clock()
        )
        if not await store_of(request).read(live):
            session = None
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":  # after logging in, come back to a page, not a POST URL
            target = "/admin/deliveries"
        return RedirectResponse(f"/admin/login?next={quote(target)}", status_code=303)
    if not session.may(role):
        await _audit(request, session.name, "denied", request.url.path)
        return _page(request, session, "denied.html", 403, needed=role)
    return session


async def _form(request: Request) -> dict[str, str]:
    async with request.form(max_files=0, max_fields=20, max_part_size=MAX_FORM) as form:
        return {k: v for k, v in form.items() if isinstance(v, str)}


def _next(value: str | None) -> str:
    """Only relay's own admin pages: never an open redirect."""
    if value and value.startswith("/admin") and not value.startswith("//"):
        return value
    return "/admin/deliveries"


async def home(request: Request) -> Response:
    """GET /admin: to the delivery log, or how to add a first admin user when there is none."""
    if not auth_of(request).users:
        return _page(request, None, "no_users.html")
    return RedirectResponse("/admin/deliveries", status_code=303)


def _login_form(
    request: Request, status: int = 200, *, next_url: str, error: str | None
) -> HTMLResponse:
    """The login page with a fresh CSRF token (its cookie set beside it)."""
    auth = auth_of(request)
    token, cookie = auth.login_token()
    response = _page(
        request,
        None,
        "login.html",
        status,
        next=next_url,
        error=error,
        login_csrf=token,
        no_users=not auth.users,
    )
    auth.set_login_cookie(response, request, cookie)
    return response


async def login_page(request: Request) -> Response:
    """GET /admin/login."""
    if auth_of(request).session(request) is not None:
        return RedirectResponse("/admin/deliveries", status_code=303)
    return _login_form(request, next_url=_next(request.query_params.get("next")), error=None)


async def login(request: Request) -> Response:
    """POST /admin/login: 303 with the session cookie, 401 on a wrong password, 429 when limited,
    403 without the login form's CSRF token."""
    auth = auth_of(request)
    form = await _form(request)
    name, password = form.get("username", "")[:64], form.get("password", "")[:1024]
    target = _next(form.get("next"))
    if not auth.login_token_ok(request, form.get("csrf")):
        error = "The login form expired or did not come from this site; please try again."
        return _login_form(request, 403, next_url=target, error=error)
    try:
        blocked = await auth.blocked(request, name)
    except LimitsUnavailable:  # RELAY_REDIS_FAIL=closed and Redis is down
        error = "Logging in is unavailable for a moment; please try again shortly."
        return _login_form(request, 503, next_url=target, error=error)
    if blocked:
        await _audit(request, name if name in auth.users else "unknown-user", "login.limited")
        error = "Too many failed attempts; wait 15 minutes and try again."
        return _login_form(request, 429, next_url=target, error=error)
    user = auth.authenticate(name, password)
    if user is None:
        await auth.failed(request, name)
        await _audit(request, name if name in auth.users else "unknown-user", "login.failed")
        return _login_form(request, 401, next_url=target, error="Wrong user name or password.")
    await _audit(request, user.name, "login")
    cookie, sid = auth.issue(user)
    now = deps_of(request).clock()
    expires = now + timedelta(seconds=auth.max_age)
    await store_of(request).write(
        admin_sessions.create(auth.session_mac(sid), user.name, now, expires)
    )
    response = RedirectResponse(target, status_code=303)
    auth.set_cookie(response, request, cookie)
    return response


async def logout(request: Request) -> Response:
    """POST /admin/logout."""
    session = await _guard(request)
    if not isinstance(session, Session):
        return session
    if not csrf_ok(request, session, (await _form(request)).get("csrf")):
        return _page(request, session, "denied.html", 403, needed="a valid form token")
    await _audit(request, session.name, "logout")
    # Revoked on the server: a copy of the cookie is worthless from now on.
    await store_of(request).write(admin_sessions.revoke(auth_of(request).session_mac(session.sid)))
    response = RedirectResponse("/admin/login", status_code=303)
    auth_of(request).clear_cookie(response, request)
    return response


async def deliveries(request: Request) -> Response:
    """GET /admin/deliveries?state=&form=&since=: the log, newest first, with counts."""
    session = await _guard(request)
    if not isinstance(session, Session):
        return session
    deps = deps_of(request)
    now = deps.clock()
    params = request.query_params
    state, form, since = (
        params.get("state") or None,
        params.get("form") or None,
        params.get("since") or None,
    )
    problems = []
    if state and state not in states.ALL:
        problems.append(f"unknown state {state!r}")
        state = None
    if form and form not in deps.forms:
        problems.append(f"unknown form {form!r}")
        form = None
    since_at = None
    if since:
        try:
            since_at = spans.parse_since(since, now)
        except ValueError as exc:
            problems.append(str(exc))
    flt = DeliveryFilter(state=state, form=form, since=since_at, limit=200)
    rows = await store_of(request).read(list_deliveries(flt))
    counts = await store_of(request).read(counts_by_state(now))
    shown = {"state": state, "form": form, "since": since_at.isoformat() if since_at else None}
    detail = urlencode({k: v for k, v in shown.items() if v})  # validated values only
    await _audit(request, session.name, "view.deliveries", None, detail)
    return _page(
        request,
        session,
        "deliveries.html",
        400 if problems else 200,
        rows=[
            {
                "id": d.id,
                "form": d.form_id,
                "received": spans.local(d.received_at),
                "state": d.state,
                "attempts": d.attempts,
                "last_event": d.last_event or "",
                "caught_by": d.quarantine_reason or "",
                "age": spans.human_age(d.age(now)),
            }
            for d in rows
        ],
        counts=counts,
        all_states=states.ALL,
        forms=sorted(deps.forms),
        chosen={"state": state or "", "form": form or "", "since": since or ""},
        problems=problems,
        notice=_NOTICES.get(params.get("notice", ""), ""),  # a code, never text from the URL
    )


async def delivery(request: Request) -> Response:
    """GET /admin/deliveries/{id}: one submission's timeline, with a retry button."""
    session = await _guard(request)
    if not isinstance(session, Session):
        return session
    sid = request.path_params["submission_id"]
    found = await store_of(request).read(timeline(sid))
    await _audit(request, session.name, "view.delivery", sid[:128])
    if found is None:
        return _page(request, session, "missing.html", 404, what=f"submission {sid}")
    d = found.delivery
    return _page(
        request,
        session,
        "delivery.html",
        d=d,
        received=spans.local(d.received_at),
        final=spans.local(d.final_at),
        wiped=spans.local(d.body_wiped_at),
        steps=[
            {"at": spans.local(s.at), "kind": s.kind, "what": s.what, "detail": s.detail or ""}
            for s in found.steps
        ],
        # A code from a fixed set, never text from the URL (a link could make the page lie).
        notice=_NOTICES.get(request.query_params.get("notice", ""), ""),
    )


_NOTICES = {
    "requeued": "Requeued: it will be sent again shortly.",
    "not_found": "No such submission.",
    "not_retryable": "Only failed or dead submissions can be retried.",
    "body_gone": "It can no longer be sent: its body was wiped.",
    # quarantine release/delete outcomes, worded where they are decided
    **{f"q_{outcome}": text[:1].upper() + text[1:] + "." for outcome, text in EXPLAIN.items()},
}


async def retry(request: Request) -> Response:
    """POST /admin/deliveries/{id}/retry (CSRF-protected)."""
    session = await _guard(request)
    if not isinstance(session, Session):
        return session
    if not csrf_ok(request, session, (await _form(request)).get("csrf")):
        return _page(request, session, "denied.html", 403, needed="a valid form token")
    sid = request.path_params["submission_id"]
    result = await store_of(request).write(
        requeue(sid, deps_of(request).clock(), actor=session.name)
    )
    log.info(
        "delivery retry",
        extra={"submission_id": sid, "outcome": result.outcome, "state": result.state},
    )
    query = urlencode({"notice": result.outcome})
    return RedirectResponse(f"/admin/deliveries/{quote(sid)}?{query}", status_code=303)


async def quarantine_action(request: Request) -> Response:
    """POST /admin/deliveries/{id}/release|delete (CSRF-protected): a quarantined submission."""
    session = await _guard(request)
    if not isinstance(session, Session):
        return session
    if not csrf_ok(request, session, (await _form(request)).get("csrf")):
        return _page(request, session, "denied.html", 403, needed="a valid form token")
    sid, action = request.path_params["submission_id"], request.path_params["action"]
    if action not in ("release", "delete"):
        return _page(request, session, "missing.html", 404, what=f"action {action[:32]}")
    deps = deps_of(request)
    now = deps.clock()
    if action == "release":
        job = quarantine.release(
            sid, now, actor=session.name, keyring=deps.keyring, forms=deps.forms
        )
    else:
        job = quarantine.remove(sid, now, actor=session.name)
    result = await store_of(request).write(job)
    log.info("quarantine action", extra={"submission_id": sid, "outcome": result.outcome})
    query = urlencode({"notice": f"q_{result.outcome}"})
    if result.outcome == "deleted":
        return RedirectResponse(f"/admin/deliveries?state=quarantined&{query}", status_code=303)
    return RedirectResponse(f"/admin/deliveries/{quote(sid)}?{query}", status_code=303)


async def prospects(request: Request) -> Response:
    """GET /admin/prospects (dpo): the lookup form."""
    session = await _guard(request, "dpo")
    if not isinstance(session, Session):
        return session
    await _audit(request, session.name, "view.prospect_lookup")
    return _page(
        request, session, "prospects.html", email="", prospect=None, searched=False, actions=ACTIONS
    )


async def prospect_lookup(request: Request) -> Response:
    """POST /admin/prospects (dpo): find a prospect by email; audited with the prospect's id."""
    session = await _guard(request, "dpo")
    if not isinstance(session, Session):
        return session
    form = await _form(request)
    if not csrf_ok(request, session, form.get("csrf")):
        return _page(request, session, "denied.html", 403, needed="a valid form token")
    email = form.get("email", "").strip()[:320]
    deps = deps_of(request)
    try:  # a wrong or retired key makes every lookup miss: say so, never "no match"
        await store_of(request).read(require_keys(deps.keyring))
    except MissingKey as exc:
        log.error("prospect lookup refused: %s", exc)  # noqa: TRY400 - key ids, no traceback
        needed = f"RELAY_SECRET_KEY to hold every key the stored data needs ({exc})"
        return _page(request, session, "denied.html", 503, needed=needed)
    found = await store_of(request).read(find_prospect(deps.keyring.macs(email))) if email else None
    record = open_prospect(found, deps.keyring) if found else None
    target = deps.keyring.subject_ref(email) if email else None
    detail = f"submissions={len(found['subs'])}" if found else "no match"
    await _audit(request, session.name, "view.prospect", target, detail)
    return _page(
        request,
        session,
        "prospects.html",
        email=email,
        prospect=record,
        history=found,
        searched=True,
        actions=ACTIONS,
        local=spans.local,
    )


async def prospect_action(request: Request) -> Response:
    """POST /admin/prospects/{action} (dpo): export, erase, restrict, withdraw
    (relay.rights.privacy)."""
    session = await _guard(request, "dpo")
    if not isinstance(session, Session):
        return session
    form = await _form(request)
    if not csrf_ok(request, session, form.get("csrf")):
        return _page(request, session, "denied.html", 403, needed="a valid form token")
    action = request.path_params["action"]
    email = form.get("email", "").strip()[:320]
    if action not in ACTIONS or not email:
        return _page(request, session, "missing.html", 404, what=f"action {action[:32]}")
    deps = deps_of(request)
    now = deps.clock()
    await _audit(request, session.name, f"subject.{action}", deps.keyring.subject_ref(email))
    settings = deps.settings
    context = Context(
        controller=controller_info(
            settings.controller_name, settings.controller_address, settings.privacy_contact
        ),
        mail_dir=settings.var_dir / "mail",
        bounds=bounds_of(settings),
    )
    result = await run_action(
        action, store_of(request), deps.keyring, email, actor=session.name, now=now, context=context
    )
    if result.download is not None:
        headers = {
            "Content-Disposition": f'attachment; filename="{result.filename}"',
            "Cache-Control": "no-store",
        }
        return Response(result.download, media_type="application/json", headers=headers)
    return _page(request, session, "action.html", action=action, summary=result.summary)
