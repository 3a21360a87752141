"""How the `data-model` reconciliation scales: 1k, 10k and 100k directory users.

For each size the emulator (Scalekit) runs in this process and the reference app (with the
same users, mirrored into its database) in a process of its own, as the two would on
different machines; the measured work runs in fresh child processes so their peak RSS is
their own:

* ``raw``: the Scalekit SDK alone paging the whole directory (30 users per call, with the
  user detail), the floor any reconciliation pays;
* ``reconcile``: the whole `data-model` check through the runner (SDK paging through the
  gateway, the app's users through the HTTP probe, the streaming join, the findings);
* ``idle``: a child that only imports the SDK and the project, the RSS floor.

Run: ``python bench/reconcile_bench.py`` (``--sizes 1000,10000`` for a quicker run).
Prints one table and the ratios; ``--json`` prints the raw figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


# -- children ----------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    # VmHWM belongs to this process's own address space; ru_maxrss would also count the
    # parent's pages at fork time (it survives exec on Linux).
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_idle(_: dict[str, Any]) -> dict[str, Any]:
    import scalekit  # noqa: F401
    import scim_readiness.checks.data_model  # noqa: F401

    import scim_readiness.clients.scalekit  # noqa: F401
    import scim_readiness.probe  # noqa: F401
    import scim_readiness.runner  # noqa: F401

    return {"wall_s": 0.0, "peak_rss_mb": _peak_rss_mb()}


def child_raw(target: dict[str, Any]) -> dict[str, Any]:
    from scalekit import ScalekitClient
    from scalekit.v1.directories import directories_pb2 as dpb

    client = ScalekitClient(target["env_url"], target["client_id"], target["client_secret"])
    stub = client.directory.directory_service.ListDirectoryUsers
    started = time.perf_counter()
    token, users, calls = "", 0, 0
    while True:
        request = dpb.ListDirectoryUsersRequest(
            organization_id=target["organization_id"],
            directory_id=target["directory_id"],
            page_size=30,
            page_token=token,
            include_detail=True,
        )
        response, _ = client.core_client.grpc_exec(stub.with_call, request)
        users += len(response.users)
        calls += 1
        token = response.next_page_token
        if not token:
            break
    wall = time.perf_counter() - started
    return {"wall_s": wall, "peak_rss_mb": _peak_rss_mb(), "users": users, "calls": calls}


def child_gateway(target: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    from pydantic import SecretStr

    from scim_readiness.clients.scalekit import connect
    from scim_readiness.config import ScalekitSection
    from scim_readiness.context import TlsSettings

    section = ScalekitSection(
        environment_url=target["env_url"],
        client_id=target["client_id"],
        client_secret=SecretStr(target["client_secret"]),
        timeout_s=30,
    )

    async def page_all() -> tuple[float, int]:
        gateway = await connect(section, TlsSettings(ca_bundle=target["ca_path"]))
        started = time.perf_counter()
        users = 0
        pages = gateway.iter_directory_users(target["organization_id"], target["directory_id"])
        async for page in pages:
            users += len(page)
        wall = time.perf_counter() - started
        await gateway.aclose()
        return wall, users

    wall, users = asyncio.run(page_all())
    return {"wall_s": wall, "peak_rss_mb": _peak_rss_mb(), "users": users}


def child_probe(target: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    from scim_readiness.config import ProbeSection
    from scim_readiness.context import TlsSettings
    from scim_readiness.probe import build_probe

    section = ProbeSection.model_validate(
        {
            "kind": "http",
            "http": {
                "list_users": target["list_users"],
                "headers": {"Authorization": target["probe_auth"]},
            },
        }
    )

    async def list_all() -> tuple[float, int]:
        probe = build_probe(section, TlsSettings(ca_bundle=target["ca_path"]))
        started = time.perf_counter()
        users = 0
        async for _ in probe.list_users():
            users += 1
        wall = time.perf_counter() - started
        await probe.aclose()
        return wall, users

    wall, users = asyncio.run(list_all())
    return {"wall_s": wall, "peak_rss_mb": _peak_rss_mb(), "users": users}


def child_reconcile(target: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    import scalekit  # noqa: F401 - imported before the clock starts, as in child_raw
    import scim_readiness.checks.data_model  # noqa: F401

    from scim_readiness.config import Config
    from scim_readiness.runner import RunOptions, run_suite

    config = Config.model_validate(
        {
            "scalekit": {
                "environment_url": target["env_url"],
                "client_id": target["client_id"],
                "client_secret": target["client_secret"],
                "organization_id": target["organization_id"],
                "directory_id": target["directory_id"],
                "expect": "development",
                "timeout_s": 30,
            },
            "probe": {
                "kind": "http",
                "http": {
                    "list_users": target["list_users"],
                    "headers": {"Authorization": target["probe_auth"]},
                },
            },
            "roles": {"map": {"Engineering": "editor", "Admins": "admin"}},
            "checks": {"timeout_s": 1800, "data-model": {"timeout_s": 1800}},
            "ledger_path": str(Path(tempfile.gettempdir()) / "reconcile-bench-ledger.jsonl"),
        }
    )
    options = RunOptions(only=("data-model",), ca_bundle=target["ca_path"])
    started = time.perf_counter()
    if os.environ.get("RECONCILE_BENCH_PROFILE"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        report = profiler.runcall(asyncio.run, run_suite(config, options))
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    else:
        report = asyncio.run(run_suite(config, options))
    wall = time.perf_counter() - started
    (check,) = report.checks
    return {
        "wall_s": wall,
        "peak_rss_mb": _peak_rss_mb(),
        "status": check.status.value,
        "findings": [f"{f.status.value} {f.title}" for f in check.findings],
        "metrics": dict(check.metrics),
    }


def serve_app_process(spec: dict[str, Any]) -> None:
    """The reference app in a process of its own (as it would run beside a real Scalekit):
    prints its list URL, serves until stdin closes."""
    from scim_readiness.sampleapp import AppSettings, serve_app
    from scim_readiness.tls_ca import ServerCert

    cert = ServerCert(
        Path(spec["cert_path"]).read_bytes(),
        Path(spec["key_path"]).read_bytes(),
        Path(spec["cert_path"]),
        Path(spec["key_path"]),
    )
    settings = AppSettings(
        webhook_secret=spec["webhook_secret"],
        probe_token=spec["probe_token"],
        tenant_by_org=spec["tenant_by_org"],
        db_path=Path(spec["db_path"]),
    )
    with serve_app(settings, cert) as app:
        print(json.dumps({"list_users": app.probe["list_users"]}), flush=True)
        sys.stdin.read()


CHILDREN = {
    "idle": child_idle,
    "raw": child_raw,
    "gateway": child_gateway,
    "probe": child_probe,
    "reconcile": child_reconcile,
}


# -- the driver -------------------------------------------------------------------------------


def run_child(mode: str, target: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    env["REQUESTS_CA_BUNDLE"] = target["ca_path"]
    env["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = target["ca_path"]
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    done = subprocess.run(
        [sys.executable, str(HERE), "--child", mode],
        input=json.dumps(target),
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if os.environ.get("RECONCILE_BENCH_PROFILE"):
        print(done.stderr, file=sys.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(size: int) -> dict[str, Any]:
    import base64
    import secrets

    from scim_readiness.emulator import default_seed, process_ca, start_emulator, trust_env
    from scim_readiness.sampleapp.store import NewUser, Store

    ca = process_ca()
    trust_env(ca.ca_path)
    workdir = Path(tempfile.mkdtemp(prefix="reconcile-bench-"))
    with start_emulator(default_seed(), delivery_delay_scale=0.001) as emu:
        directory = emu.state.directory(emu.directory_id)
        emu.generate_users(n=size - len(directory.users))
        # The app's database, filled as if every user had been provisioned.
        db_path = workdir / "app.sqlite3"
        store = Store(db_path)
        store.bulk_insert_users(
            NewUser(
                u.id,
                emu.organization_id,
                u.email,
                u.name,
                u.active,
                tuple(directory.roles_of(u)),
                emu.organization_external_id,
                {},
            )
            for u in list(directory.users.values())
        )
        store.close()
        cert = ca.issue("127.0.0.1", "localhost")
        probe_token = secrets.token_urlsafe(16)
        spec = {
            "cert_path": str(cert.cert_path),
            "key_path": str(cert.key_path),
            "webhook_secret": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
            "probe_token": probe_token,
            "tenant_by_org": {emu.organization_id: emu.organization_external_id},
            "db_path": str(db_path),
        }
        app = subprocess.Popen(
            [sys.executable, str(HERE), "--serve-app"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert app.stdin is not None and app.stdout is not None
            app.stdin.write(json.dumps(spec) + "\n")
            app.stdin.flush()
            started = json.loads(app.stdout.readline())
            target = {
                "env_url": emu.env_url,
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
                "organization_id": emu.organization_id,
                "directory_id": emu.directory_id,
                "ca_path": str(ca.ca_path),
                "list_users": started["list_users"],
                "probe_auth": f"Bearer {probe_token}",
            }
            return {
                "users": size,
                "idle": run_child("idle", target),
                "raw": run_child("raw", target),
                "gateway": run_child("gateway", target),
                "probe": run_child("probe", target),
                "reconcile": run_child("reconcile", target),
            }
        finally:
            if app.stdin is not None:
                app.stdin.close()
            app.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--serve-app", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_app:
        serve_app_process(json.loads(sys.stdin.readline()))
        return 0
    if args.child:
        print(json.dumps(CHILDREN[args.child](json.loads(sys.stdin.read()))))
        return 0
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"measuring {size:,} users …", file=sys.stderr, flush=True)
        rows.append(measure(size))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = (
        f"{'users':>8}  {'SDK paging':>10}  {'gateway':>8}  {'app probe':>9}  {'reconcile':>9}  "
        f"{'ratio':>5}  "
        f"{'idle RSS':>8}  {'SDK RSS':>8}  {'reconcile RSS':>13}  {'peak waiting':>12}  status"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        raw, gw, rec, idle = row["raw"], row["gateway"], row["reconcile"], row["idle"]
        print(
            f"{row['users']:>8,}  {raw['wall_s']:>9.2f}s  {gw['wall_s']:>7.2f}s  "
            f"{row['probe']['wall_s']:>8.2f}s  "
            f"{rec['wall_s']:>8.2f}s  {rec['wall_s'] / raw['wall_s']:>4.2f}x  "
            f"{idle['peak_rss_mb']:>6.0f}MB  {raw['peak_rss_mb']:>6.0f}MB  "
            f"{rec['peak_rss_mb']:>11.0f}MB  "
            f"{rec['metrics'].get('peak_waiting_records', '?'):>12}  {rec['status']}"
        )
    print(
        "\nSDK paging = the SDK alone paging the directory (30 per call, with user detail); "
        "gateway = the same through the project's Scalekit gateway (views, bounded calls); "
        "app probe = listing the app's users through the HTTP probe alone; "
        "reconcile = the whole data-model check (directory and app streams, join, findings); "
        "ratio = reconcile / SDK paging. RSS = peak resident set of the measuring process "
        "(idle = imports only)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
