"""Staff roles as groups: Operations, Customer service, Analyst.

The groups are created by a data migration (accounts 0003) and their permissions are kept in
step with the models of every Stratum app after each migrate, so that models added by later
issues (tiers, campaigns, coupons ...) are covered without another hand-written migration.
"""
from __future__ import annotations

from django.db.models import Q

OPERATIONS = "Operations"
CUSTOMER_SERVICE = "Customer service"
ANALYST = "Analyst"
ROLES = (OPERATIONS, CUSTOMER_SERVICE, ANALYST)

STRATUM_APPS = ("accounts", "segmentation", "recommendations", "campaigns", "core", "django_celery_beat")

# Customer service sees customers, their behaviour, tiers and coupons; may pin tiers and issue
# goodwill coupons once those models exist. Codenames that do not exist yet are skipped.
CUSTOMER_SERVICE_CODENAMES = (
    "view_customer", "view_event", "view_feedback", "view_item",
    "view_dimension", "view_tier", "view_membership", "view_tierchange", "view_customerfeatures",
    "view_tieroverride", "add_tieroverride", "change_tieroverride",
    "view_coupon", "issue_goodwill_coupon", "view_message",
    "view_customer_pii",
)


def role_permissions(role: str, permission_model):
    stratum = Q(content_type__app_label__in=STRATUM_APPS)
    if role == OPERATIONS:
        return permission_model.objects.filter(stratum)
    if role == ANALYST:
        return permission_model.objects.filter(stratum, codename__startswith="view_").exclude(codename="view_customer_pii")
    if role == CUSTOMER_SERVICE:
        return permission_model.objects.filter(stratum, codename__in=CUSTOMER_SERVICE_CODENAMES)
    raise ValueError(f"unknown role {role!r}")


def sync_roles(group_model, permission_model) -> None:
    for role in ROLES:
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set(role_permissions(role, permission_model))


def sync_roles_after_migrate(sender, using="default", apps=None, **kwargs) -> None:
    from django.contrib.auth.models import Group, Permission

    if sender.label != "accounts":
        return
    # post_migrate runs once per app; permissions of all apps exist by the time accounts' hook
    # runs only if it runs last, so create them all first.
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    sync_roles(Group, Permission)
