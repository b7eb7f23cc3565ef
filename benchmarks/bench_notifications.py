"""Notifications: what recording messages adds to a mass accrual, and sending queued e-mails.

``notify_mass_accrual_100k``: the dashboard's mass accrual to 100,000 cards with "Notify
customers" on, against the same job with it off, in the same run, on the same cards (every
customer has an e-mail address and has agreed to messages). With it on, each chunk also
records its messages (``records.for_transfers``: one ``INSERT ... SELECT`` for the e-mails,
which carry the inbox copy, and one for SMS, in the chunk's transaction). Sending is not
part of it: the task each chunk queues after commit (``tasks.send_messages.delay``) is
replaced by one that only counts the ids, as a broker
would take them. Rounds of the two jobs alternate, their order rotating; the ratio is the
median of the rounds' ratios (on over off), target at most 1.5 (the issue's).

``send_emails_10k``: 10,000 queued e-mails sent to Django's locmem backend the way the
periodic ``send_due_messages`` sends them (``sending.due_ids`` then ``sending.send`` per batch
of ``OSCAR_LOYALTY_MESSAGE_BATCH``: claim, render the manager's templates, send, mark sent).
The floor reads the same messages' values in one SQL query, renders the same three templates
(compiled once) and sends the same ``EmailMultiAlternatives`` through one locmem connection,
with no claim and no marks; the benchmark checks that both sides' e-mails are identical.
Target at most 3 (benchmarks/README.md says why).

Environment: DATABASE_URL (the server; database ``loyalty_bench_notifications`` is created
and dropped), BENCH_NOTIFY_CARDS (100000), BENCH_NOTIFY_EMAILS (10000), BENCH_ROUNDS (3).
"""

import os
import time
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from multiprocessing import get_context

from benchmarks import common

DATABASE = "loyalty_bench_notifications"
ACCRUAL_TARGET = 1.5
SEND_TARGET = 3.0
AMOUNT = Decimal("10.00")
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"


def settings():
    return {
        "cards": int(os.environ.get("BENCH_NOTIFY_CARDS", "100000")),
        "emails": int(os.environ.get("BENCH_NOTIFY_EMAILS", "10000")),
        "rounds": int(os.environ.get("BENCH_ROUNDS", "3")),
    }


def prepare(url, count):
    """Child: schema, a programme, ``count`` customers with an e-mail address, each with a
    card of the programme that agreed to messages; made set-based in SQL."""
    common.migrate(url)
    from django.db import connection
    from oscar.core.loading import get_model

    Program = get_model("oscar_loyalty", "Program")
    Grade = get_model("oscar_loyalty", "Grade")
    program = Program.objects.create(name="Bench", code="bench")
    grade = Grade.objects.create(program=program, name="Base", earn_percent=3)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined)"
            " SELECT '!', false, 'customer' || n, 'Customer', n::text,"
            " 'customer' || n || '@example.com', false, true, now()"
            " FROM generate_series(1, %s) n",
            [count],
        )
        cursor.execute(
            "INSERT INTO oscar_loyalty_account (unit, kind, program_id, code, balance)"
            " SELECT 'points', 'points', %s, '', 0 FROM generate_series(1, %s)",
            [program.pk, count],
        )
        # as the package issues them (a points account each), with the customer's consent
        cursor.execute(
            "INSERT INTO oscar_loyalty_card (program_id, number, phone, grade_id,"
            " grade_is_manual, participates, spend_adjustment, lifetime_spend, status,"
            " status_reason, account_id, user_id, created, marketing_consent,"
            " consent_changed, consent_source)"
            " SELECT %s, (7000000000000 + p.n)::text, '', %s, false, true, 0, 0, 'active', '',"
            " p.id, u.id, now(), true, now(), 'customer'"
            " FROM (SELECT id, row_number() OVER (ORDER BY id) n FROM oscar_loyalty_account"
            "       WHERE kind = 'points') p"
            " JOIN (SELECT id, row_number() OVER (ORDER BY id) n FROM auth_user"
            "       WHERE username LIKE 'customer%%') u ON u.n = p.n",
            [program.pk, grade.pk],
        )
        cursor.execute("VACUUM ANALYZE")


