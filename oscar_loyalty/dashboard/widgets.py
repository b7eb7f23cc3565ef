"""Form inputs that forms and filters of several dashboard areas share."""

from django import forms

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
COLOUR_INPUT = forms.TextInput(attrs={"type": "color"})
