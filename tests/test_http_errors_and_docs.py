"""Every error is JSON in the contract's shape; the API docs work offline."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.api import bearer


def test_root(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert isinstance(response.get_json()["message"], str)


def test_unknown_path_is_json_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert set(response.get_json()) == {"error"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", "/api/v1/posts/get_my_posts", {"GET"}),
        ("get", "/api/v1/posts/add-post", {"POST"}),
        ("post", "/api/v1/posts/delete_my_post", {"DELETE"}),
        ("delete", "/api/v1/auth/sign_in", {"POST"}),
    ],
)
def test_wrong_method_is_json_405_with_allow(client: FlaskClient, method: str, path: str, allowed: set[str]) -> None:
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/json"
    assert set(response.get_json()) == {"error"}
    assert allowed <= {part.strip() for part in response.headers["Allow"].split(",")}


def test_unexpected_errors_are_json_500_without_details(app: Flask) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret detail: password=hunter2 SELECT * FROM users")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.get_json() == {"error": "Internal server error"}
    assert "secret" not in response.get_data(as_text=True)


def test_openapi_documents_every_endpoint_and_the_security_schemes(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    expected = {
        "/": {"get"},
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/api/v1/auth/sign_up": {"post"},
        "/api/v1/auth/sign_in": {"post"},
        "/api/v1/auth/refresh_token": {"get"},
        "/api/v1/auth/sign_out": {"post"},
        "/api/v1/auth/change_password": {"post"},
        "/api/v1/auth/account": {"delete"},
        "/api/v1/auth/forgot_password": {"post"},
        "/api/v1/auth/reset_password": {"post"},
        "/api/v1/posts/add-post": {"post"},
        "/api/v1/posts/get_my_posts": {"get"},
        "/api/v1/posts/delete_my_post": {"delete"},
    }
    assert {path: set(ops) & {"get", "post", "delete"} for path, ops in spec["paths"].items()} == expected
    schemes = spec["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/sign_in"
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    documented_errors = {
        "/api/v1/posts/add-post": {"401", "413", "422", "503"},
        "/api/v1/posts/get_my_posts": {"401", "503"},
        "/api/v1/posts/delete_my_post": {"401", "404", "422", "503"},
        "/api/v1/auth/change_password": {"400", "401", "413", "422", "429", "503"},
        "/api/v1/auth/account": {"401", "413", "422", "429", "503"},
    }
    for path, statuses in documented_errors.items():
        operation = next(iter(spec["paths"][path].values()))
        assert {"OAuth2PasswordBearer": []} in operation["security"]
        assert statuses <= set(operation["responses"]), (path, operation["responses"])
    # Account recovery needs no token; it documents every answer it gives.
    recovery = {
        "/api/v1/auth/forgot_password": {"202", "413", "422", "429", "500", "501"},
        "/api/v1/auth/reset_password": {"200", "400", "413", "422", "429", "500", "501", "503"},
    }
    for path, statuses in recovery.items():
        operation = spec["paths"][path]["post"]
        assert "security" not in operation and operation["tags"] == ["Authentication"]
        assert set(operation["responses"]) == statuses, (path, operation["responses"])
    sign_in = spec["paths"]["/api/v1/auth/sign_in"]["post"]
    assert set(sign_in["requestBody"]["content"]) == {"application/x-www-form-urlencoded", "application/json"}
    validation = spec["components"]["responses"]["UNPROCESSABLE_ENTITY"]["content"]["application/json"]["schema"]
    assert validation["$ref"].endswith("/ValidationError")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(client: FlaskClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    for source in sources:
        assert source.startswith("/static/"), source
        asset = client.get(source)
        assert asset.status_code == 200, source
        assert asset.get_data().strip()
    assert any(source.startswith("/static/vendor/") for source in sources)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_allow_only_their_own_assets(client: FlaskClient, page: str) -> None:
    response = client.get(page)
    policy = dict(
        directive.strip().split(" ", 1) for directive in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"  # no inline scripts: the page templates carry none
    assert "<script>" not in response.get_data(as_text=True)
    assert all("http" not in sources for sources in policy.values())


@pytest.mark.parametrize("path", ["/", "/nope", "/openapi.json", "/docs"])
def test_every_response_forbids_mime_sniffing(client: FlaskClient, path: str) -> None:
    assert client.get(path).headers["X-Content-Type-Options"] == "nosniff"


def test_openapi_declares_each_operations_responses_and_no_catch_all(client: FlaskClient) -> None:
    # No `default`: it would declare every status, and Schemathesis' status-code check could not fail.
    spec = client.get("/openapi.json").get_json()
    needs_database = {"401", "503"}
    expected = {
        ("/", "get"): {"200"},
        ("/api/v1/auth/sign_up", "post"): {"200", "400", "422", "503"},
        ("/api/v1/auth/sign_in", "post"): {"200", "422"} | needs_database,
        ("/api/v1/auth/refresh_token", "get"): {"200"} | needs_database,
        ("/api/v1/posts/add-post", "post"): {"200", "422"} | needs_database,
        ("/api/v1/posts/get_my_posts", "get"): {"200", "304", "404", "422"} | needs_database,
        ("/api/v1/posts/delete_my_post", "delete"): {"200", "404", "422"} | needs_database,
        ("/api/v1/auth/change_password", "post"): {"200", "400", "422", "429"} | needs_database,
        ("/api/v1/auth/account", "delete"): {"200", "422", "429"} | needs_database,
    }
    for (path, method), statuses in expected.items():
        responses = spec["paths"][path][method]["responses"]
        assert "default" not in responses, (path, method)
        # Every request can be too large (checked before routing) or fail unexpectedly.
        assert statuses | {"413", "500"} <= set(responses), (path, method, sorted(responses))
        for status, response in responses.items():
            if "$ref" in response:
                response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
            if status not in ("200", "304"):  # a 304 has no body
                assert "application/json" in response["content"], (path, method, status)


def test_every_body_is_compact_and_keeps_the_contracts_key_order(client: FlaskClient) -> None:
    missing = client.get("/api/v1/posts/get_my_posts")
    assert missing.data == b'{"error":"Not authenticated"}'
    invalid = client.post("/api/v1/auth/sign_up", json={"email_address": "x"})
    assert invalid.status_code == 422
    assert invalid.data.startswith(b'{"status_code":422,"error":"Validation error","extra":[')
    assert b": " not in client.get("/").data and b", " not in client.get("/").data


# docs/api.md, "SDK compatibility": the original FastAPI service's operationIds and tags.
ORIGINAL_OPERATIONS = {
    ("/", "get"): ("index__get", "Home"),
    ("/api/v1/auth/sign_up", "post"): ("sign_up_api_v1_auth_sign_up_post", "Authentication"),
    ("/api/v1/auth/sign_in", "post"): ("sign_in_api_v1_auth_sign_in_post", "Authentication"),
    ("/api/v1/auth/refresh_token", "get"): ("refresh_token_api_v1_auth_refresh_token_get", "Authentication"),
    ("/api/v1/posts/add-post", "post"): ("add_post_api_v1_posts_add_post_post", "POSTS"),
    ("/api/v1/posts/get_my_posts", "get"): ("get_all_my_post_api_v1_posts_get_my_posts_get", "POSTS"),
    ("/api/v1/posts/delete_my_post", "delete"): ("delete_my_post_api_v1_posts_delete_my_post_delete", "POSTS"),
}
# Operations only this service has: the same style (FastAPI's default `{function}{path}_{method}`).
OWN_OPERATIONS = {
    ("/healthz", "get"): ("healthz_healthz_get", "Health"),
    ("/readyz", "get"): ("readyz_readyz_get", "Health"),
    ("/api/v1/auth/sign_out", "post"): ("sign_out_api_v1_auth_sign_out_post", "Authentication"),
    ("/api/v1/auth/change_password", "post"): ("change_password_api_v1_auth_change_password_post", "Authentication"),
    ("/api/v1/auth/account", "delete"): ("delete_account_api_v1_auth_account_delete", "Authentication"),
    ("/api/v1/auth/forgot_password", "post"): ("forgot_password_api_v1_auth_forgot_password_post", "Authentication"),
    ("/api/v1/auth/reset_password", "post"): ("reset_password_api_v1_auth_reset_password_post", "Authentication"),
}


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_openapi_has_the_original_operation_ids_and_tags(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    operations = _operations(spec)
    for key, (operation_id, tag) in {**ORIGINAL_OPERATIONS, **OWN_OPERATIONS}.items():
        assert (operations[key]["operationId"], operations[key]["tags"]) == (operation_id, [tag]), key
    ids = [operation["operationId"] for operation in operations.values()]
    assert len(ids) == len(set(ids))
    # Every operation, including any added later, has an id in FastAPI's style and a listed tag.
    listed_tags = [tag["name"] for tag in spec["tags"]]
    assert sorted(listed_tags) == ["Authentication", "Health", "Home", "POSTS"]
    for (path, method), operation in operations.items():
        style = "[a-z][a-z0-9_]*" + re.escape(re.sub(r"\W", "_", path)) + "_" + method
        assert re.fullmatch(style, operation["operationId"]), operation
        assert len(operation["tags"]) == 1 and operation["tags"][0] in listed_tags


def test_openapi_sign_in_form_is_the_original_oauth2_form(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    body = spec["paths"]["/api/v1/auth/sign_in"]["post"]["requestBody"]
    form = body["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form == {"$ref": "#/components/schemas/Body_sign_in_api_v1_auth_sign_in_post"}
    schema = spec["components"]["schemas"]["Body_sign_in_api_v1_auth_sign_in_post"]
    assert set(schema["properties"]) == {"grant_type", "username", "password", "scope", "client_id", "client_secret"}
    assert sorted(schema["required"]) == ["password", "username"]


def test_openapi_has_no_unused_schema(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    document = json.dumps({key: value for key, value in spec.items() if key != "components"})
    components = json.dumps({kind: spec["components"][kind] for kind in spec["components"] if kind != "schemas"})
    schemas = spec["components"]["schemas"]
    assert "PaginationMetadata" not in schemas
    for name in schemas:
        ref = json.dumps(f"#/components/schemas/{name}")
        others = json.dumps({other: value for other, value in schemas.items() if other != name})
        assert ref in document or ref in components or ref in others, name


def test_openapi_request_examples_work_as_they_stand(client: FlaskClient) -> None:
    """What Swagger UI pre-fills for each JSON body is accepted (the account's, once it exists)."""
    spec = client.get("/openapi.json").get_json()
    sign_up = spec["paths"]["/api/v1/auth/sign_up"]["post"]["requestBody"]["content"]["application/json"]
    response = client.post("/api/v1/auth/sign_up", json=sign_up["example"])
    assert response.status_code == 200, response.get_json()
    token = response.get_json()["access_token"]
    form = spec["components"]["schemas"]["Body_sign_in_api_v1_auth_sign_in_post"]["properties"]
    filled = {name: field["example"] for name, field in form.items() if "example" in field}
    assert client.post("/api/v1/auth/sign_in", data=filled).status_code == 200
    add = spec["paths"]["/api/v1/posts/add-post"]["post"]["requestBody"]["content"]["application/json"]
    assert "token" not in add["example"]
    response = client.post("/api/v1/posts/add-post", json=add["example"], headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    delete = spec["components"]["schemas"]["DeleteAccount"]["properties"]
    confirm = {name: field["example"] for name, field in delete.items()}
    response = client.delete("/api/v1/auth/account", json=confirm, headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    # The example account again (its email is free once deleted), for the password change.
    token = client.post("/api/v1/auth/sign_up", json=sign_up["example"]).get_json()["access_token"]
    change = spec["paths"]["/api/v1/auth/change_password"]["post"]["requestBody"]["content"]["application/json"]
    response = client.post("/api/v1/auth/change_password", json=change["example"], headers=bearer(token))
    assert response.status_code == 200, response.get_json()
