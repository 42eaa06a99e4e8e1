"""``ansim demo --national``: one real center per municipality (250), random SOS across the country,
each checked against point-in-polygon ground truth; routing and end-to-end latency reported.

Every center is a complete reference center (its own gRPC server, embedded store, certificate pair
from the cluster's development CA, 112/119 agencies and federation engine); several share a host
process (:mod:`.multihost`) so memory stays reasonable, but all traffic between centers, and with
the national directory (its own process), is real gRPC over (mutual) TLS. The directory holds one
entry per center: its municipality's real 2018 boundary, its endpoint and certificate pins.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from ansim.v1 import common_pb2, directory_pb2, directory_pb2_grpc, emergency_pb2_grpc
from grpc import aio
from rich.console import Console

from reference_server.demo.cluster import Cluster, Process
from reference_server.demo.console import tls_channel, token
from reference_server.demo.entries import entry, municipalities
from reference_server.demo.hosts import Host, free_ports, rss_bytes
from reference_server.demo.national_report import Figures, print_report
from reference_server.demo.national_sos import (
    Outcome,
    Simulator,
    Sos,
    center_id,
    fire_agency,
    plan,
    police_agency,
)
from reference_server.domain.directory.geometry import geometry_area

#: SOS in flight at once (raise → checked at the responsible center).
CONCURRENCY = 8
#: How often each center reloads its registry from the directory (incremental, DIR-021). Every
#: entry is registered before the centers start, so this only matters if a first load failed.
REGISTRY_RELOAD_S = 10


@dataclass
class National:
    cluster: Cluster
    codes: list[str]
    directory: Process | None = None
    hosts: list[Host] = field(default_factory=list)
    channels: dict[str, aio.Channel] = field(default_factory=dict)
    #: statistics code → (TLS, mutual-TLS) listen address, chosen before the centers start so
    #: that the directory knows every center before any of them loads its registry.
    addresses: dict[str, tuple[str, str]] = field(default_factory=dict)

    def config(self, code: str) -> Path:
        assert self.directory is not None
        name = municipalities()[code].name
        path = self.cluster.config(
            center_id(code),
            f"{name} 스마트도시통합센터",
            directory=self.directory.mtls_address,
            agencies=[
                {"name": police_agency(code), "kind": "POLICE_112"},
                {"name": fire_agency(code), "kind": "FIRE_119"},
            ],
        )
        settings: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        tls, mtls = self.addresses[code]
        settings["listen"], settings["tls"]["mtls_listen"] = tls, mtls
        settings["federation"]["registry_reload"] = REGISTRY_RELOAD_S
        path.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
        return path

    async def start_directory(self) -> None:
        self.directory = self.cluster.launch(
            "directory", self.cluster.config("directory", "국가 안심 디렉터리", role="directory")
        )
        await self.directory.wait_ready()
        ports = iter(free_ports(2 * len(self.codes)))
        for code in self.codes:
            self.addresses[code] = (f"127.0.0.1:{next(ports)}", f"127.0.0.1:{next(ports)}")

    async def start_centers(self, per_process: int) -> None:
        configs = [self.config(code) for code in self.codes]
        for number, first in enumerate(range(0, len(configs), per_process)):
            log = self.cluster.root / f"host-{number}.log"
            self.hosts.append(Host.launch(f"host-{number}", configs[first : first + per_process], log))
        await asyncio.gather(*(host.wait_ready() for host in self.hosts))
        announced = {name: (a.tls, a.mtls) for host in self.hosts for name, a in host.centers.items()}
        planned = {f"centers/{center_id(code)}": address for code, address in self.addresses.items()}
        if announced != planned:
            raise RuntimeError("the centers do not listen where the directory says they do")

    async def register(self) -> None:
        assert self.directory is not None
        channel = tls_channel(
            self.cluster.pki.ca_cert, self.directory.address, self.cluster.certs_for("directory").server_name
        )
        stub: Any = directory_pb2_grpc.DirectoryServiceStub(channel)
        admin = token(self.cluster, common_pb2.ROLE_DIRECTORY_ADMIN, "admins/national")
        everything = municipalities()
        for code in self.codes:
            certs = self.cluster.certs_for(center_id(code))
            municipality = everything[code]
            new = entry(
                f"centers/{center_id(code)}",
                municipality.name[:100],
                (municipality.name_eng or code)[:100],
                geometry_area(municipality.geometry),
                self.addresses[code][1],
                certs.server_name,
                certs.fingerprints(),
                municipalities_=[common_pb2.AdministrativeCodes(statistics_code=code)],
                police=f"{center_id(code)}-112",
                fire=f"{center_id(code)}-119",
            )
            await stub.CreateCenter(
                directory_pb2.CreateCenterRequest(center=new, request_id=str(uuid.uuid4())), metadata=admin
            )
        # The directory indexes the service areas on its first resolution; warm it up before the
        # centers' routing calls (2 s deadline) meet that one-off cost.
        first = municipalities()[self.codes[0]].geometry.representative_point()
        location = common_pb2.Location(latitude=first.y, longitude=first.x, radius_m=10.0)
        location.fix_time.GetCurrentTime()
        await stub.ResolveCenter(
            directory_pb2.ResolveCenterRequest(location=location, service="sos"), metadata=admin, timeout=60
        )
        await channel.close(None)

    def emergency_stub(self, code: str) -> Any:
        name = center_id(code)
        if name not in self.channels:
            address = self.addresses[code][0]
            self.channels[name] = tls_channel(
                self.cluster.pki.ca_cert, address, self.cluster.certs_for(name).server_name
            )
        return emergency_pb2_grpc.EmergencyServiceStub(self.channels[name])

    def simulator(self) -> Simulator:
        operators = {
            code: token(
                self.cluster,
                common_pb2.ROLE_CENTER_OPERATOR,
                f"operators/{center_id(code)}",
                center=f"centers/{center_id(code)}",
            )
            for code in self.codes
        }
        return Simulator(
            self.emergency_stub,
            lambda subject: token(self.cluster, common_pb2.ROLE_APP_USER, subject),
            operators.__getitem__,
        )

    def rss(self) -> int:
        return sum(host.rss_bytes() for host in self.hosts)

    def directory_rss(self) -> int:
        return rss_bytes(self.directory.popen.pid) if self.directory is not None else 0

    async def stop(self) -> None:
        for channel in self.channels.values():
            await channel.close(None)
        for host in self.hosts:
            host.terminate()
        for host in self.hosts:
            host.stop()
        self.cluster.stop_all()


def choose_codes(limit: int | None, seed: int) -> list[str]:
    """Every municipality, or a seeded random subset of ``limit`` of them (sorted)."""
    codes = sorted(municipalities())
    if limit is None or limit >= len(codes):
        return codes
    rng = np.random.default_rng(seed)
    return sorted(codes[int(i)] for i in rng.choice(len(codes), size=limit, replace=False))


async def run_national(
    console: Console,
    root: Path,
    count: int,
    *,
    per_process: int = 50,
    limit: int | None = None,
    seed: int = 2026,
) -> int:
    codes = choose_codes(limit, seed)
    national = National(Cluster.create(root), codes)
    figures = Figures(centers=len(codes), processes=-(-len(codes) // per_process))
    try:
        began = time.monotonic()
        await national.start_directory()
        registering = time.monotonic()
        await national.register()
        figures.register_s = time.monotonic() - registering
        await national.start_centers(per_process)
        figures.startup_s = time.monotonic() - began - figures.register_s
        figures.rss_bytes = national.rss()
        simulator = national.simulator()
        planned = plan(municipalities(), codes, count, seed)
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one(sos: Sos) -> Outcome:
            async with semaphore:
                return await simulator.run(sos)

        began = time.monotonic()
        outcomes = await asyncio.gather(*(one(sos) for sos in planned))
        figures.traffic_s = time.monotonic() - began
        figures.rss_after_bytes = national.rss()
        figures.directory_rss_bytes = national.directory_rss()
    finally:
        await national.stop()
    print_report(console, figures, outcomes)
    return 0 if outcomes and all(o.correct for o in outcomes) else 1
