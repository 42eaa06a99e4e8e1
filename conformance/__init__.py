"""The Ansim Interop conformance suite: the tool a vendor runs to prove that its implementation
interoperates.

Service test cases import their whole API from here::

    from conformance import CaseContext, case, expect_error, expect_ok

See conformance/README.md for how to write a case.
"""

from conformance.context import CaseContext
from conformance.expect import check, expect_error, expect_ok
from conformance.registry import ConformanceFailure, case

__all__ = ["CaseContext", "ConformanceFailure", "case", "check", "expect_error", "expect_ok"]
