"""`manage.py run_scheduler [--every SECONDS]`: enqueues every periodic job (bigfoot/jobs.py)
at start and then every SECONDS, until SIGTERM. Run one at most: two schedulers would enqueue
each periodic job twice."""

import signal
import time
from types import FrameType
from typing import Any

from bigfoot import jobs
from django.core.management.base import BaseCommand, CommandError, CommandParser

DEFAULT_EVERY_SECONDS = 60.0
TICK_SECONDS = 0.2


class Command(BaseCommand):
    help = "Enqueues the periodic jobs every --every seconds until SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every",
            type=float,
            default=DEFAULT_EVERY_SECONDS,
            help=f"seconds between two rounds (default: {DEFAULT_EVERY_SECONDS:g})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every: float = options["every"]
        if every <= 0:
            raise CommandError(f"--every {every:g}: use more than 0 seconds")
        self.stopping = False
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        periodic = jobs.periodic_jobs()
        names = ", ".join(found.name for found in periodic) or "none"
        self.stdout.write(f"scheduler started: every {every:g} s: {names}")
        self.stdout.flush()
        due = time.monotonic()
        while not self.stopping:
            now = time.monotonic()
            if now >= due:
                due = max(due + every, now)
                for found in periodic:
                    try:
                        jobs.enqueue(found.name)
                    except jobs.redis_errors() as error:
                        self.stderr.write(f"job {found.name} not enqueued: {error}")
                    else:
                        self.stdout.write(f"job {found.name} enqueued on {found.queue}")
                self.stdout.flush()
            time.sleep(TICK_SECONDS)
        self.stdout.write("scheduler stopped")

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
