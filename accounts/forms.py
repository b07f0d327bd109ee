"""Staff forms: sign-in, customer search, and the admin's API-key form."""
from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from .choices import ApiScope
from .models import ApiKey


class StaffAuthenticationForm(AuthenticationForm):
    """Only staff accounts may sign in to the staff pages."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "not_staff": _("This account has no access to the staff pages. Ask an administrator for a staff role."),
    }

    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if not user.is_staff:
            raise forms.ValidationError(self.error_messages["not_staff"], code="not_staff")


SORT_CHOICES = [
    ("-last_seen", _("Last seen (newest first)")),
    ("last_seen", _("Last seen (oldest first)")),
    ("-first_seen", _("First seen (newest first)")),
    ("first_seen", _("First seen (oldest first)")),
    ("name", _("Name (A–Z)")),
    ("-name", _("Name (Z–A)")),
]
DEFAULT_SORT = "-last_seen"


class CustomerSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Search customers"),
        required=False,
        max_length=254,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("E-mail, name, phone or external id"), "autocomplete": "off"}
        ),
    )
    sort = forms.ChoiceField(label=_("Sort by"), choices=SORT_CHOICES, required=False)

    def clean_sort(self) -> str:
        return self.cleaned_data.get("sort") or DEFAULT_SORT


class ApiKeyAdminForm(forms.ModelForm):
    """Name and scopes; the secret, its hash and prefix are made by api_key_create."""

    scopes = forms.MultipleChoiceField(
        label=_("scopes"), choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple, required=True
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes"]
