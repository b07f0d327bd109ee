"""Forms of the segmentation staff pages and the admin. They validate input; services write."""
from __future__ import annotations

import json
from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.core.errors import ApplicationError
from crm.core.translations import TranslationsFormMixin, add_translation_fields

from .choices import RunMode
from .models import Segment, Tier
from .rules import RuleError, compile_rule


def rule_errors_text(exc: RuleError) -> list[str]:
    return [f"{e['path'] or _('rule')}: {e['message']}" for e in exc.errors]


class RuleField(forms.JSONField):
    """A rule as JSON text, validated with compile_rule (every problem reported, naming its path)."""

    default_error_messages = {"invalid": _("Enter valid JSON: a rule is an object such as {\"all\": [...]}.")}

    def __init__(self, *, dimension: str | None = None, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 8, "class": "font-monospace rule-json", "spellcheck": "false"}))
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.dimension = dimension

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value if value is not None else {}, indent=2, ensure_ascii=False)

    def clean(self, value):
        rule = super().clean(value)
        if rule is None:
            rule = {}
        try:
            compile_rule(rule, dimension=self.dimension)
        except RuleError as exc:
            raise forms.ValidationError(rule_errors_text(exc), code="invalid_rule") from None
        return rule


class BootstrapMixin:
    """Bootstrap 5 classes on the widgets (form-control, form-select, form-check-input)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            css = widget.attrs.get("class", "")
            if isinstance(widget, forms.CheckboxInput):
                extra = "form-check-input"
            elif isinstance(widget, forms.Select):
                extra = "form-select"
            else:
                extra = "form-control"
            if extra not in css.split():
                widget.attrs["class"] = f"{extra} {css}".strip()


@add_translation_fields("name", "service_level", "description")
class TierForm(BootstrapMixin, TranslationsFormMixin, forms.ModelForm):
    """A tier's settings; each text sits next to its translations, so they are edited together."""

    rule = RuleField(label=_("Rule"))

    class Meta:
        model = Tier
        fields = ["name", "order", "colour", "is_vip", "service_level", "description", "rule"]
        widgets = {
            "colour": forms.TextInput(attrs={"type": "color", "class": "form-control form-control-color"}),
            "service_level": forms.Textarea(attrs={"rows": 2}),
            "description": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = {
            "order": _("Tiers are tried in this order; the first whose rule matches wins."),
            "service_level": _("What customer service owes this tier (shown on the customer page)."),
            "is_vip": _("VIP customers get a badge on their customer page."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.pk:
            self.fields["rule"].dimension = self.instance.dimension.slug


class SegmentForm(BootstrapMixin, forms.ModelForm):
    rule = RuleField(label=_("Rule"))

    class Meta:
        model = Segment
        fields = ["name", "slug", "description", "rule"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"slug": _("Short name used in links and the API (letters, digits and hyphens).")}

    def clean_rule(self):
        rule = self.cleaned_data["rule"]
        if rule in ({}, None):
            raise forms.ValidationError(_("A segment needs at least one condition."))
        return rule


class RecomputeForm(forms.Form):
    mode = forms.ChoiceField(label=_("Mode"), choices=RunMode.choices, initial=RunMode.INCREMENTAL)


class TierOverrideForm(forms.Form):
    """Pin a customer to a tier (the service checks reason and expiry again)."""

    tier = forms.ModelChoiceField(label=_("Tier"), queryset=Tier.objects.none())
    reason = forms.CharField(label=_("Reason"), max_length=1000, widget=forms.Textarea(attrs={"rows": 2}),
                             error_messages={"required": _("Say why the tier is pinned.")})
    expires_at = forms.DateTimeField(label=_("Expires"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                                      format="%Y-%m-%dT%H:%M"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].queryset = (Tier.objects.filter(dimension__active=True).select_related("dimension")
                                        .order_by("dimension__order", "dimension__slug", "order"))
        self.fields["tier"].label_from_instance = lambda t: f"{t.dimension.display_name}: {t.display_name}"
        if not self.is_bound:
            self.initial.setdefault("expires_at", (timezone.now() + timedelta(days=30)).replace(second=0, microsecond=0))

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Say why the tier is pinned."))
        return reason

    def clean_expires_at(self):
        value = self.cleaned_data["expires_at"]
        if value <= timezone.now():
            raise forms.ValidationError(_("The pin must expire in the future."))
        return value


def apply_application_error(form: forms.Form, exc: ApplicationError) -> None:
    """Put a domain error's field messages (extra.fields / RuleError paths) on the form."""
    fields = (exc.extra or {}).get("fields") or {}
    placed = False
    for name, messages in fields.items():
        if name in form.fields:
            for message in messages:
                form.add_error(name, message)
            placed = True
    if isinstance(exc, RuleError) and "rule" in form.fields:
        for message in rule_errors_text(exc):
            form.add_error("rule", message)
        placed = True
    if not placed:
        form.add_error(None, exc.message)
