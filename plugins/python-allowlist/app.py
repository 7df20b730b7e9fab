"""python-allowlist: the allow-clients plugin in Python, built with componentize-py.

Configuration: clients = ["abc123", ...]
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import (
    CertificateTemplate,
    Decision_Allow,
    Decision_Deny,
    SignedCertificate,
    SigningRequest,
)

_clients: set[str] = set()


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        global _clients
        try:
            parsed = json.loads(config)
            clients = parsed["clients"]
        except (ValueError, KeyError, TypeError) as error:
            raise Err(f"invalid plugin configuration: {error}")
        if not isinstance(clients, list) or not all(isinstance(c, str) for c in clients):
            raise Err("clients must be a list of strings")
        _clients = set(clients)

    def authorize(self, request: SigningRequest):
        if request.client_hash in _clients:
            return Decision_Allow()
        host.log(host.LogLevel.INFO, f"denied {request.client_hash}")
        return Decision_Deny(f"client {request.client_hash} is not on the allowlist")

    def presign(self, request: SigningRequest, template: CertificateTemplate) -> CertificateTemplate:
        return template

    def postsign(self, certificate: SignedCertificate) -> None:
        return None
