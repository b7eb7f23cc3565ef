"""Points are posted by a real Celery worker, exactly once, however often the task arrives.

A `celery -A sandbox worker` subprocess runs against the test database (PostgreSQL, so both
processes see committed rows) and the Redis broker of CELERY_BROKER_URL, on a queue of its
own so that no other worker on that Redis takes these tasks. The test process sends tasks
the way the shop does: the order's status change enqueues ``post_accrual`` on commit.
"""

import os
import re
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone
from oscar.core.loading import get_model

from oscar_loyalty import audit, tasks
from tests import factories
from tests.conftest import redis_broker_url

Accrual = get_model("oscar_loyalty", "Accrual")
Transfer = get_model("oscar_loyalty", "Transfer")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

SANDBOX = Path(__file__).resolve().parents[2] / "sandbox"
WAIT = 90  # seconds; a worker on a busy machine takes a while to import Django and Oscar


def database_url():
    """The test database (not the one DATABASE_URL names) as a URL for the worker."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host = db["HOST"] or "localhost"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


def wait_for(condition, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Worker:
    """A celery worker subprocess whose log the test reads."""

    def __init__(self, log_path, queue):
        self.log_path, self.queue = log_path, queue

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_done(self, task_ids):
        """Wait until the worker has run each of ``task_ids``; fail if one raised."""

        def finished():
            log = self.log()
            return all(re.search(rf"\[{tid}\] (succeeded|raised)", log) for tid in task_ids)

        wait_for(finished, f"tasks {task_ids} in the worker; its log:\n{self.log()}")
        failed = [tid for tid in task_ids if re.search(rf"\[{tid}\] raised", self.log())]
        assert not failed, self.log()


@pytest.fixture(scope="module")
def broker():
    url = redis_broker_url()
    if url is None:  # the marker skips the tests; this keeps the fixture honest
        pytest.skip("needs Redis")
    return url


@pytest.fixture(scope="module")
def worker(broker, tmp_path_factory, django_db_setup, django_db_blocker):
    """One worker for the module (it takes a while to start); tests wait for their own tasks."""
    queue = f"loyalty-test-{uuid.uuid4().hex[:12]}"
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with django_db_blocker.unblock():
        url = database_url()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sandbox.settings",
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": broker,
        "DEBUG": "0",
    }
    with started_worker(env, queue, log_path, broker):
        yield Worker(log_path, queue)


@contextmanager
def started_worker(env, queue, log_path, broker, cwd=SANDBOX):
    """A Celery worker subprocess of the sandbox on ``queue``, its output in ``log_path``,
    ready when entered, with this process sending its tasks there (``producer``); stopped
    (warm shutdown: it finishes the task at hand) and its queue deleted on the way out."""
    command = [
        *(sys.executable, "-m", "celery", "-A", "sandbox", "worker"),
        *("--loglevel", "info", "--queues", queue, "--hostname", f"{queue}@%h"),
        *("--concurrency", "2", "--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)

    def output():
        return log_path.read_text(errors="replace")

    try:
        wait_for(lambda: " ready." in output() or process.poll() is not None, "the worker to start")
        assert process.poll() is None, f"the worker exited:\n{output()}"
        with producer(broker, queue):
            yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        forget_queue(broker, queue)


@contextmanager
def producer(broker, queue):
    """Make this process send tasks to ``queue`` on ``broker`` instead of running them eagerly.

    Celery caches its routes and broker pool on first use, so they are dropped on the way in
    and out; the test settings are restored afterwards.
    """
    from celery import current_app
    from kombu import pools

    app = current_app._get_current_object()
    keys = ("task_always_eager", "broker_url", "task_default_queue")
    saved = {key: app.conf[key] for key in keys}

    def reset():
        app.__dict__.pop("amqp", None)
        app._pool = None
        pools.reset()  # kombu's process-wide connection and producer pools

    app.conf.update(task_always_eager=False, broker_url=broker, task_default_queue=queue)
    reset()
    try:
        yield app
    finally:
        app.conf.update(saved)
        reset()


def forget_queue(broker, queue):
    import redis

    client = redis.Redis.from_url(broker)
    client.delete(queue, *client.scan_iter(match=f"_kombu.*{queue}"))
    client.close()


def complete_order(card, delay_hours=0):
    card.program.accrual_delay_hours = delay_hours
    card.program.save(update_fields=["accrual_delay_hours"])
    order = factories.place_order(user=card.user, lines=[(factories.make_product("1000.00"), 1)])
    order.set_status("Complete")  # autocommit here: post_accrual is sent at once
    return order


def earned(order):
    return Transfer.objects.filter(order_number=order.number, kind=Transfer.EARN)


def test_worker_posts_points_of_a_completed_order_once(card, worker):
    order = complete_order(card)
    accrual = Accrual.objects.get(order_number=order.number)

    wait_for(
        lambda: Accrual.objects.filter(pk=accrual.pk, status=Accrual.POSTED).exists(),
        f"the worker to post the points; its log:\n{worker.log()}",
    )
    # The same task again (a redelivery, a replayed signal), twice at once on two processes.
    again = [tasks.post_accrual.delay(accrual.pk).id for _ in range(2)]
    worker.wait_done(again)

    assert earned(order).count() == 1
    assert earned(order).get().amount == Decimal("30.00")  # 3 % of 1000
    assert factories.refreshed(card).account.balance == Decimal("30.00")
    assert audit.audit() == []


def test_periodic_task_posts_due_points_once(card, worker):
    order = complete_order(card, delay_hours=24)
    accrual = Accrual.objects.get(order_number=order.number)
    first = tasks.post_due_accruals.delay().id
    worker.wait_done([first])
    assert not earned(order).exists()  # not due yet

    Accrual.objects.filter(pk=accrual.pk).update(available_at=timezone.now() - timedelta(hours=1))
    ticks = [tasks.post_due_accruals.delay().id for _ in range(2)]  # two beats at once
    worker.wait_done(ticks)

    assert earned(order).count() == 1
    assert Accrual.objects.get(pk=accrual.pk).status == Accrual.POSTED
    assert factories.refreshed(card).account.balance == Decimal("30.00")
    assert audit.audit() == []
