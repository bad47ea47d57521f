"""An SDK generated from the live /openapi.json (pinned openapi-python-client) is the original's, and works.

docs/api.md, "SDK compatibility": a client generated from the original FastAPI service's document
and one generated from ours have the same modules and functions. This generates ours through
gunicorn, checks the original's module paths, imports every module and runs a full round trip
through the generated functions.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from tests.e2e.helpers import StartServer, mail_env
from tests.support.api import PASSWORD
from tests.support.gunicorn import REPO_ROOT, LiveServer
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.e2e

GENERATOR = "openapi-python-client"
GENERATE_TIMEOUT = 180
PACKAGE = "posts_api_client"
# Where openapi-python-client puts the original service's seven operations: api/<tag>/<operationId>.py
# (docs/api.md's table; "index__get" becomes the module index_get).
ORIGINAL_MODULES = {
    "index": "api/home/index_get.py",
    "sign_up": "api/authentication/sign_up_api_v1_auth_sign_up_post.py",
    "sign_in": "api/authentication/sign_in_api_v1_auth_sign_in_post.py",
    "refresh": "api/authentication/refresh_token_api_v1_auth_refresh_token_get.py",
    "add": "api/posts/add_post_api_v1_posts_add_post_post.py",
    "list": "api/posts/get_all_my_post_api_v1_posts_get_my_posts_get.py",
    "delete": "api/posts/delete_my_post_api_v1_posts_delete_my_post_delete.py",
}
OWN_MODULES = {
    "sign_out": "api/authentication/sign_out_api_v1_auth_sign_out_post.py",
    "change_password": "api/authentication/change_password_api_v1_auth_change_password_post.py",
    "delete_account": "api/authentication/delete_account_api_v1_auth_account_delete.py",
    "forgot_password": "api/authentication/forgot_password_api_v1_auth_forgot_password_post.py",
    "reset_password": "api/authentication/reset_password_api_v1_auth_reset_password_post.py",
    "healthz": "api/health/healthz_healthz_get.py",
    "readyz": "api/health/readyz_readyz_get.py",
}
NEW_PASSWORD = "battery staple horse"
RESET_PASSWORD = "a password from the mail"
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]+)")
_NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


def _unavailable(reason: str) -> None:
    """Skip on a developer's machine; in CI the SDK check must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the SDK test (uv sync installs the dev group)")
    pytest.skip(reason)


def _pinned_version() -> str:
    """The exact version pyproject.toml's dev group pins (`openapi-python-client==X`)."""
    dev = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    pins = [spec.split("==", 1)[1] for spec in dev if isinstance(spec, str) and spec.startswith(f"{GENERATOR}==")]
    assert len(pins) == 1, f"pyproject.toml's dev group must pin {GENERATOR} exactly: {dev}"
    return pins[0]


def _generator() -> tuple[str, str]:
    """The generator's console script and the directory of the tools it runs (ruff, for its post-hooks)."""
    bin_dir = str(Path(sys.executable).parent)
    try:
        installed = version(GENERATOR)
    except PackageNotFoundError:
        _unavailable(f"{GENERATOR} is not installed (uv sync)")
    assert installed == _pinned_version(), f"{GENERATOR} {installed} is installed, not the pinned {_pinned_version()}"
    script = shutil.which(GENERATOR, path=bin_dir)
    ruff = shutil.which("ruff", path=bin_dir) or shutil.which("ruff")
    if script is None or ruff is None:
        _unavailable(f"{GENERATOR} or ruff (its post-hooks) is not on PATH beside {sys.executable}")
    assert script is not None and ruff is not None
    return script, os.path.dirname(ruff)


def _generate(spec_path: Path, out: Path) -> None:
    """Run the pinned generator on the document: package `out`, no project metadata, warnings fatal."""
    script, tools = _generator()
    env = {**os.environ, "PATH": os.pathsep.join([tools, os.environ.get("PATH", "")])}
    command = [script, "generate", "--path", str(spec_path), "--output-path", str(out), "--meta", "none"]
    command.append("--fail-on-warning")  # any part of the document it could not turn into code fails
    try:
        result = subprocess.run(
            command, cwd=out.parent, env=env, capture_output=True, text=True, timeout=GENERATE_TIMEOUT, check=False
        )
    except OSError as exc:
        _unavailable(f"{GENERATOR} cannot run here: {exc}")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def live_server(start_server: StartServer, database_url: str, smtp_server: SmtpServer) -> LiveServer:
    """gunicorn (production settings) whose reset mails reach a real SMTP server, so the SDK drives recovery too."""
    return start_server(database_url, **mail_env(smtp_server.port))


