"""GET /f/{form_id}/challenge: a fresh ALTCHA challenge for the widget (relay.defence.pow).

CORS for the form's own origins, `Cache-Control: no-store` (a challenge is single-use), no
cookie. Unknown forms get 404 JSON; a form without `proof_of_work` gets 404 too, so nobody
spends work on a check that is not made.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from relay.defence import pow as proof
from relay.web.deps import deps_of

NO_STORE = {"Cache-Control": "no-store"}


def _cors(request: Request, allowed: bool) -> dict[str, str]:
    origin = request.headers.get("origin")
    headers = {"Vary": "Origin", **NO_STORE}
    if allowed and origin is not None:
        headers["Access-Control-Allow-Origin"] = origin
    return headers


async def challenge(request: Request) -> Response:
    """GET /f/{form_id}/challenge."""
    deps = deps_of(request)
    form = deps.forms.get(request.path_params["form_id"])
    origin = request.headers.get("origin")
    allowed = form is not None and origin is not None and form.allows_origin(origin)
    headers = _cors(request, allowed)
    if form is None or not form.proof_of_work:
        deps.metrics.challenge(form.id if form is not None else None, "not_found")
        body = {"ok": False, "error": "There is no proof-of-work challenge for this form."}
        return JSONResponse({**body, "code": "FORM_NOT_FOUND"}, status_code=404, headers=headers)
    if origin is not None and not allowed:
        deps.metrics.challenge(form.id, "origin_not_allowed")
        body = {"ok": False, "error": "This site may not use this form."}
        return JSONResponse(
            {**body, "code": "ORIGIN_NOT_ALLOWED"}, status_code=403, headers=headers
        )
    issued = proof.issue(
        deps.proof_keys,
        form.id,
        deps.clock(),
        ttl_seconds=deps.settings.proof_of_work_ttl_seconds,
        cost=form.proof_of_work_cost,
        counter=form.proof_of_work_counter,
    )
    deps.metrics.challenge(form.id, "issued")
    return JSONResponse(issued, headers=headers)


async def preflight(request: Request) -> Response:
    """OPTIONS /f/{form_id}/challenge: CORS preflight for the form's own origins."""
    form = deps_of(request).forms.get(request.path_params["form_id"])
    origin = request.headers.get("origin")
    if form is None or not form.proof_of_work:
        return Response(status_code=404, headers={"Vary": "Origin"})
    if origin is None or not form.allows_origin(origin):
        return Response(status_code=403, headers={"Vary": "Origin"})
    headers = {
        **_cors(request, True),
        "Access-Control-Allow-Methods": "GET, OPTIONS",
        "Access-Control-Allow-Headers": "Accept, Content-Type",
        "Access-Control-Max-Age": "600",
    }
    return Response(status_code=204, headers=headers)
