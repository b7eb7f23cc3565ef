"""Customer categories: coloured labels put on customers one at a time or in bulk.

Labels belong to customers (users), not cards; a phone card with no customer yet has none.
"""

from django.db import transaction
from oscar.core.loading import get_model

Category = get_model("oscar_loyalty", "Category")

BATCH = 5000


def _through():
    return Category.customers.through


def assign(category, user_ids):
    """Put ``category`` on every customer of ``user_ids`` (a list or a values_list queryset).

    Customers who have it already are left alone. Returns how many got it now.
    """
    through = _through()
    ids = list(dict.fromkeys(user_ids))
    added = 0
    with transaction.atomic():
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            have = set(
                through.objects.filter(category=category, user_id__in=batch).values_list(
                    "user_id", flat=True
                )
            )
            new = [through(category=category, user_id=pk) for pk in batch if pk not in have]
            through.objects.bulk_create(new, ignore_conflicts=True)
            added += len(new)
    return added


def remove(category, user_ids):
    """Take ``category`` off every customer of ``user_ids``; returns how many lost it."""
    rows = _through().objects.filter(category=category, user_id__in=user_ids)
    deleted, _ = rows.delete()
    return deleted


def by_customer(user_ids):
    """``{user id: [categories]}`` for many customers in one query."""
    found = {}
    rows = _through().objects.filter(user_id__in=user_ids).select_related("category")
    for row in rows.order_by("category__name"):
        found.setdefault(row.user_id, []).append(row.category)
    return found


def of_customer(user):
    return list(user.loyalty_categories.all()) if user is not None else []


def text_colour(background):
    """Black or white, whichever reads better on ``background`` (#rrggbb)."""
    try:
        red, green, blue = (int(background[i : i + 2], 16) for i in (1, 3, 5))
    except (TypeError, ValueError):
        return "#fff"
    # Relative luminance, the W3C way, simplified: light colours get dark text.
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "#212529" if luminance > 150 else "#fff"
