"""The batches in which ECS's rolling update replaces a service's tasks, which the rehearsal's
fleet step follows: the stack's `fleet.rollingUpdate` percentages of the desired count.

ECS keeps at most `maximumPercent` of the desired count running or starting (rounded down) and at
least `minimumHealthyPercent` of it healthy (rounded up). With the stack's defaults, 200 % and
100 %, it starts every new task at once and stops the old ones once the new ones are healthy;
with 100 % and 50 %, it stops half the old tasks to make room for as many new ones. A rehearsal
that replaced one replica at a time would prove a rollout that ECS does not run (and take
longer).

The rehearsal runs fewer replicas than the stack's `desiredCount`, or more: the percentages are
applied to its own replica count. Where their rounding leaves that count no room while the
stack's count has some, the rehearsal starts one new replica at a time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Batch:
    """One step of the rollout: old replicas stopped first, to make room, then new ones started
    side by side."""

    stop_first: int
    start: int


@dataclass(frozen=True)
class RolloutLimits:
    """`fleet.rollingUpdate`'s two percentages of a desired count of replicas."""

    desired: int
    minimum_healthy_percent: int
    maximum_percent: int

    @property
    def running_at_most(self) -> int:
        return self.desired * self.maximum_percent // 100

    @property
    def healthy_at_least(self) -> int:
        return -(-self.desired * self.minimum_healthy_percent // 100)

    def next_batch(self, serving: int, old_left: int, new_left: int) -> Batch:
        """With `serving` replicas in service, `old_left` of them old, and `new_left` new ones
        still to start: ECS stops old tasks down to the minimum healthy and starts new ones up to
        the maximum, both at once. A batch that starts nothing is a rollout ECS cannot make
        (`stuck`)."""
        stop_first = min(old_left, max(0, serving - self.healthy_at_least))
        start = min(self.running_at_most - (serving - stop_first), new_left)
        return Batch(stop_first, max(0, start))

    def rehearsal_batch(self, serving: int, old_left: int, new_left: int) -> Batch:
        """`next_batch`, never one that starts nothing: where this count of replicas is too small
        for the percentages (the stack's `desiredCount` was checked not `stuck`), one new
        replica starts."""
        batch = self.next_batch(serving, old_left, new_left)
        return batch if batch.start else Batch(batch.stop_first, 1)

    @property
    def first_batch(self) -> Batch:
        """The batch with all `desired` old replicas serving."""
        return self.next_batch(self.desired, self.desired, self.desired)

    @property
    def stuck(self) -> bool:
        """Whether ECS can neither start a new task nor stop an old one, with all `desired` old
        tasks serving (one task, at most 150 % and at least 100 %, say)."""
        return not self.first_batch.start

    def description(self) -> str:
        """How the rollout goes, for the fleet step's report: `stuck` limits are this replica
        count's only, one at a time (`rehearsal_batch`)."""
        first = self.first_batch
        if not first.start:
            return (
                f"one at a time (at {self.desired}, the percentages leave no room; at "
                "the stack's desiredCount they do)"
            )
        if first.start >= self.desired and not first.stop_first:
            return "all started at once"
        room = f", each batch after {first.stop_first} old stopped" if first.stop_first else ""
        return f"at most {first.start} started at a time{room}"

    def surplus(self, serving: int) -> int:
        """Old replicas to stop once a batch's new ones serve: ECS runs the desired count."""
        return max(0, serving - self.desired)

    def why_stuck(self) -> str:
        """Why no new task can start, and what to change."""
        return (
            f"ECS could not start a new task: at most {self.running_at_most} may run "
            f"(fleet.rollingUpdate.maximumPercent {self.maximum_percent} % of desiredCount "
            f"{self.desired}, rounded down) and at least {self.healthy_at_least} must stay healthy "
            f"(minimumHealthyPercent {self.minimum_healthy_percent} %, rounded up); raise "
            "maximumPercent or lower minimumHealthyPercent"
        )
