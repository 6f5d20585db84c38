"""A local OpenID issuer for the CUSTOM_JWT tests: discovery + JWKS served on 127.0.0.1
(RSA, EC and Ed25519 keys, rotation, going down), tokens signed with PyJWT. Loaded as a
pytest plugin (`pytest_plugins = ["jwt_fixtures"]`) for the `issuer` fixture; `Issuer`,
`Realm` and `b64url` are importable."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Realm:
    """One issuer at http://127.0.0.1:<port>/<name>: its signing keys by kid."""
    name: str
    base: str
    keys: dict[str, tuple[Any, str]] = field(default_factory=dict)  # kid -> (key, alg)
    down: bool = False
    jwks_fetches: int = 0

    @property
    def issuer(self) -> str:
        return f"{self.base}/{self.name}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def add_rsa(self, kid: str, alg: str = "RS256") -> str:
        self.keys[kid] = (rsa.generate_private_key(public_exponent=65537, key_size=2048), alg)
        return kid

    def add_ec(self, kid: str, curve=None, alg: str = "ES256") -> str:
        self.keys[kid] = (ec.generate_private_key(curve or ec.SECP256R1()), alg)
        return kid

    def add_ed(self, kid: str) -> str:
        self.keys[kid] = (ed25519.Ed25519PrivateKey.generate(), "EdDSA")
        return kid

    def jwks(self) -> dict:
        out = []
        for kid, (key, alg) in self.keys.items():
            pub = key.public_key()
            if alg.startswith(("RS", "PS")):
                jwk = RSAAlgorithm.to_jwk(pub, as_dict=True)
            elif alg.startswith("ES"):
                jwk = ECAlgorithm.to_jwk(pub, as_dict=True)
            else:
                jwk = OKPAlgorithm.to_jwk(pub, as_dict=True)
            jwk.update({"kid": kid, "use": "sig"})
            out.append(jwk)
        return {"keys": out}

    def claims(self, sub: str | None = "alice", **extra: Any) -> dict:
        now = int(time.time())
        c = {"iss": self.issuer, "sub": sub, "iat": now, "exp": now + 300}
        c.update(extra)
        return {k: v for k, v in c.items() if v is not None}

    def token(self, sub: str | None = "alice", kid: str | None = None, alg: str | None = None,
              key: Any = None, **extra: Any) -> str:
        kid = kid or next(iter(self.keys))
        own_key, own_alg = self.keys.get(kid, (None, "RS256"))
        return pyjwt.encode(self.claims(sub, **extra), key or own_key,
                            algorithm=alg or own_alg, headers={"kid": kid})


class Issuer:
    """A small OpenID issuer on 127.0.0.1 serving several realms' discovery documents and
    JWKS; stopped by the fixture that started it."""

    def __init__(self) -> None:
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                parts = self.path.strip("/").split("/", 1)
                realm = issuer.realms.get(parts[0])
                if realm is None or len(parts) != 2:
                    return self._send(404, {"error": "not found"})
                if realm.down:
                    return self._send(503, {"error": "down"})
                if parts[1] == ".well-known/openid-configuration":
                    return self._send(200, {"issuer": realm.issuer,
                                            "jwks_uri": f"{realm.issuer}/jwks.json"})
                if parts[1] == "jwks.json":
                    realm.jwks_fetches += 1
                    return self._send(200, realm.jwks())
                return self._send(404, {"error": "not found"})

            def _send(self, status: int, doc: dict) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.realms: dict[str, Realm] = {}
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def realm(self, prefix: str = "realm") -> Realm:
        r = Realm(f"{prefix}-{uuid.uuid4().hex[:8]}", self.base)
        self.realms[r.name] = r
        return r

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def issuer():
    i = Issuer()
    try:
        yield i
    finally:
        i.stop()
