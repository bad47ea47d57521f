"""Error pages and the documentation pages as gunicorn serves them."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest
import requests

from tests.e2e.helpers import CLOSE, TIMEOUT
from tests.support.api import LIST
from tests.support.gunicorn import LiveServer

pytestmark = pytest.mark.e2e

_ASSET_REFERENCE = re.compile(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)


def test_unknown_path_is_a_json_404(live_server: LiveServer) -> None:
    response = requests.get(live_server.base + "/nope", headers=CLOSE, timeout=TIMEOUT)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"]
    assert "<" not in response.text


def test_wrong_method_is_a_json_405_with_allow(live_server: LiveServer) -> None:
    response = requests.put(live_server.base + LIST, headers=CLOSE, timeout=TIMEOUT)
    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"]
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert "GET" in allowed
    assert "PUT" not in allowed


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_use_only_local_assets(live_server: LiveServer, page: str) -> None:
    response = requests.get(live_server.base + page, headers=CLOSE, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assets = _ASSET_REFERENCE.findall(response.text)
    assert assets, response.text[:500]
    for asset in assets:
        assert asset.startswith("/static/"), f"{page} loads {asset} from outside the service"
    assert not re.search(r"""\b(?:src|href)\s*=\s*["'](?:https?:)?//""", response.text, re.I)
    # Each asset is really served (the page works with no internet access).
    for asset in assets:
        served = requests.get(urljoin(live_server.base + page, asset), headers=CLOSE, timeout=TIMEOUT)
        assert served.status_code == 200, asset
        assert served.content
