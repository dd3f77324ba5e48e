"""A user's own notifications: list and acknowledge."""
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from city_ops.core.permissions import IsCrewOrDispatcher

from .models import Notification
from .services import notification_acknowledge


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "topic", "level", "subject", "body", "source_ref", "created_at", "requires_ack",
                  "acknowledged_at"]


class NotificationListView(generics.ListAPIView):
    permission_classes = [IsAuthenticated, IsCrewOrDispatcher]
    serializer_class = NotificationSerializer

    def get_queryset(self):
        return Notification.objects.restrict(self.request.user, "view").filter(recipient=self.request.user)


class NotificationAckView(APIView):
    permission_classes = [IsAuthenticated, IsCrewOrDispatcher]

    @extend_schema(request=None, responses={200: NotificationSerializer})
    def post(self, request, pk: int):
        n = Notification.objects.filter(pk=pk, recipient=request.user).first()
        if n is None:
            return Response({"detail": "no such notification"}, status=404)
        return Response(NotificationSerializer(notification_acknowledge(notification=n, user=request.user)).data)
