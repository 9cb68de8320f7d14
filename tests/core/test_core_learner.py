"""Each learner on a shared machine gets a state directory and ports of their own, derived from their hub slot."""

from __future__ import annotations

import itertools

import pytest

from lab_services.core import learner
from lab_services.core.errors import BadInputError
from lab_services.core.ports import ALLOCATED_RANGE


def test_no_two_learners_moved_familiar_ports_meet_and_all_stay_below_the_free_range():
    seen: dict[int, int] = {}
    for slot, offset in enumerate(learner.offsets()):
        for port in learner.FAMILIAR_PORTS:
            moved = port + offset
            assert moved < ALLOCATED_RANGE[0], f"slot {slot}: {port} moves to {moved}, inside the free-port range"
            assert moved not in seen, f"slots {seen.get(moved)} and {slot} would both prefer port {moved}"
            seen[moved] = slot


def test_a_classroom_of_sixty_fits_one_machine():
    assert learner.capacity() >= 60


def test_each_learner_gets_a_state_directory_an_offset_and_a_port_slice_of_their_own(tmp_path):
    envs = [learner.learner_environment(f"learner{i}", i, tmp_path) for i in range(learner.capacity())]
    assert len({e["LAB_STATE_DIR"] for e in envs}) == len(envs)
    assert envs[0]["LAB_PORT_OFFSET"] == "0" and envs[0]["LAB_STATE_DIR"] == str(tmp_path / "learner0")
    slices = sorted(tuple(map(int, e["LAB_PORT_RANGE"].split("-"))) for e in envs)
    assert all(high < next_low for (_, high), (next_low, _) in itertools.pairwise(slices)), "slices overlap"
    assert slices[0][0] >= ALLOCATED_RANGE[0] and slices[-1][1] <= ALLOCATED_RANGE[1]


@pytest.mark.parametrize("user", ["../bob", "a/b", "", ".hidden", "x" * 65])
def test_a_name_that_could_leave_the_root_is_refused(user, tmp_path):
    with pytest.raises(BadInputError, match="invalid argument: user"):
        learner.learner_environment(user, 0, tmp_path)


def test_a_slot_past_the_machines_capacity_names_the_way_round(tmp_path):
    with pytest.raises(BadInputError, match=r"invalid argument: slot: .*DockerSpawner"):
        learner.learner_environment("late", learner.capacity(), tmp_path)
