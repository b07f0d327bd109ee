from rest_framework.views import APIView


class CustomerDetailApi(APIView):
    required_scope = {"GET": "customers:read", "PUT": "customers:write"}


class CustomerExportApi(APIView):
    required_scope = "customers:read"


class CustomerEraseApi(APIView):
    required_scope = "customers:write"
