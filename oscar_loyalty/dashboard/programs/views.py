"""Views of the programmes and their grades: list, create, edit, and delete a grade."""

from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.generic import CreateView, FormView, ListView, UpdateView
from django.views.generic.detail import SingleObjectMixin
from oscar.core.loading import get_model

from oscar_loyalty import grades
from oscar_loyalty.dashboard.mixins import TEMPLATES
from oscar_loyalty.exceptions import LoyaltyError
from oscar_loyalty.loading import get_class

Card = get_model("oscar_loyalty", "Card")
Grade = get_model("oscar_loyalty", "Grade")
Program = get_model("oscar_loyalty", "Program")

ProgramForm = get_class("dashboard.programs.forms", "ProgramForm")
GradeForm = get_class("dashboard.programs.forms", "GradeForm")
GradeDeleteForm = get_class("dashboard.programs.forms", "GradeDeleteForm")


class ProgramListView(ListView):
    model = Program
    template_name = TEMPLATES + "program_list.html"
    context_object_name = "programs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        cards = dict(Card.objects.values_list("program").annotate(n=Count("pk")).order_by())
        grade_counts = dict(Grade.objects.values_list("program").annotate(n=Count("pk")).order_by())
        for program in context["programs"]:
            program.card_count = cards.get(program.pk, 0)
            program.grade_count = grade_counts.get(program.pk, 0)
        return context


class ProgramCreateView(CreateView):
    model = Program
    form_class = ProgramForm
    template_name = TEMPLATES + "program_form.html"

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(
            self.request,
            _("Programme “%(name)s” created. Now add its grades.") % {"name": self.object},
        )
        return response

    def get_success_url(self):
        return reverse("loyalty-program-update", args=[self.object.pk])


class ProgramUpdateView(UpdateView):
    model = Program
    form_class = ProgramForm
    template_name = TEMPLATES + "program_form.html"
    context_object_name = "program"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # Always by threshold, whatever order the grades were entered in.
        context["grades"] = self.object.grades.annotate(card_count=Count("cards")).order_by(
            "spend_from"
        )
        return context

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Programme “%(name)s” saved.") % {"name": self.object})
        return response

    def get_success_url(self):
        return reverse("loyalty-program-update", args=[self.object.pk])


class GradeMixin:
    model = Grade
    form_class = GradeForm
    template_name = TEMPLATES + "grade_form.html"

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["program"] = self.program
        return kwargs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["program"] = self.program
        return context

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Grade “%(name)s” saved.") % {"name": self.object})
        return response

    def get_success_url(self):
        return reverse("loyalty-program-update", args=[self.program.pk]) + "#grades"


class GradeCreateView(GradeMixin, CreateView):
    def dispatch(self, request, *args, **kwargs):
        self.program = get_object_or_404(Program, pk=kwargs["program_pk"])
        return super().dispatch(request, *args, **kwargs)


class GradeUpdateView(GradeMixin, UpdateView):
    context_object_name = "grade"

    def get_object(self, queryset=None):
        grade = super().get_object(queryset)
        self.program = grade.program
        return grade


class GradeDeleteView(SingleObjectMixin, FormView):
    """Delete a grade; a grade in use first moves its cards to another grade."""

    model = Grade
    form_class = GradeDeleteForm
    template_name = TEMPLATES + "grade_delete.html"
    context_object_name = "grade"

    def dispatch(self, request, *args, **kwargs):
        self.object = self.get_object()
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["grade"] = self.object
        return kwargs

    def form_valid(self, form):
        grade, target = self.object, form.cleaned_data.get("move_to")
        try:
            moved = grades.delete_grade(grade, move_to=target, by=self.request.user)
        except LoyaltyError as exc:  # cards got the grade since the page was shown
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        if moved:
            messages.success(
                self.request,
                ngettext(
                    "Grade “%(name)s” deleted; %(count)s card moved to “%(target)s”.",
                    "Grade “%(name)s” deleted; %(count)s cards moved to “%(target)s”.",
                    moved,
                )
                % {"name": grade.name, "count": moved, "target": target.name},
            )
        else:
            messages.success(self.request, _("Grade “%(name)s” deleted.") % {"name": grade.name})
        return redirect(reverse("loyalty-program-update", args=[grade.program_id]) + "#grades")
