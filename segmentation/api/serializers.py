from rest_framework import serializers

from ..models import Membership


class CustomerTierSerializer(serializers.Serializer):
    """One entry per dimension: the customer's tier, since when, VIP flag and service level."""

    dimension = serializers.CharField(source="dimension.slug")
    tier = serializers.CharField(source="tier.slug")
    tier_name = serializers.CharField(source="tier.name")
    since = serializers.DateTimeField()
    is_vip = serializers.BooleanField(source="tier.is_vip")
    service_level = serializers.CharField(source="tier.service_level")
    overridden = serializers.BooleanField()

    class Meta:
        model = Membership


class TierCountSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    is_vip = serializers.BooleanField()
    colour = serializers.CharField()
    service_level = serializers.CharField()
    customers = serializers.IntegerField()


class DimensionSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    kind = serializers.CharField()
    tiers = TierCountSerializer(many=True, source="tiers.all")


class SegmentSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    rule = serializers.JSONField()
    customers = serializers.IntegerField(allow_null=True, help_text="Customers the rule matches now; null when the "
                                         "rule no longer compiles (see error).")
    error = serializers.CharField(help_text="Empty, or why the rule no longer compiles (for example a tier it names "
                                  "was removed).")
