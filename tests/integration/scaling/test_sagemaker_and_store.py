"""The SageMaker control adapters and the dimension's optimistic lock, against moto."""

from __future__ import annotations

import pytest

from fleetscaler.aws.sagemaker import describe_endpoint, update_instance_count
from fleetscaler.dal.store import get_store
from fleetscaler.errors import ConcurrentModification, EndpointBusy, UpstreamRejected
from tests.integration.scaling.conftest import ProvisioningSageMaker


def test_describe_reports_status_counts_and_variant(fleet: ProvisioningSageMaker) -> None:
    # Given endpoint-1 created with one instance
    seen = describe_endpoint("endpoint-1")
    # Then its status, counts, variant and modification time come through
    assert (seen.status, seen.current, seen.desired, seen.variant_name) == ("InService", 1, 1, "default")
    assert seen.last_modified_ms is not None


def test_describe_of_a_missing_endpoint_is_not_an_error(fleet: ProvisioningSageMaker) -> None:
    seen = describe_endpoint("endpoint-9")
    assert seen.status == "Missing"
    assert seen.serving == 0


def test_update_moves_to_updating_and_a_busy_endpoint_is_refused(fleet: ProvisioningSageMaker) -> None:
    # When an update is issued / Then the endpoint is Updating towards it
    update_instance_count("endpoint-1", "default", 3)
    seen = describe_endpoint("endpoint-1")
    assert (seen.status, seen.current, seen.desired) == ("Updating", 1, 3)
    # And a second update while it updates is refused as busy (SageMaker's in-progress validation error)
    with pytest.raises(EndpointBusy, match="in-progress"):
        update_instance_count("endpoint-1", "default", 4)


def test_quota_errors_come_out_as_upstream_rejections(fleet: ProvisioningSageMaker) -> None:
    fleet.refuse_next["endpoint-2"] = "ResourceLimitExceeded"
    with pytest.raises(UpstreamRejected) as caught:
        update_instance_count("endpoint-2", "default", 5)
    assert caught.value.code == "ResourceLimitExceeded"
    assert not isinstance(caught.value, EndpointBusy)


def test_dimension_lock_refuses_stale_writers_and_keeps_version_a_string(fleet: ProvisioningSageMaker) -> None:
    # Given the seed dimension, never locked
    store = get_store()
    read = store.get_versioned_dimension()
    assert read is not None and read.lock is None
    # When one writer records a desired capacity
    assert store.update_dimension({"desired_capacity": 5}, None) == 1
    # Then a writer still holding the old read is refused and its value does not land
    with pytest.raises(ConcurrentModification):
        store.update_dimension({"desired_capacity": 7}, None)
    after = store.get_versioned_dimension()
    assert after is not None
    assert (int(after.item.desired_capacity or 0), after.lock, after.item.version) == (5, 1, "1")
    with pytest.raises(ValueError, match=r"not attributes of .* that may be written here"):
        store.update_dimension({"version": "2"}, 1)
