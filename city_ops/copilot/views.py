"""The copilot in the console: the Ask box on every page (base template) posts here, the conversation page
shows each request with its answer, the proposal card with Confirm / Cancel, and links to what it touched.
Thin: each view checks the role and calls one service. The box's script (static/copilot/ask.js) talks to
the API instead and shows the reply in place; these views are the same thing without script."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from city_ops.console.decorators import role_required
from city_ops.core.query import whole_number
from city_ops.core.roles import Role
from city_ops.core.throttling import run_start_limited

from .models import Call, Conversation
from .services import ConversationError, copilot_ask, copilot_cancel, copilot_confirm

ROLES = (Role.DISPATCHER, Role.FIELD_CREW)
MAX_TEXT = 2000


@role_required(*ROLES)
@require_POST
@run_start_limited
def ask(request):
    text = request.POST.get("text", "").strip()[:MAX_TEXT]
    if not text:
        messages.error(request, _("Say what you need."))
        return redirect(request.META.get("HTTP_REFERER") or "console:home")
    conversation = whole_number(request.POST.get("conversation"), low=1)
    try:
        reply = copilot_ask(user=request.user, text=text, conversation_id=conversation)
    except ConversationError:
        reply = copilot_ask(user=request.user, text=text)  # a stale id from another page: start afresh
    return redirect("copilot:conversation", pk=reply.conversation)


@role_required(*ROLES)
def conversation(request, pk: int):
    conv = get_object_or_404(Conversation.objects.restrict(request.user, "view"), pk=pk)
    turns = conv.turns.prefetch_related("calls")
    pending = Call.objects.restrict(request.user, "view").filter(turn__conversation=conv,
                                                                 status=Call.Status.PROPOSED).exists()
    return render(request, "copilot/conversation.html", {"conversation": conv, "turns": turns, "pending": pending})


@role_required(*ROLES)
@require_POST
@run_start_limited
def decide(request, pk: int):
    conv = get_object_or_404(Conversation.objects.restrict(request.user, "change"), pk=pk)
    decide_with = copilot_confirm if request.POST.get("decision") == "confirm" else copilot_cancel
    try:
        decide_with(user=request.user, conversation_id=conv.pk)
    except ConversationError as exc:
        messages.error(request, str(exc))
    return redirect("copilot:conversation", pk=conv.pk)
