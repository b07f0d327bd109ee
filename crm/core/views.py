"""Staff web UI: access rules shared by every staff page, login, and the overview page."""
from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import AccessMixin, PermissionRequiredMixin
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.utils import timezone
from django.views.generic import TemplateView

from accounts.forms import StaffAuthenticationForm
from accounts.selectors import overview_figures

from .dashboard import dashboard_campaigns, dashboard_get
from .health import health_status

HEALTH_CACHE_KEY = "ui:health"
HEALTH_CACHE_SECONDS = 15


class StaffRequiredMixin(AccessMixin):
    """Every staff page: anonymous users go to the login page, signed-in non-staff get 403."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class StaffPermissionRequiredMixin(StaffRequiredMixin, PermissionRequiredMixin):
    """A staff page that also needs model permissions (`permission_required`); 403 without them."""


def sorted_page(request, queryset, sorts: dict[str, tuple[str, ...]], default: str,
                per_page: int) -> tuple[Page, str]:
    """A staff list's page: ?sort= picks an ordering from `sorts` (an unknown one falls back to
    `default`), ?page= the page. Returns the page and the sort in force (for sort_header)."""
    sort = request.GET.get("sort") or default
    if sort not in sorts:
        sort = default
    page = Paginator(queryset.order_by(*sorts[sort]), per_page).get_page(request.GET.get("page"))
    return page, sort


class StaffLoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = StaffAuthenticationForm
    redirect_authenticated_user = True


class StaffLogoutView(auth_views.LogoutView):
    """POST only (Django 5): the user menu posts a form with the CSRF token."""


def _health() -> tuple[bool, dict]:
    # The worker ping can take up to a second when no worker answers: keep it off every page view.
    cached = cache.get(HEALTH_CACHE_KEY)
    if cached is None:
        cached = health_status()
        cache.set(HEALTH_CACHE_KEY, cached, HEALTH_CACHE_SECONDS)
    return cached


class HomeView(StaffRequiredMixin, TemplateView):
    template_name = "core/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        healthy, health = _health()
        context.update(
            figures=overview_figures(now=timezone.now()),
            healthy=healthy,
            health=health,
            can_view_customers=self.request.user.has_perm("accounts.view_customer"),
            can_view_imports=self.request.user.has_perm("accounts.view_dataimport"),
        )
        user = self.request.user
        if user.has_perm("segmentation.view_dimension"):
            dashboard = dashboard_get()
            context.update(
                dashboard=dashboard,
                sankeys={m["slug"]: m["sankey"] for m in dashboard.migrations if m["total"]},
                can_view_segmentation=True,
                can_view_changes=user.has_perm("segmentation.view_tierchange"),
                can_view_features=user.has_perm("segmentation.view_customerfeatures"),
                can_view_runs=user.has_perm("segmentation.view_recomputerun"),
                can_view_models=user.has_perm("segmentation.view_predictivemodel"),
            )
        context["campaigns"] = dashboard_campaigns(user)
        return context


def login_locked_out(request, credentials=None, *args, **kwargs):
    """django-axes lockout response (AXES_LOCKOUT_CALLABLE): the login page with a clear message,
    HTTP 429. Nothing says whether the username exists."""
    from django.conf import settings
    from django.shortcuts import render
    from django.utils.translation import gettext

    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    form = StaffAuthenticationForm(request)
    message = gettext("Too many failed sign-in attempts. This account is locked on this device for %(minutes)s "
                      "minutes; try again later or ask an administrator to unlock it.") % {"minutes": minutes}
    return render(request, "registration/login.html", {"form": form, "locked_out": message}, status=429)
