"""Output shapes of the recommendations API (documentation; views return the service's dicts)."""
from __future__ import annotations

from rest_framework import serializers


class RecommendedItemSerializer(serializers.Serializer):
    item = serializers.CharField(help_text="The item's external id.")
    title = serializers.CharField()
    category = serializers.CharField()
    score = serializers.FloatField(help_text="Higher is better; comparable within one answer only.")
    position = serializers.IntegerField()
    reason = serializers.CharField(help_text="Why, for people: \"Because you bought X\", \"Popular with VIP customers\" ...")
    reason_code = serializers.ChoiceField(choices=["bought", "carted", "rated", "viewed", "for_you", "tier_popular",
                                                   "trending", "popular", "pinned", "similar", "same_category"])
    reason_item = serializers.CharField(allow_null=True, help_text="The external id of the item the reason names.")


class RecommendationsSerializer(serializers.Serializer):
    customer = serializers.CharField()
    rec_id = serializers.CharField(help_text="Send it back as properties.rec_id on rec_impression, rec_click events.")
    model = serializers.IntegerField()
    experiment = serializers.IntegerField(allow_null=True)
    arm = serializers.CharField(allow_null=True)
    strategy = serializers.ChoiceField(choices=["personalised", "mixed", "cold_start"])
    known_customer = serializers.BooleanField()
    items = RecommendedItemSerializer(many=True)


class SimilarItemsSerializer(serializers.Serializer):
    item = serializers.CharField()
    rec_id = serializers.CharField()
    model = serializers.IntegerField()
    items = RecommendedItemSerializer(many=True)


class PingSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
