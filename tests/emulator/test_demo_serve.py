"""`demo --serve`: the embedded stack stays up for your own tools, then goes away."""

from __future__ import annotations

import io
import shlex
import threading
import time
from pathlib import Path

from scim_readiness.cli.demo import serve_demo


def test_demo_serve_prints_config_and_env_and_keeps_the_stack_up() -> None:
    import httpx

    from scim_readiness.engine.config_file import load_config

    out, stop, errors = io.StringIO(), threading.Event(), []

    def target() -> None:
        try:
            serve_demo((), out=out, err=io.StringIO(), stop=stop)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while "Ctrl-C" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        text = out.getvalue()
        assert not errors, errors
        config = Path(text.split("Config: ", 1)[1].splitlines()[0])
        env = dict(
            line[len("export ") :].split("=", 1)
            for line in text.splitlines()
            if line.startswith("export ")
        )
        env = {name: shlex.split(value)[0] for name, value in env.items()}
        assert "${SCALEKIT_CLIENT_SECRET}" in config.read_text()  # secrets stay out of the file
        assert {"SCALEKIT_WEBHOOK_SECRET", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"} <= set(env)
        loaded = load_config(config)
        url = loaded.scalekit.environment_url if loaded.scalekit else ""
        import ssl

        context = ssl.create_default_context(cafile=env["REQUESTS_CA_BUNDLE"])
        with httpx.Client(verify=context, trust_env=False) as client:
            token = client.post(
                f"{url}/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": loaded.scalekit.client_id,
                    "client_secret": env["SCALEKIT_CLIENT_SECRET"],
                },
            )
        assert token.status_code == 200  # the stack is up while the command waits
        assert "scim-readiness run -c" in text and "--ca-bundle" in text
        _run_with_the_printed_lines(config, env)
    finally:
        stop.set()
        thread.join(20)
    assert not thread.is_alive()
    assert not config.exists()  # the stack's files go away with it


def _run_with_the_printed_lines(config: Path, printed: dict[str, str]) -> None:
    """The trust lines are enough: `run` trusts the stack (token exchange, gRPC, the app's
    webhook) with them exported and no --ca-bundle."""
    import os
    import subprocess
    import sys

    trust = (
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    )
    env = {k: v for k, v in os.environ.items() if k not in trust}
    env.update(printed, NO_COLOR="1")
    env.pop("SCIM_READINESS_DEBUG", None)
    only = ("--only", "environment", "--only", "webhook-endpoint")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scim_readiness",
            "run",
            "-c",
            str(config),
            *only,
            "--format",
            "plain",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    output = done.stdout + done.stderr
    assert "not trusted" not in output and "Traceback" not in output, output
    assert done.returncode in (0, 1), output
    assert "PASS   environment" in output or "PASS  environment" in output, output