def _count_queued(queued):
    """``tasks.send_messages.delay`` replaced: the ids are counted, nothing is sent."""
    from oscar_loyalty import tasks

    tasks.send_messages.delay = lambda ids: queued.append(len(ids))


def _accrue(Card, notify, cards=None):
    from oscar_loyalty import mass_jobs, tasks

    cards = Card.objects.all() if cards is None else cards
    job = mass_jobs.create(
        mass_jobs.ACCRUAL, cards, amount=AMOUNT, description="Spring campaign", notify=notify
    )
    tasks.start_job(job)  # no broker: every chunk runs now, as a worker would run it
    return job


def accrual_rounds(url, rounds, count):
    """Child: per round, the job with notifications off and on (order rotating); seconds of
    each and the messages each recorded."""
    common.django_child(url)
    from oscar.core.loading import get_model

    Card = get_model("oscar_loyalty", "Card")
    Job = get_model("oscar_loyalty", "Job")
    Message = get_model("oscar_loyalty", "Message")
    queued = []
    _count_queued(queued)
    # The customers have an e-mail address and an account, no phone: one message a card, the
    # e-mail carrying the inbox copy; an SMS channel in use still runs its statement, and
    # records nothing.
    channels = ["e-mail with the inbox copy"]
    times, recorded = {"off": [], "on": []}, 0
    for round_no in range(rounds):
        for side in ("off", "on") if round_no % 2 == 0 else ("on", "off"):
            common.checkpoint()
            before = Message.objects.count()
            began = time.perf_counter()
            job = _accrue(Card, notify=side == "on")
            times[side].append(time.perf_counter() - began)
            job.refresh_from_db()
            if (job.status, job.succeeded) != (Job.DONE, count):
                raise AssertionError(f"job {job.pk}: {job.status}, {job.succeeded} of {count}")
            made = Message.objects.count() - before
            expected = count * len(channels) if side == "on" else 0
            if made != expected:
                raise AssertionError(f"job {job.pk} ({side}): {made} messages, not {expected}")
            recorded += made
        print(
            f"  round {round_no + 1}: notify off {times['off'][-1]:.2f} s,"
            f" on {times['on'][-1]:.2f} s ({job.chunks.count()} chunks,"
            f" {count * len(channels)} messages: {', '.join(channels)})",
            flush=True,
        )
    if sum(queued) != recorded:
        raise AssertionError(f"{sum(queued)} message ids queued to be sent, not every one")
    return times


def _queue_emails(Card, Message, emails):
    """One mass accrual with notifications, e-mail only, to the first ``emails`` cards:
    ``emails`` queued e-mails; their ids."""
    from django.test import override_settings

    ids = Card.objects.order_by("pk").values_list("pk", flat=True)[:emails]
    with override_settings(OSCAR_LOYALTY_MESSAGE_CHANNELS=("email",)):
        job = _accrue(Card, notify=True, cards=Card.objects.filter(pk__in=list(ids)))
    return list(
        Message.objects.filter(transfer__key__startswith=f"job:{job.pk}:", status="queued")
        .order_by("pk")
        .values_list("pk", flat=True)
    )


FLOOR_SQL = """
SELECT m.recipient, m.balance_after, u.first_name, u.last_name, u.email, c.number,
       p.name, g.name, t.amount, t.order_number, t.label_code, t.description
FROM oscar_loyalty_message m
JOIN oscar_loyalty_card c ON c.id = m.card_id
JOIN oscar_loyalty_program p ON p.id = c.program_id
LEFT JOIN oscar_loyalty_grade g ON g.id = c.grade_id
LEFT JOIN auth_user u ON u.id = m.user_id
JOIN oscar_loyalty_transfer t ON t.id = m.transfer_id
WHERE m.id = ANY(%s)
ORDER BY m.id
"""


