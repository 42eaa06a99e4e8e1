"""The control API for the vendor's test driver: JSON over HTTP on loopback (stdlib only).

``GET /scenario``  what the client should do now, e.g. ``{"step": "raise_sos", "mode": "MODE_TEST",
                   "parent": "centers/harness", …}``; ``{"step": "finished"}`` at the end.
``POST /done``     ``{"step": "<name>", …observations}``: the driver did the step; the body is kept
                   as the driver's report (e.g. ``processed_cursors``, the cursors of the events its
                   client processed, for the duplicate checks [STM-005]).
``POST /fault``    ``{"rpc": "RaiseEmergency"}``: fail the next call of that rpc with UNAVAILABLE once.
``GET /recording`` the calls recorded so far (for debugging a driver).
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from conformance.harness.faults import unavailable
from conformance.harness.recording import Recording
from conformance.harness.scenario import Scenario
from conformance.harness.server import HarnessCenter


class ControlServer:
    def __init__(
        self, host: str, port: int, scenario: Scenario, recording: Recording, center: HarnessCenter
    ) -> None:
        self.scenario = scenario
        self.recording = recording
        self.center = center
        self.loop: asyncio.AbstractEventLoop | None = None
        control = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                value = json.loads(raw or b"{}")
                if not isinstance(value, dict):
                    raise ValueError("the body must be a JSON object")
                return value

            def do_GET(self) -> None:
                if self.path == "/scenario":
                    self._reply(200, control.scenario.describe())
                elif self.path == "/recording":
                    self._reply(200, [c.to_exchange().to_dict() for c in list(control.recording.calls)])
                else:
                    self._reply(404, {"error": f"unknown path {self.path}"})

            def do_POST(self) -> None:
                try:
                    body = self._body()
                except ValueError as error:
                    self._reply(400, {"error": str(error)})
                    return
                if self.path == "/done":
                    step = str(body.get("step", ""))
                    control.recording.reports[step] = body
                    ended = control.scenario.done(step)
                    self._reply(200, {"accepted": ended, "next": control.scenario.describe()})
                elif self.path == "/fault":
                    rpc = str(body.get("rpc", ""))
                    if rpc not in {r.name for r in control.center.rpcs}:
                        self._reply(400, {"error": f"unknown rpc {rpc!r}"})
                        return
                    control.center.armed.setdefault(rpc, []).append(unavailable("armed via POST /fault"))
                    self._reply(200, {"armed": rpc})
                else:
                    self._reply(404, {"error": f"unknown path {self.path}"})

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="harness-control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
