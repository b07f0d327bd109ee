from rest_framework.views import APIView


class FeedbackCreateApi(APIView):
    required_scope = "customers:write"