def _floor_send(ids, event, site):
    """The floor: one query for the values, the three templates compiled once and rendered
    per message, one locmem connection for every e-mail. Returns the e-mails sent."""
    from django.conf import settings as django_settings
    from django.core import mail
    from django.core.mail import EmailMultiAlternatives, get_connection
    from django.db import connection
    from django.template import engines
    from django.utils import translation
    from oscar.core.loading import get_model

    from oscar_loyalty import descriptions
    from oscar_loyalty.formats import format_points
    from oscar_loyalty.notifications import records, sending

    EventType = get_model("communication", "CommunicationEventType")
    commtype = EventType.objects.get(code=event)
    engine = engines["django"]
    subject = engine.from_string(commtype.email_subject_template)
    body = engine.from_string(commtype.email_body_template)
    html = engine.from_string(commtype.email_body_html_template)
    url = sending.account_url(site)
    static = getattr(django_settings, "OSCAR_STATIC_BASE_URL", None)
    sender = django_settings.OSCAR_FROM_EMAIL
    with connection.cursor() as cursor:
        cursor.execute(FLOOR_SQL, [ids])
        rows = cursor.fetchall()
    emails = []
    with translation.override(records.language()), get_connection(LOCMEM) as mail_connection:
        for row in rows:
            to, balance, first, last, email, number, program, grade, amount, order = row[:10]
            label_code, description = row[10:]
            name = f"{first} {last}".strip() if (first or last) else email
            values = {
                "customer_name": name,
                "account_url": url,
                "balance": format_points(balance),
                "card_number": number,
                "program": program,
                "grade": grade or "",
                "amount": format_points(amount),
                "order_number": order,
                "description": descriptions.describe(label_code, order, description),
                "site": site,
                "static_base_url": static,
            }
            message = EmailMultiAlternatives(
                subject.render(values).replace("\n", "").replace("\r", ""),
                body.render(values),
                from_email=sender,
                to=[to],
            )
            message.attach_alternative(html.render(values), "text/html")
            mail_connection.send_messages([message])
            emails.append(message)
    del mail.outbox[:]
    return emails


def _ours_send(ids):
    """Ours: ``send_due_messages``'s loop, batch after batch, until nothing is due."""
    from django.core import mail

    from oscar_loyalty import conf
    from oscar_loyalty.notifications import sending

    sent = failed = 0
    while True:
        due = sending.due_ids(conf.message_batch)
        if not due:
            break
        done, bad = sending.send(due)
        sent, failed = sent + done, failed + bad
    emails = list(mail.outbox)
    del mail.outbox[:]
    if (sent, failed) != (len(ids), 0):
        raise AssertionError(f"sent {sent}, failed {failed} of {len(ids)} e-mails")
    return emails


def _same(ours, floor):
    """Both sides sent the same e-mails: recipients, subjects, texts and HTML."""

    def shape(email):
        return (email.to, email.subject, email.body, email.alternatives[0][0])

    if sorted(map(shape, ours)) != sorted(map(shape, floor)):
        raise AssertionError("the floor's e-mails differ from those the package sent")


