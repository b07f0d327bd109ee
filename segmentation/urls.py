from django.urls import path

from . import views

app_name = "segmentation"

urlpatterns = [
    path("", views.DimensionListView.as_view(), name="overview"),
    path("tiers/<int:pk>/", views.TierDetailView.as_view(), name="tier"),
    path("preview/", views.RulePreviewView.as_view(), name="preview"),
    path("segments/", views.SegmentListView.as_view(), name="segment-list"),
    path("segments/new/", views.SegmentCreateView.as_view(), name="segment-create"),
    path("segments/<slug:slug>/", views.SegmentUpdateView.as_view(), name="segment-edit"),
    path("segments/<slug:slug>/delete/", views.SegmentDeleteView.as_view(), name="segment-delete"),
    path("runs/", views.RecomputeRunListView.as_view(), name="run-list"),
    path("runs/new/", views.RecomputeStartView.as_view(), name="recompute"),
    path("runs/<int:pk>/", views.RecomputeRunDetailView.as_view(), name="run-detail"),
    path("runs/<int:pk>/status/", views.RecomputeRunStatusView.as_view(), name="run-status"),
    path("models/", views.ModelListView.as_view(), name="models"),
    path("customers/<int:pk>/pins/", views.TierOverrideCreateView.as_view(), name="pin"),
    path("pins/<int:pk>/revoke/", views.TierOverrideRevokeView.as_view(), name="pin-revoke"),
]
