"""Catalogue, shop and user part of the demo data. Every function is idempotent."""

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import oscar
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.sites.models import Site
from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import Q
from oscar.apps.catalogue.categories import create_from_breadcrumbs
from oscar.core.loading import get_model

Product = get_model("catalogue", "Product")
ProductCategory = get_model("catalogue", "ProductCategory")
ProductClass = get_model("catalogue", "ProductClass")
Partner = get_model("partner", "Partner")
StockRecord = get_model("partner", "StockRecord")
Country = get_model("address", "Country")
UserAddress = get_model("address", "UserAddress")

PARTNER_CODE = "sandbox"
MANAGER_GROUP = "Loyalty managers"
# Everything of the loyalty app, Oscar's order dashboard, the customer list, and the
# message templates (Content → Email templates).
MANAGER_PERMISSIONS = (
    Q(content_type__app_label__in=["oscar_loyalty", "order"])
    | Q(content_type__app_label="auth", codename="view_user")
    | Q(
        content_type__app_label="communication",
        codename__in=["view_communicationeventtype", "change_communicationeventtype"],
    )
)


PRODUCT_CLASSES = {
    # slug: (name, requires_shipping, track_stock)
    "goods": ("Goods", True, True),
    "e-book-gift-certificate": ("E-book/Gift certificate", False, False),
}


@dataclass(frozen=True)
class DemoProduct:
    upc: str
    slug: str
    title: str
    price: str
    category: str  # Oscar breadcrumbs: "Parent > Child"
    product_class: str = "goods"
    stock: int | None = 50


PRODUCTS = [
    DemoProduct(
        "4601234000011",
        "polaris-pwk-1803-kettle",
        "Чайник электрический Polaris PWK 1803",
        "3200.00",
        "Home appliances",
    ),
    DemoProduct(
        "4601234000028",
        "redmond-rhb-2961-blender",
        "Блендер погружной Redmond RHB-2961",
        "4590.00",
        "Home appliances",
    ),
    DemoProduct(
        "4601234000035",
        "tefal-daily-chef-pan-26",
        "Сковорода Tefal Daily Chef, 26 см",
        "2790.00",
        "Kitchen",
    ),
    DemoProduct(
        "4601234000042",
        "stanley-classic-mug-047",
        "Термокружка Stanley Classic, 0,47 л",
        "3990.00",
        "Kitchen",
    ),
    DemoProduct(
        "4601234000059",
        "linen-towel-set-3",
        "Набор льняных полотенец, 3 шт.",
        "1490.00",
        "Home textiles",
    ),
    DemoProduct(
        "4601234000066",
        "ivanovo-bed-linen-euro",
        "Комплект постельного белья «Ивановский текстиль», евро",
        "5600.00",
        "Home textiles",
    ),
    DemoProduct(
        "4601234000073",
        "russian-cuisine-e-book",
        "Электронная книга «Русская кухня. 100 рецептов»",
        "690.00",
        "E-books",
        product_class="e-book-gift-certificate",
        stock=None,
    ),
]

# email: (password, first name, last name, role)
USERS = {
    "admin@example.com": ("admin", "Admin", "Sandbox", "superuser"),
    "manager@example.com": ("manager", "Мария", "Менеджерова", "manager"),
    "anna@example.com": ("anna", "Анна", "Иванова", "customer"),
    "boris@example.com": ("boris", "Борис", "Петров", "customer"),
}

CUSTOMER_ADDRESSES = {
    "anna@example.com": ("ул. Тверская, д. 7, кв. 12", "Москва", "125009", "+79161234567"),
    "boris@example.com": ("Невский пр., д. 28, кв. 5", "Санкт-Петербург", "191186", "+79217654321"),
}


def load_site():
    Site.objects.filter(pk=settings.SITE_ID, domain="example.com").update(
        domain="127.0.0.1:8000", name=settings.OSCAR_SHOP_NAME
    )


def load_countries():
    Country.objects.get_or_create(
        iso_3166_1_a2="RU",
        defaults={
            "iso_3166_1_a3": "RUS",
            "iso_3166_1_numeric": "643",
            "printable_name": "Russia",
            "name": "Russian Federation",
            "is_shipping_country": True,
        },
    )


def load_missing_image():
    """Oscar's placeholder must sit in the media storage for the thumbnailer to resize it."""
    name = settings.OSCAR_MISSING_IMAGE_URL
    if not default_storage.exists(name):
        source = Path(oscar.__file__).parent / "static" / "oscar" / "img" / "image_not_found.jpg"
        with source.open("rb") as image:
            default_storage.save(name, File(image))


def load_catalogue():
    partner, _ = Partner.objects.get_or_create(code=PARTNER_CODE, defaults={"name": "Sandbox shop"})
    classes = {}
    for slug, (name, requires_shipping, track_stock) in PRODUCT_CLASSES.items():
        classes[slug], _ = ProductClass.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "requires_shipping": requires_shipping,
                "track_stock": track_stock,
            },
        )
    for item in PRODUCTS:
        product, _ = Product.objects.get_or_create(
            upc=item.upc,
            defaults={
                "title": item.title,
                "slug": item.slug,
                "product_class": classes[item.product_class],
                "structure": Product.STANDALONE,
                "is_public": True,
            },
        )
        ProductCategory.objects.get_or_create(
            product=product, category=create_from_breadcrumbs(item.category)
        )
        StockRecord.objects.get_or_create(
            product=product,
            partner=partner,
            defaults={
                "partner_sku": item.upc,
                "price_currency": settings.OSCAR_DEFAULT_CURRENCY,
                "price": Decimal(item.price),
                "num_in_stock": item.stock,
            },
        )
    return partner


def load_users():
    User = get_user_model()
    managers, _ = Group.objects.get_or_create(name=MANAGER_GROUP)
    # Evaluated now, so that permissions of models added later are granted on the next run.
    managers.permissions.add(*Permission.objects.filter(MANAGER_PERMISSIONS))
    for email, (password, first_name, last_name, role) in USERS.items():
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User(username=email, email=email, first_name=first_name, last_name=last_name)
            user.is_staff = role in ("superuser", "manager")
            user.is_superuser = role == "superuser"
            user.set_password(password)
            user.save()
        if role == "manager":
            user.groups.add(managers)
        if email in CUSTOMER_ADDRESSES and not user.addresses.exists():
            line1, city, postcode, phone = CUSTOMER_ADDRESSES[email]
            UserAddress.objects.create(
                user=user,
                first_name=first_name,
                last_name=last_name,
                line1=line1,
                line4=city,
                postcode=postcode,
                country_id="RU",
                phone_number=phone,
                is_default_for_shipping=True,
                is_default_for_billing=True,
            )


def demo_logins():
    return [(email, password, role) for email, (password, _, _, role) in USERS.items()]
