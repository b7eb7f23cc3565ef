"""Views of the customer categories: list, create, edit, delete, and one customer's."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.generic import CreateView, DeleteView, ListView, UpdateView, View
from oscar.core.loading import get_model

from oscar_loyalty import categories
from oscar_loyalty.dashboard.mixins import TEMPLATES
from oscar_loyalty.loading import get_class

Category = get_model("oscar_loyalty", "Category")
User = get_user_model()

CategoryForm = get_class("dashboard.categories.forms", "CategoryForm")
CustomerCategoryForm = get_class("dashboard.categories.forms", "CustomerCategoryForm")


def safe_next(request, default):
    """The ``next`` URL of the request if it points into this site, else ``default``."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


class CategoryListView(ListView):
    model = Category
    template_name = TEMPLATES + "category_list.html"
    context_object_name = "categories"

    def get_queryset(self):
        return Category.objects.annotate(customer_count=Count("customers"))


class CategoryFormMixin:
    model = Category
    form_class = CategoryForm
    template_name = TEMPLATES + "category_form.html"
    context_object_name = "category"

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Category “%(name)s” saved.") % {"name": self.object})
        return response

    def get_success_url(self):
        return reverse("loyalty-category-list")


class CategoryCreateView(CategoryFormMixin, CreateView):
    pass


class CategoryUpdateView(CategoryFormMixin, UpdateView):
    pass


class CategoryDeleteView(DeleteView):
    model = Category
    template_name = TEMPLATES + "category_delete.html"
    context_object_name = "category"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["customer_count"] = self.object.customers.count()
        return context

    def form_valid(self, form):
        name = str(self.object)
        response = super().form_valid(form)
        messages.success(self.request, _("Category “%(name)s” deleted.") % {"name": name})
        return response

    def get_success_url(self):
        return reverse("loyalty-category-list")


class CustomerCategoryView(View):
    """Add a category to one customer or take it off (card page, Oscar's customer page)."""

    http_method_names = ["post"]

    def post(self, request, pk):
        customer = get_object_or_404(User, pk=pk)
        back = safe_next(request, reverse("dashboard:user-detail", args=[customer.pk]))
        form = CustomerCategoryForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Choose a category."))
            return HttpResponseRedirect(back)
        category = form.cleaned_data["category"]
        who = customer.get_full_name() or customer.email
        if form.cleaned_data["action"] == "add":
            categories.assign(category, [customer.pk])
            text = _("%(who)s is now in category “%(category)s”.")
        else:
            categories.remove(category, [customer.pk])
            text = _("%(who)s is no longer in category “%(category)s”.")
        messages.success(request, text % {"who": who, "category": category})
        return HttpResponseRedirect(back)
