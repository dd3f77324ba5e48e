"""POST /api/copilot/: ask in a sentence; confirm or cancel a conversation's pending proposal."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from city_ops.core.permissions import IsCrewOrDispatcher
from city_ops.core.query import BIGINT_MAX
from city_ops.core.throttling import RunStartThrottle

from ..models import Call, Engine
from ..services import ConversationError, copilot_ask, copilot_cancel, copilot_confirm


class AskSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, max_length=2000, help_text="the request, zh-Hans or English")
    conversation = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX,
                                            help_text="continue this conversation (yours)")
    confirm = serializers.BooleanField(required=False, default=False,
                                       help_text="run the conversation's pending proposal, and nothing else")
    cancel = serializers.BooleanField(required=False, default=False, help_text="drop the pending proposal")

    def validate(self, attrs):
        if attrs["confirm"] and attrs["cancel"]:
            raise serializers.ValidationError("confirm or cancel, not both")
        if (attrs["confirm"] or attrs["cancel"]) and not attrs.get("conversation"):
            raise serializers.ValidationError({"conversation": "name the conversation whose proposal this answers"})
        if not (attrs["confirm"] or attrs["cancel"]) and not attrs.get("text", "").strip():
            raise serializers.ValidationError({"text": "say what you need"})
        return attrs


class CallSerializer(serializers.Serializer):
    tool = serializers.CharField(help_text="dotted name, e.g. bus.plan")
    args = serializers.JSONField()
    writes = serializers.BooleanField()
    status = serializers.ChoiceField(choices=Call.Status.choices)
    result = serializers.JSONField(allow_null=True, help_text="a proposal's {'proposal': sentence}, or the data")
    reason = serializers.CharField(allow_blank=True, help_text="why it was refused or failed")


class LinkSerializer(serializers.Serializer):
    label = serializers.CharField()
    url = serializers.CharField()


class ReplySerializer(serializers.Serializer):
    conversation = serializers.IntegerField()
    engine = serializers.ChoiceField(choices=Engine.choices)
    calls = CallSerializer(many=True)
    answer = serializers.CharField()
    links = LinkSerializer(many=True)
    fallback_reason = serializers.CharField(required=False, help_text="why the grammar engine took over")


class CopilotView(APIView):
    """Reads run at once; writes come back `proposed` and run only on `{"conversation": id, "confirm": true}`
    before they expire. Tools run as the user: a crew member's request can do no more than they could."""

    permission_classes = [IsCrewOrDispatcher]
    throttle_classes = [RunStartThrottle]

    @extend_schema(request=AskSerializer, responses={200: ReplySerializer})
    def post(self, request):
        s = AskSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        try:
            if d["confirm"]:
                reply = copilot_confirm(user=request.user, conversation_id=d["conversation"])
            elif d["cancel"]:
                reply = copilot_cancel(user=request.user, conversation_id=d["conversation"])
            else:
                reply = copilot_ask(user=request.user, text=d["text"].strip(), conversation_id=d.get("conversation"))
        except ConversationError as exc:
            return Response({"detail": str(exc)}, status=404 if exc.not_found else 400)
        return Response(reply.as_json())
