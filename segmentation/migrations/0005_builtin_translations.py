"""Simplified Chinese names, service levels and descriptions of the built-in dimensions and tiers
(segmentation/defaults.py ZH_HANS), stored in their `translations`.

A text gets its translation only while the row still holds the shipped English text: a tier staff
already renamed keeps showing its new name in every language. Translations already present are
kept. Reverse: nothing to undo (0004's reverse drops the column).
"""
from django.db import migrations

LANGUAGE = "zh-hans"


def _fill(row, shipped: dict[str, str], chinese: dict[str, str]) -> bool:
    texts = dict((row.translations or {}).get(LANGUAGE) or {})
    changed = False
    for field, text in chinese.items():
        if getattr(row, field) == shipped.get(field) and not texts.get(field):
            texts[field] = text
            changed = True
    if changed:
        row.translations = {**(row.translations or {}), LANGUAGE: texts}
    return changed


def install(apps, schema_editor):
    from segmentation.defaults import DIMENSIONS, ZH_HANS

    Dimension = apps.get_model("segmentation", "Dimension")
    Tier = apps.get_model("segmentation", "Tier")
    for slug, name, _order, description, tiers, _fallback in DIMENSIONS:
        dim = Dimension.objects.filter(slug=slug).first()
        if dim is None:
            continue  # deleted by staff
        if _fill(dim, {"name": name, "description": description}, ZH_HANS.get(slug, {})):
            dim.save(update_fields=["translations"])
        rows = {t.slug: t for t in Tier.objects.filter(dimension=dim)}
        for t_slug, t_name, _rule, _colour, _vip, service_level, t_description in tiers:
            tier = rows.get(t_slug)
            shipped = {"name": t_name, "service_level": service_level, "description": t_description}
            if tier is not None and _fill(tier, shipped, ZH_HANS.get((slug, t_slug), {})):
                tier.save(update_fields=["translations"])


class Migration(migrations.Migration):
    dependencies = [("segmentation", "0004_dimension_tier_translations")]
    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
