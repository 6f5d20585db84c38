"""Helpers shared by the MPP suites (test_data_payments_mpp*.py): a payer (user, instrument,
session), ProcessPayment with an MPP input, the session's available amount, and reading
or editing a challenge's `request` and a credential's JSON."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

from chain_fixtures import wallet_address

HEADER = "paymentInput.mpp.wwwAuthenticateHeaders[0]"
REQ = f"{HEADER}.request"


@dataclass
class Payer:
    user: str
    instrument: dict
    session_id: str

    @property
    def iid(self) -> str:
        return self.instrument["paymentInstrumentId"]

    @property
    def address(self) -> str:
        return wallet_address(self.instrument)


def pay_mpp(client, wallet, p: Payer, headers, version="1", buyer_pays=None, **kw):
    """ProcessPayment MPP; keyword arguments are top-level members (clientToken)."""
    mpp = {"version": version, "wwwAuthenticateHeaders": headers}
    if buyer_pays is not None:
        mpp["buyerPaysGasFees"] = buyer_pays
    return client.process_payment(userId=p.user, paymentManagerArn=wallet.manager_arn,
                                  paymentSessionId=p.session_id, paymentInstrumentId=p.iid,
                                  paymentType="MPP", paymentInput={"mpp": mpp}, **kw)


def available(client, wallet, p: Payer) -> str:
    s = client.get_payment_session(userId=p.user, paymentManagerArn=wallet.manager_arn,
                                   paymentSessionId=p.session_id)["paymentSession"]
    return s["availableLimits"]["availableSpendAmount"]["value"]


def credential_json(credential: str) -> dict:
    b64 = credential.removeprefix("Payment ")
    return json.loads(base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)))


def request_of(header: str) -> dict:
    raw = re.search(r'request="([^"]+)"', header).group(1)
    return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


def with_request(header: str, request: dict) -> str:
    raw = base64.urlsafe_b64encode(json.dumps(request).encode()).decode().rstrip("=")
    return re.sub(r'request="[^"]+"', f'request="{raw}"', header)


def edited(header: str, **changes) -> str:
    """`header` with its request edited: `a__b=value` sets request[a][b]; None removes it."""
    r = request_of(header)
    for path, value in changes.items():
        target = r
        *parents, leaf = path.split("__")
        for k in parents:
            target = target.setdefault(k, {})
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return with_request(header, r)
