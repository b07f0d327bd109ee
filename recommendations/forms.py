"""Staff forms of recommendations: train a model, per-tier rules, experiments."""
from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from segmentation.models import Tier

from .choices import ModelUse, TierRuleAction, TrainAlgorithm, TrainStatus
from .models import Item, TrainedModel


class StyledForm(forms.Form):
    """Bootstrap classes on every widget."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            css = "form-select form-select-sm" if isinstance(field.widget, forms.Select) else "form-control form-control-sm"
            field.widget.attrs["class"] = f"{field.widget.attrs.get('class', '')} {css}".strip()


class JsonObjectField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 2, "class": "font-monospace"})

    def to_python(self, value):
        value = (value or "").strip()
        if not value:
            return {}
        try:
            data = json.loads(value)
        except ValueError as exc:
            raise forms.ValidationError(_("Not valid JSON: %(error)s") % {"error": exc}) from None
        if not isinstance(data, dict):
            raise forms.ValidationError(_("Must be a JSON object, e.g. {\"category_cap\": 2}."))
        return data


class TrainForm(StyledForm):
    algorithm = forms.ChoiceField(label=_("Algorithm"), choices=TrainAlgorithm.choices, initial=TrainAlgorithm.EASE)
    use = forms.ChoiceField(label=_("Use"), choices=ModelUse.choices, initial=ModelUse.CUSTOMER)
    window_days = forms.IntegerField(label=_("Training window (days)"), min_value=1, max_value=3650, initial=365)
    holdout_days = forms.IntegerField(label=_("Holdout (days)"), min_value=0, max_value=365, initial=14,
                                      help_text=_("The last days are held out to measure the model, then it is refit on everything."))
    params = JsonObjectField(label=_("Parameters (JSON)"), required=False,
                             help_text=_("Optional, e.g. {\"l2\": 300} for EASE or {\"factors\": 64} for ALS."))


def _model_label(m: TrainedModel) -> str:
    ndcg = (m.metrics or {}).get("ndcg")
    extra = f", nDCG@10 {ndcg:.3f}" if isinstance(ndcg, (int, float)) else ""
    return f"#{m.pk} {m.algorithm} ({m.created_at:%Y-%m-%d}{extra}){' *' if m.active else ''}"


class ModelChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return _model_label(obj)


class ExperimentForm(StyledForm):
    name = forms.CharField(label=_("Name"), max_length=120)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    model_a = ModelChoiceField(label=_("Model of arm A"), queryset=TrainedModel.objects.none(), required=False,
                               empty_label=_("The active model"))
    config_a = JsonObjectField(label=_("Configuration of arm A (JSON)"), required=False)
    model_b = ModelChoiceField(label=_("Model of arm B"), queryset=TrainedModel.objects.none(), required=False,
                               empty_label=_("The active model"))
    config_b = JsonObjectField(label=_("Configuration of arm B (JSON)"), required=False,
                               help_text=_("Keys: exclude_purchased, exclude_interacted, category_cap, tier_rules, "
                                           "history_events, half_life_days."))
    traffic_b = forms.FloatField(label=_("Share of traffic to B"), min_value=0.01, max_value=0.99, initial=0.5)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        qs = TrainedModel.objects.defer("artefact").filter(use=ModelUse.CUSTOMER, status=TrainStatus.SUCCEEDED).order_by("-id")
        self.fields["model_a"].queryset = qs
        self.fields["model_b"].queryset = qs


class TierRuleForm(StyledForm):
    tier = forms.ModelChoiceField(label=_("Tier"), queryset=Tier.objects.none())
    action = forms.ChoiceField(label=_("Action"), choices=TierRuleAction.choices)
    item = forms.CharField(label=_("Item (external id)"), required=False, max_length=128)
    category = forms.ChoiceField(label=_("or category"), required=False)
    weight = forms.FloatField(label=_("Weight"), min_value=-10, max_value=10, initial=0.5,
                              help_text=_("Boost: 1 lifts an item over the whole score range; negative buries."))
    note = forms.CharField(label=_("Note"), required=False, max_length=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].queryset = Tier.objects.select_related("dimension").filter(dimension__active=True)
        self.fields["tier"].label_from_instance = lambda t: f"{t.dimension.display_name}: {t.display_name}"
        cats = Item.objects.exclude(category="").order_by("category").values_list("category", flat=True).distinct()
        self.fields["category"].choices = [("", "—")] + [(c, c) for c in cats]

    def clean(self):
        data = super().clean()
        ext = (data.get("item") or "").strip()
        data["item_obj"] = None
        if ext:
            data["item_obj"] = Item.objects.filter(external_id=ext).first()
            if data["item_obj"] is None:
                self.add_error("item", _("No item with this external id."))
        if bool(ext) == bool(data.get("category")):
            raise forms.ValidationError(_("Give either an item or a category."))
        return data
