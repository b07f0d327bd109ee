from django.urls import path

from . import views

urlpatterns = [
    path("customers/<str:external_id>/tiers/", views.CustomerTiersApi.as_view(), name="api-customer-tiers"),
    path("dimensions/", views.DimensionListApi.as_view(), name="api-dimensions"),
    path("segments/", views.SegmentListApi.as_view(), name="api-segments"),
]
