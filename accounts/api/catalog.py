from rest_framework.views import APIView


class ItemUpsertApi(APIView):
    required_scope = "catalog:write"
