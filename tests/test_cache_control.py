"""Private and token-bearing responses are never stored by browsers or shared caches."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.api import LIST, PASSWORD, SignUp, bearer


def test_my_posts_are_private_and_revalidated_on_a_miss_and_on_a_cache_hit(
    client: FlaskClient, sign_up: SignUp
) -> None:
    # Was `no-store`; now the client may keep its copy but must revalidate it (If-None-Match) before
    # each use, and shared caches must not keep it at all (docs/api.md, "Conditional listing").
    token = sign_up()["access_token"]
    assert client.post("/api/v1/posts/add-post", json={"text": "hi"}, headers=bearer(token)).status_code == 200
    for _ in range(2):  # the second answer comes from the listing cache
        response = client.get(LIST, headers=bearer(token))
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "private, no-cache"
        assert response.headers["Vary"] == "Authorization"


def test_every_token_response_is_no_store(client: FlaskClient, sign_up: SignUp) -> None:
    user = sign_up()
    responses = {
        "sign_in form": client.post("/api/v1/auth/sign_in", data={"username": "ada@example.com", "password": PASSWORD}),
        "sign_in json": client.post("/api/v1/auth/sign_in", json={"email": "ada@example.com", "password": PASSWORD}),
        "refresh": client.get("/api/v1/auth/refresh_token", headers={"refresh-token": user["refresh_token"]}),
        "sign_out": client.post("/api/v1/auth/sign_out", headers={"refresh-token": user["refresh_token"]}),
    }
    for name, response in responses.items():
        assert response.status_code == 200, name
        assert response.headers["Cache-Control"] == "no-store", name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
