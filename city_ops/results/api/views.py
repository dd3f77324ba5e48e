"""The results statement over the API: the period's draft (or an issued version) as JSON, or as CSV with
`?format=csv`. Dispatchers and admins only."""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from city_ops.core.permissions import IsDispatcher

from ..export import statement_csv
from ..period import MAX_DAYS, previous_month
from ..selectors import statement_build, statement_issued_get


class StatementCsvRenderer(BaseRenderer):
    """`?format=csv`: the statement as one row per agent and headline (export.statement_csv)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if not isinstance(data, dict) or "agents" not in data:  # an error body: the reason, as text
            return "\n".join(f"{k}: {v}" for k, v in (data or {}).items())
        return statement_csv(statement=data)


class StatementQuerySerializer(serializers.Serializer):
    # `from` is a Python keyword: the field is declared under another name and mapped below.
    date_from = serializers.DateField(required=False, help_text="first day, YYYY-MM-DD (default: the previous "
                                                                 "calendar month)")
    to = serializers.DateField(required=False, help_text="last day, YYYY-MM-DD (inclusive)")
    version = serializers.IntegerField(required=False, min_value=1,
                                       help_text="an issued version of the period instead of the draft")

    def validate(self, attrs):
        given = [k for k in ("date_from", "to") if k in attrs]
        if not given:
            attrs["date_from"], attrs["to"] = previous_month()
        elif len(given) == 1:
            raise serializers.ValidationError("give both from and to, or neither (the previous calendar month)")
        if attrs["to"] < attrs["date_from"]:
            raise serializers.ValidationError(f"to ({attrs['to']}) is before from ({attrs['date_from']})")
        if (attrs["to"] - attrs["date_from"]).days + 1 > MAX_DAYS:
            raise serializers.ValidationError(f"a statement covers at most {MAX_DAYS} days")
        return attrs


class StatementView(APIView):
    """The results statement of a period: each agent's headlines against their counterfactual baselines,
    with the money of each difference at the city's unit costs and the runs every figure sums."""

    permission_classes = [IsDispatcher]
    renderer_classes = [JSONRenderer, StatementCsvRenderer]

    @extend_schema(
        parameters=[OpenApiParameter("from", OpenApiTypes.DATE, description="first day (inclusive)"),
                    OpenApiParameter("to", OpenApiTypes.DATE, description="last day (inclusive)"),
                    OpenApiParameter("version", OpenApiTypes.INT, description="an issued version"),
                    OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"])],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT})
    def get(self, request):
        query = {k: v for k, v in request.query_params.items() if k in ("to", "version")}
        if "from" in request.query_params:
            query["date_from"] = request.query_params["from"]
        s = StatementQuerySerializer(data=query)
        s.is_valid(raise_exception=True)
        date_from, date_to = s.validated_data["date_from"], s.validated_data["to"]
        if (version := s.validated_data.get("version")) is None:
            return Response(statement_build(date_from=date_from, date_to=date_to))
        issued = statement_issued_get(date_from=date_from, date_to=date_to, version=version, user=request.user)
        if issued is None:
            raise Http404(f"no issued version {version} of {date_from}..{date_to}")
        return Response(issued.content)
