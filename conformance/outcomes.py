"""What a test case raises to end with a verdict other than pass."""

from __future__ import annotations

from conformance.recorder import Exchange


class ConformanceFailure(Exception):
    """The target broke a requirement: verdict FAIL. ``exchange`` is the wire exchange that shows it
    (the runner attaches the case's last exchange when it is None)."""

    def __init__(self, message: str, exchange: Exchange | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exchange = exchange


class CaseSkipped(Exception):
    """The case cannot run with this declaration (e.g. it needs a test issuer): verdict SKIP.

    Unlike a skip for an undeclared optional feature, this skip keeps a MUST case's profile from
    passing: the requirement was not shown to hold.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CaseNotApplicable(Exception):
    """The requirement the case tests does not apply to this target, as its declaration describes it
    (e.g. a rule of the insecure development mode against a TLS target): verdict NOT_APPLICABLE,
    which, like a profile that is not declared, neither passes nor holds back a profile."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
