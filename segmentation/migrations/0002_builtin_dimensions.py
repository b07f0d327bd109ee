"""Install the built-in dimensions and tiers (segmentation/defaults.py). All editable."""
from django.db import migrations


def install(apps, schema_editor):
    from segmentation.defaults import DIMENSIONS

    Dimension = apps.get_model("segmentation", "Dimension")
    Tier = apps.get_model("segmentation", "Tier")
    for slug, name, order, description, tiers, fallback in DIMENSIONS:
        dim, _ = Dimension.objects.get_or_create(slug=slug, defaults={"name": name, "order": order, "description": description})
        for i, (t_slug, t_name, rule, colour, is_vip, service_level, t_description) in enumerate(tiers):
            Tier.objects.get_or_create(dimension=dim, slug=t_slug, defaults={
                "name": t_name, "order": (i + 1) * 10, "rule": rule, "colour": colour, "is_vip": is_vip,
                "service_level": service_level, "description": t_description})
        dim.fallback_tier = Tier.objects.get(dimension=dim, slug=fallback)
        dim.save(update_fields=["fallback_tier"])


def uninstall(apps, schema_editor):
    from segmentation.defaults import DIMENSIONS

    Dimension = apps.get_model("segmentation", "Dimension")
    Dimension.objects.filter(slug__in=[d[0] for d in DIMENSIONS]).update(fallback_tier=None)
    Dimension.objects.filter(slug__in=[d[0] for d in DIMENSIONS]).delete()


class Migration(migrations.Migration):
    dependencies = [("segmentation", "0001_initial")]
    operations = [migrations.RunPython(install, uninstall)]
