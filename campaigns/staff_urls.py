"""Staff pages of campaigns, included at /campaigns/ (namespace "campaigns"; the public tracking
URLs at /t/ are "campaigns_public")."""
from django.urls import path

from . import staff_views as views

app_name = "campaigns"

urlpatterns = [
    path("", views.CampaignListView.as_view(), name="campaign-list"),
    path("progress/", views.CampaignProgressView.as_view(), name="progress"),
    path("new/", views.CampaignCreateView.as_view(), name="campaign-create"),
    path("estimate/", views.AudienceEstimateView.as_view(), name="estimate"),
    path("strategies/", views.StrategyFiguresView.as_view(), name="strategies"),
    path("outbox/", views.OutboxListView.as_view(), name="outbox"),
    path("outbox/<str:entry_id>/", views.OutboxMessageView.as_view(), name="outbox-message"),
    path("customers/<int:pk>/goodwill-coupon/", views.GoodwillCouponCreateView.as_view(), name="goodwill-coupon"),
    path("<int:pk>/", views.CampaignDetailView.as_view(), name="detail"),
    path("<int:pk>/preview/", views.CampaignPreviewView.as_view(), name="preview"),
    path("<int:pk>/test-send/", views.CampaignTestSendView.as_view(), name="test-send"),
    path("<int:pk>/results/", views.CampaignResultsView.as_view(), name="results"),
    path("<int:pk>/results.json", views.CampaignResultsDataView.as_view(), name="results-data"),
    path("<int:pk>/<slug:action>/", views.CampaignActionView.as_view(), name="action"),
]
