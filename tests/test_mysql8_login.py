"""MySQL 8's default login (`caching_sha2_password`) without TLS works with the runtime dependencies: pymysql[rsa].

Without TLS, PyMySQL encrypts the password with the server's RSA key, which needs
`cryptography`; issue 27 found the first migration against a MySQL 8 failing for want of it.
The server's side is tests/support/mysql8.py (no MySQL 8 runs here); tests/test_image.py does
the same login from the image's runtime-only virtualenv.
"""

from __future__ import annotations

from collections.abc import Iterator

import pymysql  # type: ignore[import-untyped, unused-ignore]
import pytest

from tests.support.mysql8 import Mysql8Login

USER = "posts"
PASSWORD = "Mysql8-pa55word"


@pytest.fixture
def mysql8() -> Iterator[Mysql8Login]:
    server = Mysql8Login(USER, PASSWORD)
    yield server
    server.close()


def test_the_driver_logs_in_with_caching_sha2_password_full_authentication_without_tls(mysql8: Mysql8Login) -> None:
    connection = pymysql.connect(
        host="127.0.0.1", port=mysql8.port, user=USER, password=PASSWORD, database="posts", connect_timeout=5
    )
    try:
        assert connection.open
    finally:
        connection.close()
    assert mysql8.logins == [True]


def test_the_stand_in_refuses_a_wrong_password(mysql8: Mysql8Login) -> None:
    """The control: the server side really checks what the driver encrypted."""
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(host="127.0.0.1", port=mysql8.port, user=USER, password="wrong-pa55word", connect_timeout=5)
    assert refused.value.args[0] == 1045
    assert mysql8.logins == [False]
