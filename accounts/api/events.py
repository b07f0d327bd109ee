from rest_framework.views import APIView


class EventIngestApi(APIView):
    required_scope = "events:write"
