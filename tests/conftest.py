"""Shared test set-up: no network, one torch thread per worker, a CLI runner."""

from __future__ import annotations

import os
import socket

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MPLBACKEND", "Agg")

import tempfile  # noqa: E402

# verified-file records (chorus.verified) of this run only, never the user's cache
os.environ["CHORUS_CACHE_DIR"] = tempfile.mkdtemp(prefix="chorus-test-cache-")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost", "0.0.0.0"}
_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if host not in _LOCAL_HOSTS and not str(host).startswith("127."):
            raise RuntimeError(f"tests must not use the network (tried to reach {address!r})")
    return _real_connect(self, address)


socket.socket.connect = _guarded_connect


@pytest.fixture
def run_cli():
    """Invoke the chorus CLI in-process: ``result = run_cli("encoders")``."""
    from typer.testing import CliRunner

    from chorus.cli.main import build_app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(build_app(), [str(a) for a in args], catch_exceptions=False)

    return invoke
