"""Center settings are checked at start-up; bearer tokens verify only with a trusted issuer key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ansim.v1 import common_pb2, error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.clock import OffsetClock
from reference_server.config import ConfigError, load_settings
from reference_server.security.devpki import new_key
from reference_server.security.tokens import TokenIssuer, TokenVerifier, public_key_path


@pytest.fixture
def issuer(tmp_path: Path) -> TokenIssuer:
    return TokenIssuer.create("https://idp.example", tmp_path / "idp.key")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_file_env_and_overrides_combine(
    tmp_path: Path, issuer: TokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = public_key_path(tmp_path / "idp.key")
    config = write(
        tmp_path,
        "center.yaml",
        f"center_id: seoul-jongno\ndisplay_name: 종로구\ninsecure_dev: true\n"
        f"tls:\n  client_cert_required_roles: []\ntokens:\n  issuers:\n    https://idp.example: {key}\n",
    )
    monkeypatch.setenv("ANSIM_TIMERS__RENOTIFY_COUNT", "5")
    settings = load_settings(config, listen="127.0.0.1:0")
    assert settings.center_name == "centers/seoul-jongno"
    assert settings.timers.renotify_count == 5
    assert settings.timers.dispatch_ack_deadline == timedelta(seconds=30)
    assert settings.retention.access_records > settings.retention.grants
    assert settings.listen == "127.0.0.1:0"


def test_toml_file_is_read(tmp_path: Path, issuer: TokenIssuer) -> None:
    key = public_key_path(tmp_path / "idp.key")
    config = write(
        tmp_path,
        "center.toml",
        f'center_id = "c1"\ndisplay_name = "C1"\ninsecure_dev = true\n'
        f'[tokens.issuers]\n"https://idp.example" = "{key}"\n',
    )
    assert load_settings(config).center_id == "c1"


def test_unknown_keys_and_missing_tls_are_reported_together(tmp_path: Path) -> None:
    config = write(tmp_path, "c.yaml", "center_id: Bad_Id\ndisplay_name: x\ncolour: blue\n")
    with pytest.raises(ConfigError) as failure:
        load_settings(config)
    message = str(failure.value)
    assert "colour: unknown key" in message and "center_id" in message


def test_tls_is_required_unless_insecure_dev(tmp_path: Path, issuer: TokenIssuer) -> None:
    key = public_key_path(tmp_path / "idp.key")
    with pytest.raises(ConfigError, match=r"tls\.server_cert and tls\.server_key are required"):
        load_settings(None, center_id="c", display_name="c", tokens={"issuers": {"i": key}})


def test_valid_token_names_the_caller(issuer: TokenIssuer) -> None:
    verifier = TokenVerifier({issuer.issuer: issuer.public_key})
    token = issuer.issue(
        "officers/seoul-112/k-1", common_pb2.ROLE_POLICE_OFFICER, agency="agencies/seoul-112"
    )
    caller = verifier.verify(token, cert_fingerprint="ab")
    assert (caller.subject, caller.role, caller.agency, caller.cert_fingerprint) == (
        "officers/seoul-112/k-1",
        common_pb2.ROLE_POLICE_OFFICER,
        "agencies/seoul-112",
        "ab",
    )
    assert caller.role_name == "POLICE_OFFICER"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            lambda i: i.issue(
                "u", common_pb2.ROLE_APP_USER, issued_at=datetime.now(UTC) - timedelta(hours=3)
            ),
            error_pb2.ERROR_REASON_TOKEN_EXPIRED,
        ),
        (
            lambda i: TokenIssuer(i.issuer, new_key()).issue("u", common_pb2.ROLE_APP_USER),
            error_pb2.ERROR_REASON_TOKEN_INVALID,
        ),
        (
            lambda i: i.issue("u", common_pb2.ROLE_APP_USER, extra={"aud": "other"}),
            error_pb2.ERROR_REASON_TOKEN_INVALID,
        ),
        (
            lambda i: i.issue("u", common_pb2.ROLE_APP_USER, extra={"role": "KING"}),
            error_pb2.ERROR_REASON_TOKEN_INVALID,
        ),
        (lambda i: i.issue("u", common_pb2.ROLE_UNSPECIFIED), error_pb2.ERROR_REASON_TOKEN_INVALID),
        (lambda i: "not.a.jwt", error_pb2.ERROR_REASON_TOKEN_INVALID),
    ],
)
def test_bad_tokens_are_refused(issuer: TokenIssuer, make: object, reason: int) -> None:
    verifier = TokenVerifier({issuer.issuer: issuer.public_key})
    with pytest.raises(AnsimError) as failure:
        verifier.verify(make(issuer))  # type: ignore[operator]
    assert failure.value.reason == reason


def test_a_verified_token_is_reused_for_a_minute_but_still_expires(
    issuer: TokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = OffsetClock()
    verifier = TokenVerifier({issuer.issuer: issuer.public_key}, clock, leeway=timedelta(0))
    token = issuer.issue("u", common_pb2.ROLE_APP_USER, ttl=timedelta(seconds=90))
    checks = 0
    real = TokenVerifier._verify_signature

    def counting(self: TokenVerifier, text: str) -> dict[str, object]:
        nonlocal checks
        checks += 1
        return real(self, text)

    monkeypatch.setattr(TokenVerifier, "_verify_signature", counting)
    assert {verifier.verify(token, "a").cert_fingerprint, verifier.verify(token, "b").cert_fingerprint} == {
        "a",
        "b",
    }
    assert checks == 1
    clock.advance(timedelta(seconds=61))  # past the minute: verified again
    verifier.verify(token)
    assert checks == 2
    clock.advance(timedelta(seconds=30))  # past exp, although still cached until exp
    with pytest.raises(AnsimError) as expired:
        verifier.verify(token)
    assert expired.value.reason == error_pb2.ERROR_REASON_TOKEN_EXPIRED


def test_reloading_an_issuer_leaves_its_published_key_untouched(tmp_path: Path) -> None:
    """Centers sharing one issuer key (several per process in ``ansim demo --national``) load it
    while others read the public key: loading must not rewrite that file, and a key written by an
    older run is replaced whole."""
    TokenIssuer.create("ansim-demo", tmp_path / "issuer.key")
    published = public_key_path(tmp_path / "issuer.key")
    before = published.stat()
    again = TokenIssuer.create("ansim-demo", tmp_path / "issuer.key")
    after = published.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    published.write_text("stale", encoding="utf-8")
    TokenIssuer.create("ansim-demo", tmp_path / "issuer.key")
    verifier = TokenVerifier.from_files({"ansim-demo": published}, OffsetClock())
    token = again.issue("users/u-1", common_pb2.ROLE_APP_USER)
    assert verifier.verify(token).subject == "users/u-1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["issuer.key", "issuer.pub.pem"]
