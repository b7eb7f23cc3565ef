"""The loyalty programme's message templates as Oscar event types, editable in the dashboard
(Content → Email templates). Their e-mail fields start as the package's template files, so a
manager edits the text customers get now; a field emptied to NULL falls back to the file
again (Oscar's ``CommunicationEventType.get_messages``), and SMS texts always come from files
(Oscar's dashboard does not edit them)."""

from django.db import migrations
from django.template import TemplateDoesNotExist
from django.template.loader import get_template

from oscar_loyalty.notifications import events

FIELDS = {
    "email_subject_template": "subject.txt",
    "email_body_template": "body.txt",
    "email_body_html_template": "body.html",
}


def source(code, suffix):
    name = f"oscar/communication/emails/commtype_{code.lower()}_{suffix}"
    try:
        return get_template(name).template.source
    except (TemplateDoesNotExist, AttributeError):
        return None


def create(apps, schema_editor):
    EventType = apps.get_model("communication", "CommunicationEventType")
    for code, name in events.NAMES.items():
        if EventType.objects.filter(code=code).exists():
            continue
        fields = {field: source(code, suffix) for field, suffix in FIELDS.items()}
        EventType.objects.create(code=code, name=str(name), category="User related", **fields)


def delete(apps, schema_editor):
    EventType = apps.get_model("communication", "CommunicationEventType")
    EventType.objects.filter(code__in=list(events.NAMES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("oscar_loyalty", "0011_messages"),
        ("communication", "0004_auto_20200801_0817"),
    ]

    operations = [migrations.RunPython(create, delete)]
