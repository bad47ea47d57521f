"""MySQL 8's default login, `caching_sha2_password` without TLS, served on 127.0.0.1 for the driver to go through.

No MySQL 8 runs here (Debian ships MariaDB, which has no `caching_sha2_password`), so this
serves the server's side of the login exactly as MySQL 8 documents it for an account whose
hash is not cached yet (the first login after a restart, every login on a new server): the
greeting names `caching_sha2_password`; the client's fast-auth scramble is answered "perform
full authentication"; a client without TLS asks for the server's RSA public key and sends the
password encrypted with it (RSA-OAEP, SHA-1), XORed with the greeting's nonce; the server
decrypts it and answers OK only when it is the account's password. After the login every query
(PyMySQL's `SET AUTOCOMMIT`) is answered OK, and COM_QUIT closes. That is all PyMySQL's
`connect()` needs; it is the part where PyMySQL needs `cryptography` (it raises "'cryptography'
package is required for sha256_password or caching_sha2_password" without it).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["Mysql8Login"]

PLUGIN = b"caching_sha2_password"
# CLIENT_LONG_PASSWORD | FOUND_ROWS | LONG_FLAG | CONNECT_WITH_DB | PROTOCOL_41 | TRANSACTIONS |
# SECURE_CONNECTION | MULTI_RESULTS | PLUGIN_AUTH | PLUGIN_AUTH_LENENC_CLIENT_DATA; no CLIENT_SSL.
CAPABILITIES = 0x1 | 0x2 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x20000 | 0x80000 | 0x200000
UTF8MB4 = 255
ACCESS_DENIED = 1045
MORE_DATA = 0x01
PERFORM_FULL_AUTHENTICATION = 0x04
REQUEST_PUBLIC_KEY = 0x02
COM_QUIT = 0x01


class Mysql8Login:
    """A listener on 127.0.0.1 that logs one account in the way MySQL 8 does without TLS; see the module doc."""

    def __init__(self, user: str, password: str) -> None:
        """Listen on a free port and serve each connection in a daemon thread until :meth:`close`."""
        self.user = user.encode()
        self.password = password.encode()
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_pem = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.logins: list[bool] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError, ValueError, struct.error):
            conn.settimeout(10)
            nonce = os.urandom(20).replace(b"\0", b"\1")
            _send(conn, 0, _greeting(nonce))
            seq, response = _receive(conn)
            user, _scramble = _parse_handshake_response(response)
            _send(conn, seq + 1, bytes([MORE_DATA, PERFORM_FULL_AUTHENTICATION]))
            seq, request = _receive(conn)
            if request != bytes([REQUEST_PUBLIC_KEY]):
                raise ValueError("the client did not ask for the public key")
            _send(conn, seq + 1, bytes([MORE_DATA]) + self._public_pem)
            seq, encrypted = _receive(conn)
            oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
            xored = self._key.decrypt(encrypted, oaep)
            password = bytes(byte ^ nonce[i % len(nonce)] for i, byte in enumerate(xored)).rstrip(b"\0")
            accepted = user == self.user and password == self.password
            self.logins.append(accepted)
            if not accepted:
                message = b"#28000Access denied for user"
                _send(conn, seq + 1, b"\xff" + struct.pack("<H", ACCESS_DENIED) + message)
                return
            _send(conn, seq + 1, _ok())
            while True:
                _, command = _receive(conn)
                if not command or command[0] == COM_QUIT:
                    return
                _send(conn, 1, _ok())


def _greeting(nonce: bytes) -> bytes:
    """Protocol::HandshakeV10 offering caching_sha2_password, without CLIENT_SSL."""
    return (
        b"\x0a8.4.0-stand-in\0"
        + struct.pack("<I", 1)
        + nonce[:8]
        + b"\0"
        + struct.pack("<H", CAPABILITIES & 0xFFFF)
        + bytes([UTF8MB4])
        + struct.pack("<H", 2)  # SERVER_STATUS_AUTOCOMMIT
        + struct.pack("<H", CAPABILITIES >> 16)
        + bytes([len(nonce) + 1])
        + b"\0" * 10
        + nonce[8:]
        + b"\0"
        + PLUGIN
        + b"\0"
    )


def _parse_handshake_response(data: bytes) -> tuple[bytes, bytes]:
    """The user name and the auth response of Protocol::HandshakeResponse41."""
    rest = data[32:]  # capabilities, max packet size, charset, 23 reserved bytes
    user, _, rest = rest.partition(b"\0")
    length = rest[0]  # a length-encoded integer below 251: one byte
    return user, rest[1 : 1 + length]


def _ok() -> bytes:
    return b"\x00\x00\x00" + struct.pack("<HH", 2, 0)


def _send(conn: socket.socket, seq: int, payload: bytes) -> None:
    conn.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload)


def _receive(conn: socket.socket) -> tuple[int, bytes]:
    head = _exactly(conn, 4)
    length = int.from_bytes(head[:3], "little")
    return head[3], _exactly(conn, length)


def _exactly(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise ValueError("connection closed")
        data += chunk
    return data
