"""``python -m conformance.harness.federation --pki-dir DIR --listen HOST:PORT [--reload 2]
[--recovery-first 3]``: create (or reuse) the harness PKI and print what a TEST deployment needs
to use the harness: the files to trust and, for the reference center, the ``ANSIM_`` environment
(``ansim serve --demo`` takes it without any code or config change)."""

from __future__ import annotations

import argparse
from pathlib import Path

from conformance.harness.federation.pki import DIRECTORY_NAME, FederationPki


def reference_environment(pki_dir: Path, listen: str, reload_s: int, recovery_s: int) -> dict[str, str]:
    pki = FederationPki(pki_dir)
    cert, key, token_key = pki.center_identity()
    return {
        "ANSIM_DIRECTORY_ENDPOINT": listen,
        "ANSIM_FEDERATION__DIRECTORY_SERVER_NAME": DIRECTORY_NAME,
        "ANSIM_FEDERATION__CA_CERT": str(pki.ca_file.resolve()),
        "ANSIM_FEDERATION__CLIENT_CERT": str(cert.resolve()),
        "ANSIM_FEDERATION__CLIENT_KEY": str(key.resolve()),
        "ANSIM_FEDERATION__PEER_TOKEN_KEY": str(token_key.resolve()),
        "ANSIM_FEDERATION__REGISTRY_RELOAD": f"PT{reload_s}S",
        "ANSIM_FEDERATION__RECOVERY_FIRST": f"PT{recovery_s}S",
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m conformance.harness.federation")
    parser.add_argument("--pki-dir", type=Path, required=True)
    parser.add_argument("--listen", required=True, help="HOST:PORT of the harness directory")
    parser.add_argument("--reload", type=int, default=2, help="registry reload of the TEST deployment (s)")
    parser.add_argument("--recovery-first", type=int, default=3, help="first recovery retry (s)")
    args = parser.parse_args()
    for name, value in reference_environment(
        args.pki_dir, args.listen, args.reload, args.recovery_first
    ).items():
        print(f"export {name}={value}")


if __name__ == "__main__":
    main()
