"""Forms of the campaign staff pages. They only parse input; the services validate the campaign
(templates, trigger, audience) and raise InvalidInput with `extra.fields`, which
`apply_domain_error` puts on the form."""
from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core.errors import ApplicationError
from segmentation.models import Segment, Tier

from .choices import CampaignKind, DiscountKind, TriggerKind, WinnerMetric

MAX_VARIANTS = 3
CAMPAIGN_FIELDS = ("name", "description", "kind", "segment", "holdout_percent", "trigger", "send_at", "cron",
                   "entry_tier", "allow_reentry", "subject", "html_body", "text_body", "winner_metric",
                   "coupon_discount", "coupon_value", "coupon_min_basket", "coupon_valid_days", "coupon_uses")


class TierChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Tier) -> str:
        return f"{obj.dimension.display_name}: {obj.display_name}"


class EntryTierField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Tier) -> str:
        return f"{obj.dimension.display_name}: {obj.display_name}"


def _tiers():
    return Tier.objects.select_related("dimension").order_by("dimension__order", "dimension__slug", "order", "slug")


class CampaignForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    kind = forms.ChoiceField(label=_("Kind"), choices=CampaignKind.choices, initial=CampaignKind.EMAIL)
    tiers = TierChoiceField(label=_("Tiers"), queryset=_tiers(), required=False,
                            widget=forms.SelectMultiple(attrs={"size": 8}),
                            help_text=_("Customers in any of these tiers (and in the segment, when one is chosen)."))
    segment = forms.ModelChoiceField(label=_("Segment"), queryset=Segment.objects.order_by("name"), required=False,
                                     empty_label=_("— no segment —"))
    holdout_percent = forms.DecimalField(label=_("Holdout %"), min_value=0, max_value=90, decimal_places=2,
                                         initial=Decimal("10"),
                                         help_text=_("A random, reproducible share that gets nothing, to measure uplift."))
    trigger = forms.ChoiceField(label=_("Trigger"), choices=TriggerKind.choices, initial=TriggerKind.MANUAL)
    send_at = forms.DateTimeField(label=_("Send at"), required=False,
                                  widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
                                  input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"])
    cron = forms.CharField(label=_("Recurring schedule (cron)"), max_length=100, required=False,
                           help_text=_("minute hour day-of-month month day-of-week, e.g. 0 9 * * 1"))
    entry_tier = EntryTierField(label=_("On entering tier"), queryset=_tiers(), required=False,
                                empty_label=_("— choose a tier —"))
    allow_reentry = forms.BooleanField(label=_("Send again when the customer re-enters"), required=False)
    subject = forms.CharField(label=_("Subject"), max_length=300, required=False)
    html_body = forms.CharField(label=_("HTML body"), required=False,
                                widget=forms.Textarea(attrs={"rows": 10, "class": "font-monospace", "spellcheck": "false"}))
    text_body = forms.CharField(label=_("Text body"), required=False,
                                widget=forms.Textarea(attrs={"rows": 8, "class": "font-monospace", "spellcheck": "false"}))
    winner_metric = forms.ChoiceField(label=_("Winner metric"), choices=WinnerMetric.choices,
                                      initial=WinnerMetric.CONVERSION_RATE)
    coupon_discount = forms.ChoiceField(label=_("Discount kind"), choices=DiscountKind.choices,
                                        initial=DiscountKind.PERCENT)
    coupon_value = forms.DecimalField(label=_("Discount value"), min_value=0, decimal_places=2, initial=0)
    coupon_min_basket = forms.DecimalField(label=_("Minimum basket"), min_value=0, decimal_places=2, initial=0)
    coupon_valid_days = forms.IntegerField(label=_("Valid for (days)"), min_value=1, max_value=3650, initial=30)
    coupon_uses = forms.IntegerField(label=_("Uses per code"), min_value=1, max_value=1000, initial=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for i in range(MAX_VARIANTS):
            self.fields[f"variant{i}_name"] = forms.CharField(label=_("Variant name"), max_length=40, required=False)
            self.fields[f"variant{i}_weight"] = forms.IntegerField(label=_("Split %"), min_value=1, max_value=100,
                                                                   required=False)
            self.fields[f"variant{i}_subject"] = forms.CharField(label=_("Subject"), max_length=300, required=False)
            self.fields[f"variant{i}_html_body"] = forms.CharField(
                label=_("HTML body"), required=False,
                widget=forms.Textarea(attrs={"rows": 4, "class": "font-monospace", "spellcheck": "false"}))
            self.fields[f"variant{i}_text_body"] = forms.CharField(
                label=_("Text body"), required=False,
                widget=forms.Textarea(attrs={"rows": 4, "class": "font-monospace", "spellcheck": "false"}))
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                widget.attrs.setdefault("class", "form-check-input")
            elif isinstance(widget, (forms.Select, forms.SelectMultiple)):
                widget.attrs["class"] = (widget.attrs.get("class", "") + " form-select").strip()
            else:
                widget.attrs["class"] = (widget.attrs.get("class", "") + " form-control").strip()

    @classmethod
    def initial_for(cls, campaign) -> dict:
        initial = {name: getattr(campaign, name) for name in CAMPAIGN_FIELDS}
        initial["tiers"] = list(campaign.tiers.values_list("pk", flat=True))
        for i, v in enumerate(campaign.variants.all()[:MAX_VARIANTS]):
            initial.update({f"variant{i}_name": v.name, f"variant{i}_weight": v.weight,
                            f"variant{i}_subject": v.subject, f"variant{i}_html_body": v.html_body,
                            f"variant{i}_text_body": v.text_body})
        return initial

    def variant_rows(self) -> list[list]:
        """Bound fields per variant row, for the template."""
        return [[self[f"variant{i}_{part}"] for part in ("name", "weight", "subject", "html_body", "text_body")]
                for i in range(MAX_VARIANTS)]

    def service_kwargs(self) -> dict:
        """cleaned_data as keyword arguments of campaign_create / campaign_update."""
        data = self.cleaned_data
        fields = {name: data.get(name) for name in CAMPAIGN_FIELDS}
        for name in ("description", "cron", "subject", "html_body", "text_body"):
            fields[name] = fields[name] or ""
        for name in ("coupon_value", "coupon_min_basket"):
            fields[name] = fields[name] if fields[name] is not None else Decimal("0")
        fields["holdout_percent"] = fields["holdout_percent"] if fields["holdout_percent"] is not None else Decimal("0")
        fields["coupon_valid_days"] = fields["coupon_valid_days"] or 30
        fields["coupon_uses"] = fields["coupon_uses"] or 1
        variants = []
        for i in range(MAX_VARIANTS):
            name = (data.get(f"variant{i}_name") or "").strip()
            if not name:
                continue
            variants.append({"name": name, "weight": data.get(f"variant{i}_weight") or 50,
                             **{part: data.get(f"variant{i}_{part}") or "" for part in ("subject", "html_body", "text_body")}})
        return {"tiers": list(data.get("tiers") or []), "variants": variants, **fields}


# Domain error field names -> form field names (variant errors name "variants[i].subject").
def apply_domain_error(form: forms.Form, exc: ApplicationError) -> None:
    fields = (exc.extra or {}).get("fields") or {}
    placed = False
    for name, msgs in fields.items():
        target = name
        if name.startswith("variants[") and "]." in name:
            index, _, part = name[len("variants["):].partition("].")
            target = f"variant{index}_{part}"
        if target in form.fields:
            for message in msgs:
                form.add_error(target, message)
            placed = True
        elif name == "variants":
            for message in msgs:
                form.add_error(None, message)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


class PreviewForm(forms.Form):
    customer = forms.IntegerField(min_value=1)
    variant = forms.IntegerField(min_value=1, required=False)


class GoodwillCouponForm(forms.Form):
    discount = forms.ChoiceField(label=_("Discount kind"), choices=DiscountKind.choices, initial=DiscountKind.PERCENT,
                                 widget=forms.Select(attrs={"class": "form-select form-select-sm"}))
    value = forms.DecimalField(label=_("Value"), min_value=Decimal("0.01"), decimal_places=2,
                               widget=forms.NumberInput(attrs={"class": "form-control form-control-sm", "step": "0.01"}))
    valid_days = forms.IntegerField(label=_("Valid for (days)"), min_value=1, max_value=365, initial=30,
                                    widget=forms.NumberInput(attrs={"class": "form-control form-control-sm"}))
    min_basket = forms.DecimalField(label=_("Minimum basket"), min_value=0, decimal_places=2, initial=0, required=False,
                                    widget=forms.NumberInput(attrs={"class": "form-control form-control-sm", "step": "0.01"}))
    reason = forms.CharField(label=_("Reason"), max_length=1000,
                             widget=forms.TextInput(attrs={"class": "form-control form-control-sm"}))
