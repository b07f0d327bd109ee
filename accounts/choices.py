from django.db import models
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    SIGNUP = "signup", _("Sign-up")
    LOGIN = "login", _("Login")
    VIEW = "view", _("View")
    CLICK = "click", _("Click")
    ADD_TO_CART = "add_to_cart", _("Add to cart")
    PURCHASE = "purchase", _("Purchase")
    REFUND = "refund", _("Refund")
    SEARCH = "search", _("Search")
    RATE = "rate", _("Rating")
    REVIEW = "review", _("Review")
    EMAIL_OPEN = "email_open", _("E-mail opened")
    EMAIL_CLICK = "email_click", _("E-mail clicked")
    COUPON_REDEEM = "coupon_redeem", _("Coupon redeemed")
    REC_IMPRESSION = "rec_impression", _("Recommendation shown")
    REC_CLICK = "rec_click", _("Recommendation clicked")


class Platform(models.TextChoices):
    WEB = "web", _("Web")
    IOS = "ios", _("iOS")
    ANDROID = "android", _("Android")
    STORE = "store", _("Store")
    EMAIL = "email", _("E-mail")
    IMPORT = "import", _("Import")


class ConsentSource(models.TextChoices):
    API = "api", _("Storefront API")
    IMPORT = "import", _("Import")
    STAFF = "staff", _("Staff")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribe link")


class SentimentLabel(models.TextChoices):
    POSITIVE = "positive", _("Positive")
    NEUTRAL = "neutral", _("Neutral")
    NEGATIVE = "negative", _("Negative")


class ApiScope(models.TextChoices):
    EVENTS_WRITE = "events:write", _("Write events")
    CUSTOMERS_READ = "customers:read", _("Read customers")
    CUSTOMERS_WRITE = "customers:write", _("Write customers")
    CATALOG_WRITE = "catalog:write", _("Write catalog")
    RECOMMENDATIONS_READ = "recommendations:read", _("Read recommendations")
    COUPONS_REDEEM = "coupons:redeem", _("Validate and redeem coupons")


class ImportFormat(models.TextChoices):
    CDNOW = "cdnow", "CDNOW"
    MOVIELENS = "movielens", "MovieLens"
    CSV = "csv", "CSV"
    DEMO = "demo", _("Demo store")


class JobStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
