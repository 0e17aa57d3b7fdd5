"""`manage.py run_worker --queue NAME`: runs the jobs of one queue (bigfoot/jobs.py) until
SIGTERM, then finishes the job it is running and exits 0 (a warm shutdown, which the stack's
`stopTimeoutSeconds` gives it time for)."""

import signal
import time
import traceback
from types import FrameType
from typing import Any

from bigfoot import jobs
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

# BLPOP's wait (a fraction of a second: Redis 6.0 and later, which the stack runs): how soon a
# stop request is seen while the queue is empty, so that an idle worker stops at once rather
# than a second later. Interrupting the BLPOP instead could lose a job popped in transit.
POLL_SECONDS = 0.2
# The client's socket timeout must outlast the BLPOP wait.
SOCKET_TIMEOUT_SECONDS = POLL_SECONDS + 5
RECONNECT_SECONDS = 1.0


class Command(BaseCommand):
    help = "Runs the jobs of one queue until SIGTERM (then finishes the current job)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queue", default=jobs.DEFAULT_QUEUE, help="the queue to run (default: default)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        queue: str = options["queue"]
        self.stopping = False
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        jobs.discover()
        client = jobs.redis_client(socket_timeout=SOCKET_TIMEOUT_SECONDS)
        if client is None:
            raise CommandError("jobs need Redis; set REDIS_URL")
        key = jobs.queue_key(queue)
        self.stdout.write(f"worker on queue {queue} ({key}) started")
        self.stdout.flush()
        while not self.stopping:
            try:
                popped = client.blpop([key], timeout=POLL_SECONDS)
            except jobs.redis_errors() as error:
                self.stderr.write(f"queue {queue}: Redis unavailable: {error}")
                time.sleep(RECONNECT_SECONDS)
                continue
            if popped is not None:
                self.run_one(popped[1])
        self.stdout.write(f"worker on queue {queue} stopped")

    def run_one(self, payload: bytes) -> None:
        name = jobs.job_name(payload)
        started = time.monotonic()
        # As around a request: a connection that broke or grew old (a database failover, say)
        # is replaced before the job uses it, rather than failing every job after it.
        close_old_connections()
        try:
            jobs.run(payload)
        except Exception:
            self.stderr.write(f"job {name} failed\n{traceback.format_exc()}", ending="")
        else:
            took = (time.monotonic() - started) * 1000
            self.stdout.write(f"job {name} done in {took:.0f} ms")
        finally:
            close_old_connections()
        self.stdout.flush()
        self.stderr.flush()

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        """Asked to stop: the loop ends once the current job is done."""
        self.stopping = True
