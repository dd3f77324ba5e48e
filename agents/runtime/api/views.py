"""Agent runs over the API: list and read (dispatchers), start a run by hand (dispatchers), KPI results."""
from __future__ import annotations

import datetime as dt

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from city_ops.core.permissions import IsDispatcher
from city_ops.core.throttling import RunStartThrottle
from city_ops.core.timeutil import city_today, date_parse

from ..models import AgentRun, AgentRunAttempt, RunKpi
from ..registry import UnknownAgentError, agent_names, agents_all
from ..selectors import results_daily
from ..services import RunParamsError, agent_run_request


class KpiSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunKpi
        fields = ["name", "label", "value", "unit", "baseline"]


class AgentRunAttemptSerializer(serializers.ModelSerializer):
    duration_s = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = AgentRunAttempt
        fields = ["number", "worker", "started_at", "ended_at", "duration_s", "outcome"]


class AgentRunSerializer(serializers.ModelSerializer):
    kpis = KpiSerializer(many=True, read_only=True)
    duration_s = serializers.FloatField(read_only=True, allow_null=True)
    attempt_history = AgentRunAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = AgentRun
        fields = ["id", "agent", "run_date", "trigger", "reason", "params", "status", "created_at", "started_at",
                  "finished_at", "duration_s", "attempts", "attempt_history", "error", "summary", "progress_done",
                  "progress_total", "progress_message", "kpis"]


class AgentRunCreateSerializer(serializers.Serializer):
    agent = serializers.CharField()
    date = serializers.CharField(required=False, help_text="YYYY-MM-DD in the city's time zone")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300)
    params = serializers.DictField(required=False)

    def validate_agent(self, value):
        if value not in agent_names():
            raise serializers.ValidationError(f"unknown agent {value!r}; registered: {', '.join(agent_names())}")
        return value

    def validate_date(self, value):
        try:
            return date_parse(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class AgentRunListView(generics.ListAPIView):
    permission_classes = [IsDispatcher]
    serializer_class = AgentRunSerializer

    def get_queryset(self):
        qs = AgentRun.objects.restrict(self.request.user, "view").prefetch_related("kpis", "attempt_history")
        if agent := self.request.query_params.get("agent"):
            qs = qs.filter(agent=agent)
        return qs

    throttle_classes = [RunStartThrottle]

    @extend_schema(request=AgentRunCreateSerializer, responses={201: AgentRunSerializer, 202: AgentRunSerializer})
    def post(self, request):
        """Start a run: 201 with the new run, or 202 with the identical run already pending or running."""
        s = AgentRunCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        try:
            run, created = agent_run_request(
                agent=s.validated_data["agent"], run_date=s.validated_data.get("date"),
                trigger=AgentRun.Trigger.MANUAL, reason=s.validated_data.get("reason", ""),
                params=s.validated_data.get("params") or {}, user=request.user)
        except UnknownAgentError as exc:
            return Response({"agent": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except RunParamsError as exc:
            return Response({"params": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
        return Response(AgentRunSerializer(run).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_202_ACCEPTED)


class AgentRunDetailView(generics.RetrieveAPIView):
    permission_classes = [IsDispatcher]
    serializer_class = AgentRunSerializer

    def get_queryset(self):
        return AgentRun.objects.restrict(self.request.user, "view").prefetch_related("kpis", "attempt_history")


class AgentListView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response([{"name": a.name, "label": a.label or a.name, "description": a.description,
                          "reads": list(a.reads), "queue": a.queue.value, "events": list(a.events)}
                         for a in agents_all()])


class ResultsView(APIView):
    """KPIs per agent per day: a daily agent's figure is that of its approved plan (else its nightly run),
    never a sum over re-plans (selectors.kpis_counted); from `days` back (default 30, at most 366) to the
    latest plan (tomorrow's, planned tonight, included)."""

    permission_classes = [IsDispatcher]

    @extend_schema(parameters=[OpenApiParameter("days", OpenApiTypes.INT), OpenApiParameter("agent", OpenApiTypes.STR)],
                   responses={200: dict})
    def get(self, request):
        try:
            days = max(1, min(int(request.query_params.get("days", 30)), 366))
        except ValueError:
            return Response({"days": "a whole number of days"}, status=status.HTTP_400_BAD_REQUEST)
        rows = results_daily(date_from=city_today() - dt.timedelta(days=days - 1), date_to=dt.date.max,
                             agent=request.query_params.get("agent") or None)
        rows.sort(key=lambda r: (-r["run_date"].toordinal(), r["agent"], r["name"]))
        return Response([{k: r[k] for k in ("agent", "run_date", "name", "unit", "value", "baseline", "run_ids")}
                         for r in rows[:2000]])
