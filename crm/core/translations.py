"""Translations of data that staff edit (tier and dimension names, service levels...).

gettext translates the text the code ships; it cannot translate text that lives in the database
and that staff may rename at any time. A model that has such text inherits `Translatable`: a
`translations` JSON column holds, per language other than LANGUAGE_CODE, the translated text of
some of its fields,

    {"zh-hans": {"name": "冠军客户", "service_level": "最佳客户：优先排队，2 小时内答复。"}}

and `obj.translated("name")` (or a `TranslatedText` attribute such as `tier.display_name`) returns
the text for the active language, falling back to the stored field when there is no translation
(a tier staff created or renamed). The REST API keeps serialising the stored fields; staff pages
show the translated ones.

Forms that edit such a model add one field per translated field and language next to the stored
one (`add_translation_fields` + `TranslationsFormMixin`). When the stored text changes and its
translation is left as it was, the translation is dropped (the page then shows the new text)
rather than going on showing a name that may mean something else; the form lists what it dropped
in `dropped_translations` so the page can say so.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import translation
from django.utils.text import capfirst, format_lazy
from django.utils.translation import gettext_lazy as _


def translation_languages() -> list[str]:
    """The languages a translation can be stored for: every UI language but the default."""
    return [code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]


def translated_text(stored: str, translations: Any, field: str, language: str | None = None) -> str:
    """`stored` in `language` (default: the active one), from a `translations` value; `stored`
    when there is no translation. Also for rows read with .values()."""
    language = (language or translation.get_language() or "").lower()
    if not language or language == settings.LANGUAGE_CODE or not isinstance(translations, dict):
        return stored
    texts = translations.get(language)
    value = texts.get(field) if isinstance(texts, dict) else None
    return value if isinstance(value, str) and value.strip() else stored


def validate_translations(value: Any) -> None:
    """{language: {field: text}} with known languages and text values."""
    if not isinstance(value, dict):
        raise ValidationError(_("Translations are an object of languages."), code="invalid")
    known = translation_languages()
    for language, texts in value.items():
        if language not in known:
            raise ValidationError(_("Unknown language %(language)s; use one of: %(languages)s."),
                                  params={"language": language, "languages": ", ".join(known)}, code="invalid")
        if not isinstance(texts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in texts.items()):
            raise ValidationError(_("The translations of %(language)s are an object of texts."),
                                  params={"language": language}, code="invalid")


class Translatable(models.Model):
    """A model with staff-edited text shown in the UI language; subclasses expose the fields they
    translate as `TranslatedText` attributes."""

    translations = models.JSONField(
        _("translations"), default=dict, blank=True, validators=[validate_translations],
        help_text=_("Text shown instead of the stored one in another UI language; the API returns the stored text."))

    class Meta:
        abstract = True

    def translated(self, field: str, language: str | None = None) -> str:
        return translated_text(getattr(self, field), self.translations, field, language)


class TranslatedText:
    """A read-only model attribute: a field's text in the active language.

        display_name = TranslatedText("name")   # obj.display_name == obj.translated("name")
    """

    def __init__(self, field: str):
        self.field = field

    def __get__(self, obj: Translatable | None, owner: type | None = None):
        return self if obj is None else obj.translated(self.field)


# --- Forms ----------------------------------------------------------------------------------------
def translation_field_name(field: str, language: str) -> str:
    """The form field of `field` in `language`: name_zh_hans."""
    return f"{field}_{language.replace('-', '_')}"


def add_translation_fields(*fields: str):
    """Class decorator for a ModelForm over a `Translatable` model: one optional text field per
    field and translation language, declared (so admin `fields` and modelform_factory see them)."""

    def decorate(form_class: type[forms.ModelForm]) -> type[forms.ModelForm]:
        model = form_class._meta.model
        for language in translation_languages():
            language_name = translation.get_language_info(language)["name_translated"]
            for field in fields:
                model_field = model._meta.get_field(field)
                widget = forms.Textarea(attrs={"rows": 2}) if isinstance(model_field, models.TextField) else None
                form_field = forms.CharField(
                    label=capfirst(format_lazy(_("{field} ({language})"), field=model_field.verbose_name,
                                               language=language_name)),
                    required=False, max_length=model_field.max_length, widget=widget,
                    help_text=_("Shown in that language instead of the text above; empty: the text above. "
                                "Changing the text above without this drops it."))
                name = translation_field_name(field, language)
                form_class.base_fields[name] = form_field
                form_class.declared_fields[name] = form_field
        form_class.translation_fields = fields
        return form_class

    return decorate


def dropped_translations_message(form: forms.Form) -> str:
    """What a page tells the user after a save that dropped translations ("" when none was)."""
    dropped = getattr(form, "dropped_translations", None)
    if not dropped:
        return ""
    return _("The text changed, so its translation was removed: %(fields)s. Enter a new translation "
             "if the page should not show the new text.") % {"fields": ", ".join(dropped)}


class TranslationsFormMixin:
    """Reads and writes the fields of `add_translation_fields` to `instance.translations`."""

    translation_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dropped_translations: list[str] = []
        stored = getattr(self.instance, "translations", None) or {}
        for language in translation_languages():
            texts = stored.get(language) or {}
            for field in self.translation_fields:
                self.initial.setdefault(translation_field_name(field, language), texts.get(field, ""))

    @property
    def translation_bound_fields(self) -> dict[str, list[forms.BoundField]]:
        """{field: [its translation fields]}, for templates that put each text next to its translations."""
        return {field: [self[translation_field_name(field, language)] for language in translation_languages()
                        if translation_field_name(field, language) in self.fields]
                for field in self.translation_fields}

    def clean(self):
        """Replace the per-language fields in cleaned_data by the model's `translations`."""
        data = super().clean()
        translations = {k: dict(v) for k, v in (getattr(self.instance, "translations", None) or {}).items()}
        for language in translation_languages():
            texts = translations.setdefault(language, {})
            for field in self.translation_fields:
                name = translation_field_name(field, language)
                if name not in self.fields:
                    continue
                value = (data.pop(name, "") or "").strip()
                if value and self.instance.pk and field in self.changed_data and name not in self.changed_data:
                    # The text changed and its translation did not: it may no longer mean the same.
                    value = ""
                    self.dropped_translations.append(str(self.fields[name].label))
                if value:
                    texts[field] = value
                else:
                    texts.pop(field, None)
            if not texts:
                del translations[language]
        data["translations"] = translations
        return data

    def _post_clean(self):
        if "translations" in self.cleaned_data:
            self.instance.translations = self.cleaned_data["translations"]
        super()._post_clean()
