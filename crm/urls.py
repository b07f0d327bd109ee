from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from crm.core.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("crm.api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("customers/", include("accounts.urls")),
    path("segments/", include("segmentation.urls")),
    path("recommendations/", include("recommendations.urls")),
    path("t/", include("campaigns.urls")),
    path("campaigns/", include("campaigns.staff_urls")),
    path("", include("crm.core.urls")),
]

admin.site.site_header = _("Stratum administration")
admin.site.site_title = _("Stratum admin")
