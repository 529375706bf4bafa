"""The paths Formspree's clients use: /p/{project}/f/{form} and JSON for every answer under them."""

from __future__ import annotations

import pytest

from tests.helpers import ORIGIN, VALID

JSON_HEADERS = {"Accept": "application/json", "Origin": ORIGIN}


def test_project_path_accepts_like_the_form_path(client):
    """POST /p/{project}/f/{form} (FormspreeProvider project=) is accepted like /f/{form}."""
    response = client.post("/p/my-project/f/contact", json=VALID, headers=JSON_HEADERS)
    assert response.status_code == 202
    assert response.json()["ok"] is True


def test_project_path_preflight_allows_the_clients_headers(client):
    """OPTIONS /p/{project}/f/{form} answers the CORS preflight as /f/{form} does."""
    response = client.options(
        "/p/my-project/f/contact",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "Formspree-Client" in response.headers["access-control-allow-headers"]


def test_project_path_unknown_form_is_json(client):
    """An unknown form under /p/ is a JSON FORM_NOT_FOUND, as the client library expects."""
    response = client.post("/p/my-project/f/nope", json=VALID, headers=JSON_HEADERS)
    assert response.status_code == 404
    assert response.json()["errors"] == [
        {"code": "FORM_NOT_FOUND", "message": "There is no form with this address."}
    ]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("POST", "/f/contact/extra", 404, "FORM_NOT_FOUND"),
        ("POST", "/p/x", 404, "FORM_NOT_FOUND"),
        ("POST", "/p/x/f/contact/thanks", 404, "FORM_NOT_FOUND"),
        ("GET", "/f/contact", 405, "METHOD_NOT_ALLOWED"),
        ("PUT", "/p/x/f/contact", 405, "METHOD_NOT_ALLOWED"),
        ("DELETE", "/f/contact/thanks", 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/f/nope", 404, "FORM_NOT_FOUND"),
    ],
)
def test_other_paths_and_methods_answer_json(client, method, path, status, code):
    """Any other path or method under /f/ and /p/ gets a JSON error with a code, never text."""
    response = client.request(method, path, json=VALID, headers=JSON_HEADERS)
    assert response.status_code == status
    body = response.json()
    assert body["ok"] is False
    assert isinstance(body["error"], str)
    assert body["errors"][0]["code"] == code


def test_wrong_method_says_which_are_allowed(client):
    """A GET on a form's URL is 405 with an Allow header naming POST and OPTIONS."""
    response = client.get("/f/contact", headers=JSON_HEADERS)
    assert response.headers["allow"] == "POST, OPTIONS"


def test_endpoint_set_to_the_form_url_is_explained(client):
    """`endpoint` set to the whole form URL (/f/contact/f/contact) says to use the base URL."""
    response = client.post("/f/contact/f/contact", json=VALID, headers=JSON_HEADERS)
    assert response.status_code == 404
    assert "base URL" in response.json()["error"]


def test_browser_gets_the_error_page_for_an_unknown_path(client):
    """A browser (no JSON Accept) gets relay's HTML error page under /f/, not plain text."""
    response = client.get("/f/contact/nothing", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Form not found" in response.text
