"""Fixtures of the root-free unit tests."""

from __future__ import annotations

import pytest
from cli_fake import FakeDaemon


@pytest.fixture
def daemon(tmp_path):
    fake = FakeDaemon(str(tmp_path / "boxnet.sock"))
    yield fake
    fake.close()