def send_rounds(url, rounds, emails):
    """Child: per round, queue ``emails`` e-mails (not timed), then send them through the
    floor and through ours (order rotating); seconds of each."""
    common.django_child(url)
    from django.conf import settings as django_settings
    from django.contrib.sites.models import Site
    from django.core import mail
    from oscar.core.loading import get_model

    from oscar_loyalty.notifications import events

    django_settings.EMAIL_BACKEND = LOCMEM
    mail.outbox = []
    Card = get_model("oscar_loyalty", "Card")
    Message = get_model("oscar_loyalty", "Message")
    _count_queued([])
    site = Site.objects.get_current()
    # The accrual rounds' messages would be due too: only this benchmark's e-mails are sent.
    Message.objects.all().delete()
    times = {"floor": [], "ours": []}
    for round_no in range(rounds):
        ids = _queue_emails(Card, Message, emails)
        if len(ids) != emails:
            raise AssertionError(f"{len(ids)} e-mails queued, not {emails}")
        common.checkpoint()
        sent = {}
        for side in ("floor", "ours") if round_no % 2 == 0 else ("ours", "floor"):
            began = time.perf_counter()
            if side == "floor":
                sent[side] = _floor_send(ids, events.POINTS_CREDITED, site)
            else:
                sent[side] = _ours_send(ids)
            times[side].append(time.perf_counter() - began)
        _same(sent["ours"], sent["floor"])
        print(
            f"  round {round_no + 1}: floor {times['floor'][-1]:.2f} s,"
            f" ours {times['ours'][-1]:.2f} s ({len(ids)} e-mails each, identical)",
            flush=True,
        )
    return times


def verify(url, emails, rounds):
    """Child: the ledger audits clean; every e-mail of the sending rounds went out once."""
    common.django_child(url)
    from oscar.core.loading import get_model

    from oscar_loyalty import audit

    Message = get_model("oscar_loyalty", "Message")
    problems = audit.audit()
    sent = Message.objects.filter(channel="email", status="sent", attempts=1).count()
    if sent != emails * rounds:
        problems.append(f"{sent} e-mails sent once, expected {emails * rounds}")
    return problems


def ratios(times, over, under):
    return [a / b for a, b in zip(times[over], times[under], strict=True)]


def main():
    common.add_paths()
    conf = settings()
    ctx = get_context("spawn")
    print(
        f"notifications: mass accrual to {conf['cards']} cards with and without messages,"
        f" {conf['emails']} e-mails sent; {conf['rounds']} rounds (median shown)",
        flush=True,
    )
    with common.bench_database(DATABASE) as url:
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            child.submit(prepare, url, conf["cards"]).result()
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            accrual = child.submit(accrual_rounds, url, conf["rounds"], conf["cards"]).result()
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            send = child.submit(send_rounds, url, conf["rounds"], conf["emails"]).result()
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            problems = child.submit(verify, url, conf["emails"], conf["rounds"]).result()
    if problems:
        raise AssertionError("the ledger is not sound after the benchmark: " + "; ".join(problems))
    print(
        "  checked: every job credited every card, every e-mail sent once, loyalty_audit clean",
        flush=True,
    )

    per_round = ratios(accrual, "on", "off")
    common.figures(
        "job with notify (records messages)",
        conf["cards"],
        common.median(accrual["on"]),
        [conf["cards"] / s for s in accrual["on"]],
    )
    common.figures(
        "job without notify",
        conf["cards"],
        common.median(accrual["off"]),
        [conf["cards"] / s for s in accrual["off"]],
    )
    print(
        "  ratio: time with messages over time without (lower is better), median of rounds: "
        + ", ".join(f"{r:.2f}" for r in per_round),
        flush=True,
    )
    common.bench_line("notify_mass_accrual_100k", common.median(per_round), "<=", ACCRUAL_TARGET)

    per_round = ratios(send, "ours", "floor")
    common.figures(
        "ours: send_due_messages batches",
        conf["emails"],
        common.median(send["ours"]),
        [conf["emails"] / s for s in send["ours"]],
    )
    common.figures(
        "floor: render + send, no claim",
        conf["emails"],
        common.median(send["floor"]),
        [conf["emails"] / s for s in send["floor"]],
    )
    print(
        "  ratio: time of ours over time of the floor (lower is better), median of rounds: "
        + ", ".join(f"{r:.2f}" for r in per_round),
        flush=True,
    )
    common.bench_line("send_emails_10k", common.median(per_round), "<=", SEND_TARGET)


if __name__ == "__main__":
    main()