@pytest.fixture
def sdk(live_server: LiveServer, tmp_path: Path) -> Iterator[Path]:
    """The SDK generated from the live server's /openapi.json, importable as `posts_api_client`."""
    response = requests.get(f"{live_server.base}/openapi.json", timeout=10)
    assert response.status_code == 200
    spec_path = tmp_path / "openapi.json"
    spec_path.write_bytes(response.content)
    package_dir = tmp_path / "sdk" / PACKAGE
    package_dir.parent.mkdir()
    _generate(spec_path, package_dir)
    sys.path.insert(0, str(package_dir.parent))
    try:
        yield package_dir
    finally:
        sys.path.remove(str(package_dir.parent))
        # The next backend's run generates its own package under the same name.
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(relative_path: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}." + relative_path.removesuffix(".py").replace("/", "."))


def _ok(value: Any, model: type) -> Any:
    """The parsed 200 body, asserting it is the documented model (an error body is a different model)."""
    assert isinstance(value, model), value
    return value


def test_sdk_generated_from_the_live_document_is_the_originals_and_works(
    sdk: Path, live_server: LiveServer, smtp_server: SmtpServer
) -> None:
    _assert_original_modules_that_import(sdk)
    _round_trip(live_server.base, smtp_server)


def _assert_original_modules_that_import(sdk: Path) -> None:
    missing = [path for path in {**ORIGINAL_MODULES, **OWN_MODULES}.values() if not (sdk / path).is_file()]
    assert missing == [], sorted(str(path.relative_to(sdk)) for path in sdk.rglob("*.py"))
    # Importing every module catches names used at definition time (openapi-python-client issue
    # 1451 left `Unset` unimported in a sign-in module); pyflakes catches those used only at call time.
    package = importlib.import_module(PACKAGE)
    modules = [info.name for info in pkgutil.walk_packages(package.__path__, PACKAGE + ".")]
    assert len(modules) > len(ORIGINAL_MODULES)
    for name in modules:
        importlib.import_module(name)
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    check = [ruff, "check", "--isolated", "--no-cache", "--select", "F", str(sdk)]
    result = subprocess.run(check, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _round_trip(base: str, smtp: SmtpServer) -> None:
    """Sign up, sign in (form and JSON), add, list, page, delete, refresh and sign out, all through the SDK.

    Then the operations only this service has: change the password, sign in with it, reset it by
    email, sign in with that one, delete the account.
    """
    client_module = importlib.import_module(f"{PACKAGE}.client")
    models = importlib.import_module(f"{PACKAGE}.models")
    api = {name: _module(path) for name, path in {**ORIGINAL_MODULES, **OWN_MODULES}.items()}
    anonymous = client_module.Client(base_url=base, raise_on_unexpected_status=True)

    assert _ok(api["index"].sync(client=anonymous), models.Root).message

    email = "sdk@example.com"
    body = models.SignUp(email_address=email, password=PASSWORD, confirm_password=PASSWORD)
    signed_up = _ok(api["sign_up"].sync(client=anonymous, body=body), models.UserWithTokens)
    assert signed_up.email_address == email and signed_up.token_type == "bearer"

    # Sign in with the OAuth2 form: the generated function and the original's model.
    form = models.BodySignInApiV1AuthSignInPost(username=email.upper(), password=PASSWORD)
    by_form = _ok(api["sign_in"].sync(client=anonymous, body=form), models.UserWithTokens)
    assert by_form.id == signed_up.id
    # Sign in with JSON: the same generated function, given the JSON model (it picks the content type).
    by_json = _ok(
        api["sign_in"].sync(client=anonymous, body=models.SignInJson(email_address=email, password=PASSWORD)),
        models.UserWithTokens,
    )
    assert by_json.id == signed_up.id

    user = client_module.AuthenticatedClient(base_url=base, token=by_json.access_token, raise_on_unexpected_status=True)
    added = [
        _ok(
            api["add"].sync(client=user, body=models.AddPost(text=f"post {index} \N{GRINNING FACE}")),
            models.PostCreated,
        ).id
        for index in range(5)
    ]
    listing = api["list"].sync(client=user)
    assert [post.id for post in listing] == added[::-1]
    assert listing[0].text == "post 4 \N{GRINNING FACE}" and listing[0].created_at.tzinfo is not None

    # Pages: the generated function takes limit and before; the Link header leads to the next page.
    paged: list[Any] = []
    detailed = api["list"].sync_detailed(client=user, limit=2)
    for _ in range(len(added)):
        assert detailed.status_code == 200
        paged += detailed.parsed
        link = detailed.headers.get("Link")
        if link is None:
            break
        match = _NEXT.match(link)
        assert match, link
        before = user.get_httpx_client().build_request("GET", match[1]).url.params["before"]
        assert before == str(paged[-1].id)
        detailed = api["list"].sync_detailed(client=user, limit=2, before=paged[-1].id)
    assert [post.id for post in paged] == added[::-1]

    deleted = _ok(api["delete"].sync(client=user, post_id=added[1]), models.Deleted)
    assert deleted.status == "post deleted successfully"
    assert _ok(api["delete"].sync(client=user, post_id=added[1]), models.Error).error == "Post not found"
    assert [post.id for post in api["list"].sync(client=user)] == [added[4], added[3], added[2], added[0]]

    refreshed = _ok(api["refresh"].sync(client=anonymous, refresh_token=by_form.refresh_token), models.AccessToken)
    with_refreshed = client_module.AuthenticatedClient(base_url=base, token=refreshed.access_token)
    assert len(api["list"].sync(client=with_refreshed)) == 4

    signed_out = _ok(api["sign_out"].sync(client=anonymous, refresh_token=by_form.refresh_token), models.SignedOut)
    assert signed_out.status == "signed out"
    # Every refresh token issued before the sign-out is refused now, the JSON sign-in's too.
    refused = api["refresh"].sync_detailed(client=anonymous, refresh_token=by_json.refresh_token)
    assert refused.status_code == 401
    assert isinstance(refused.parsed, models.Error)

    assert _ok(api["healthz"].sync(client=anonymous), models.Alive).status == "alive"
    again = _ok(api["sign_in"].sync(client=anonymous, body=form), models.UserWithTokens)
    session = client_module.AuthenticatedClient(base_url=base, token=again.access_token)
    change = models.ChangePassword(current_password=PASSWORD, new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD)
    changed = _ok(api["change_password"].sync(client=session, body=change), models.PasswordChanged)
    assert changed.status == "password changed"
    new_form = models.BodySignInApiV1AuthSignInPost(username=email, password=NEW_PASSWORD)
    _ok(api["sign_in"].sync(client=anonymous, body=new_form), models.UserWithTokens)

    # Recovery: the mail's token resets the password; a token the service never issued is refused.
    asked = api["forgot_password"].sync(client=anonymous, body=models.ForgotPassword(email_address=email))
    assert _ok(asked, models.ResetRequested).status == "If the address has an account, a reset link is on its way."
    part = smtp.wait_for(1, timeout=30)[0].message.get_body(preferencelist=("plain",))
    assert part is not None
    match = _TOKEN.search(str(part.get_content()))
    assert match
    bogus = models.ResetPassword(token="not-issued", new_password=RESET_PASSWORD)
    refused = api["reset_password"].sync_detailed(client=anonymous, body=bogus)
    assert refused.status_code == 400 and isinstance(refused.parsed, models.Error)
    reset = models.ResetPassword(token=match[1], new_password=RESET_PASSWORD, confirm_password=RESET_PASSWORD)
    done = _ok(api["reset_password"].sync(client=anonymous, body=reset), models.PasswordReset)
    assert done.status == "password reset"
    assert api["sign_in"].sync_detailed(client=anonymous, body=new_form).status_code == 401
    reset_form = models.BodySignInApiV1AuthSignInPost(username=email, password=RESET_PASSWORD)
    last = _ok(api["sign_in"].sync(client=anonymous, body=reset_form), models.UserWithTokens)
    session = client_module.AuthenticatedClient(base_url=base, token=last.access_token)
    confirm = models.DeleteAccount(password=RESET_PASSWORD)
    gone = _ok(api["delete_account"].sync(client=session, body=confirm), models.AccountDeleted)
    assert gone.status == "account deleted"
    assert api["sign_in"].sync_detailed(client=anonymous, body=reset_form).status_code == 401
