"""The suite's shared recordings and stubbed clients: `shipped_site` records a config once
however its changes are written, and clients of one `stub_client` session keep their Stubbers
apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import shipped_sites
from botocore.stub import Stubber
from stub_clients import stub_client

from pulumi_django.config import StackConfig


def test_a_config_is_recorded_once_however_its_changes_are_written(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded: list[tuple[str, str]] = []

    def record_site(config: StackConfig, stack: str) -> object:
        recorded.append((config.network.egress, stack))
        return object()

    def this_process(_factory: Any, _key: str, compute: Callable[[], object]) -> object:
        return compute()  # the key decides alone: nothing from another worker

    monkeypatch.setattr(shipped_sites, "_RECORDED", {})
    monkeypatch.setattr(shipped_sites, "record_site", record_site)
    monkeypatch.setattr(shipped_sites, "computed_once", this_process)

    prod = shipped_sites.shipped_site(tmp_path_factory, "prod")
    # Its own section again, and prod's own egress: the same config.
    assert shipped_sites.shipped_site(tmp_path_factory, "prod", network={}) is prod
    assert (
        shipped_sites.shipped_site(tmp_path_factory, "prod", network={"egress": "nat-per-az"})
        is prod
    )
    single = shipped_sites.shipped_site(tmp_path_factory, "prod", network={"egress": "single-nat"})
    assert single is not prod
    assert shipped_sites.shipped_site(tmp_path_factory, "dev") not in (prod, single)
    assert recorded == [("nat-per-az", "prod"), ("single-nat", "prod"), ("single-nat", "dev")]


def test_clients_of_the_shared_session_keep_their_stubbers_apart() -> None:
    first, second = stub_client("logs"), stub_client("logs")
    assert first is not second
    with Stubber(first) as stub:
        stub.add_response("describe_log_groups", {"logGroups": [{"logGroupName": "mine"}]})
        with Stubber(second) as other:
            other.add_response("describe_log_groups", {"logGroups": []})
            assert second.describe_log_groups()["logGroups"] == []
            other.assert_no_pending_responses()
        assert first.describe_log_groups()["logGroups"] == [{"logGroupName": "mine"}]
        stub.assert_no_pending_responses()
