from django.urls import path

from . import views

app_name = "recommendations"

urlpatterns = [
    path("", views.ModelListView.as_view(), name="overview"),
    path("models/train/", views.ModelTrainView.as_view(), name="train"),
    path("models/ready/refresh/", views.ReadyRefreshView.as_view(), name="ready-refresh"),
    path("models/<int:pk>/", views.ModelDetailView.as_view(), name="model-detail"),
    path("models/<int:pk>/status/", views.ModelStatusView.as_view(), name="model-status"),
    path("models/<int:pk>/activate/", views.ModelActivateView.as_view(), name="activate"),
    path("rules/", views.TierRuleListView.as_view(), name="rules"),
    path("rules/<int:pk>/", views.TierRuleChangeView.as_view(), name="rule-change"),
    path("experiments/", views.ExperimentListView.as_view(), name="experiments"),
    path("experiments/<int:pk>/", views.ExperimentDetailView.as_view(), name="experiment-detail"),
    path("experiments/<int:pk>/stop/", views.ExperimentStopView.as_view(), name="experiment-stop"),
]
