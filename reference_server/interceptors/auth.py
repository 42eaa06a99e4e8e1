"""Authentication and role authorization of every call.

Reads ``authorization: Bearer <jwt>`` from the call metadata, verifies it (TOKEN_MISSING /
TOKEN_INVALID / TOKEN_EXPIRED, all UNAUTHENTICATED), binds the verified :class:`Caller` (with the
fingerprint of the TLS client certificate, if any) to the call's context, and asks the
authorization table whether the caller's role may call the method (PERMISSION_DENIED /
ROLE_NOT_PERMITTED). Roles that must use a client certificate without presenting one get
PERMISSION_DENIED / PEER_NOT_TRUSTED. Public methods (health, reflection, published keys) skip all
of this.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ansim.v1 import error_pb2

from ansim_sdk.errors import AnsimError
from reference_server import policy
from reference_server.interceptors.wrapping import AroundInterceptor, Call, Invoke
from reference_server.security.caller import Caller, reset_caller, set_caller
from reference_server.security.tls import peer_fingerprint
from reference_server.security.tokens import TokenVerifier, role_claim

AUTHORIZATION = "authorization"
BEARER = "bearer "


def bearer_token(metadata: Any) -> str:
    """The bearer token of a call's metadata; AnsimError TOKEN_MISSING / TOKEN_INVALID."""
    values = [value for key, value in (metadata or ()) if key.lower() == AUTHORIZATION]
    if not values:
        raise AnsimError(
            error_pb2.ERROR_REASON_TOKEN_MISSING, "no bearer token: send 'authorization: Bearer <token>'"
        )
    if len(values) > 1:
        raise AnsimError(error_pb2.ERROR_REASON_TOKEN_INVALID, "more than one authorization header")
    value = values[0] if isinstance(values[0], str) else values[0].decode("ascii", "replace")
    if not value.lower().startswith(BEARER) or not value[len(BEARER) :].strip():
        raise AnsimError(
            error_pb2.ERROR_REASON_TOKEN_INVALID, "the authorization header is not 'Bearer <token>'"
        )
    return value[len(BEARER) :].strip()


class AuthInterceptor(AroundInterceptor):
    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        served_roles: Collection[str],
        cert_required_roles: Collection[str] = (),
    ) -> None:
        self._verifier = verifier
        self._served_roles = frozenset(served_roles)
        self._cert_required = frozenset(cert_required_roles)

    def authenticate(self, call: Call) -> Caller:
        token = bearer_token(call.context.invocation_metadata())
        fingerprint = peer_fingerprint(call.context.auth_context())
        caller = self._verifier.verify(token, fingerprint)
        role = role_claim(caller.role)
        if role not in self._served_roles:
            raise AnsimError(
                error_pb2.ERROR_REASON_ROLE_NOT_PERMITTED, f"this center does not serve role {role}"
            )
        if role in self._cert_required and fingerprint is None:
            raise AnsimError(
                error_pb2.ERROR_REASON_PEER_NOT_TRUSTED, f"role {role} must present a TLS client certificate"
            )
        if not policy.is_allowed(call.method, caller.role):
            raise AnsimError(
                error_pb2.ERROR_REASON_ROLE_NOT_PERMITTED, f"role {role} may not call {call.method}"
            )
        return caller

    async def around(self, call: Call, invoke: Invoke) -> Any:
        if policy.is_public(call.method):
            return await invoke()
        caller = self.authenticate(call)
        call.notes["caller"] = caller
        token = set_caller(caller)
        try:
            return await invoke()
        finally:
            reset_caller(token)
