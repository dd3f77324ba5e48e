"""The copilot's writes: ask (a request becomes a turn of a conversation, its reads run, its writes
proposed), confirm (the conversation's pending proposals run, once), cancel. Every proposal, confirmation,
execution, refusal and cancellation is an AuditEntry naming the conversation and the engine."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from city_ops.core.services import audit_record
from city_ops.core.timeutil import city_today

from .answer import answer_compose, links_of, request_language
from .calls import ToolCall
from .executor import DONE, PROPOSED, REFUSED, CallOutcome, call_execute, call_prepare
from .grammar import grammar_parse
from .llm import LlmUnavailable, llm_run
from .models import Call, Conversation, Engine, Turn

AUDIT_ACTIONS = {DONE: "copilot.executed", PROPOSED: "copilot.proposed", REFUSED: "copilot.refused",
                 "failed": "copilot.failed"}


class ConversationError(Exception):
    """No such conversation for this user, or nothing in it to confirm (the API's 404 / 400)."""

    def __init__(self, message: str, *, not_found: bool = False):
        super().__init__(message)
        self.not_found = not_found


@dataclass
class Reply:
    conversation: int
    engine: str
    calls: list[CallOutcome]
    answer: str
    links: list[dict] = field(default_factory=list)
    fallback_reason: str = ""

    def as_json(self, *, conversation: bool = True) -> dict:
        """The reply's JSON: `engine`, `calls`, `answer`, `links` (+ `fallback_reason` after a fallback; the
        API adds `conversation`, the id to confirm with)."""
        out = {"engine": self.engine, "calls": [c.as_json() for c in self.calls], "answer": self.answer,
               "links": self.links}
        if self.fallback_reason:
            out["fallback_reason"] = self.fallback_reason
        if conversation:
            out["conversation"] = self.conversation
        return out


def copilot_engine_run(*, user, text: str, today: dt.date, language: str) -> tuple[str, list[CallOutcome], str, str]:
    """(engine, outcomes, the model's answer or "", fallback reason or ""): the model where an endpoint is
    configured, the grammar where none is or where the model failed (its reads are simply not used)."""
    fallback = ""
    if settings.COPILOT_LLM_BASE_URL:
        try:
            outcomes, answer = llm_run(user=user, text=text, today=today, language=language)
            return Engine.LLM, outcomes, answer, ""
        except LlmUnavailable as exc:
            fallback = str(exc)
    outcomes = [call_prepare(user=user, call=call) for call in grammar_parse(text=text, today=today)]
    return Engine.GRAMMAR, outcomes, "", fallback


def _audit(*, user, call: Call, action: str, engine: str) -> None:
    audit_record(action=action, obj=call, actor=user, changes={
        "conversation": call.turn.conversation_id, "engine": engine, "tool": call.tool, "args": call.args,
        "status": call.status})


def _supersede(*, user, conversation: Conversation) -> None:
    """A new request ends the conversation's pending proposals: a confirmation then runs only what the user
    saw last."""
    for call in Call.objects.select_for_update().filter(turn__conversation=conversation, status=PROPOSED):
        _decide(user=user, call=call, outcome=None, reason=_("Superseded by a newer request; not run."))
        _audit(user=user, call=call, action="copilot.cancelled", engine=conversation.engine)


def _own(*, user, conversation_id: int, lock: bool = False) -> Conversation:
    qs = Conversation.objects.restrict(user, "change")
    conversation = (qs.select_for_update() if lock else qs).filter(pk=conversation_id).first()
    if conversation is None:
        raise ConversationError(_("There is no conversation #%(id)d of yours.") % {"id": conversation_id},
                                not_found=True)
    return conversation


def _conversation(*, user, conversation_id: int | None, engine: str) -> Conversation:
    if conversation_id is None:
        return Conversation.objects.create(user=user, engine=engine)
    conversation = _own(user=user, conversation_id=conversation_id, lock=True)
    _supersede(user=user, conversation=conversation)
    conversation.engine = engine
    conversation.save(update_fields=["engine"])
    return conversation


@transaction.atomic
def _turn_record(*, user, conversation_id: int | None, text: str, engine: str, outcomes: list[CallOutcome],
                 answer: str, fallback: str) -> Turn:
    conversation = _conversation(user=user, conversation_id=conversation_id, engine=engine)
    turn = Turn.objects.create(conversation=conversation, text=text, answer=answer, engine=engine,
                               fallback_reason=fallback[:300])
    expires = timezone.now() + dt.timedelta(seconds=settings.COPILOT_PROPOSAL_TTL_S)
    for o in outcomes:
        call = Call.objects.create(turn=turn, tool=o.tool, args=o.args, writes=o.writes, status=o.status,
                                   result=o.result, reason=o.reason, links=o.links, summary=o.summary,
                                   expires_at=expires if o.status == PROPOSED else None)
        _audit(user=user, call=call, action=AUDIT_ACTIONS[o.status], engine=engine)
    return turn


def copilot_ask(*, user, text: str, conversation_id: int | None = None, execute: bool = False) -> Reply:
    """Answer a request: its reads run, its writes proposed (and, with `execute` - the command line's
    `--execute`, which is the user's confirmation - run at once). ConversationError for a conversation
    that is not the user's."""
    if conversation_id is not None:
        _own(user=user, conversation_id=conversation_id)  # before anything runs on its behalf
    language = request_language(text)
    with translation.override(language):
        engine, outcomes, model_answer, fallback = copilot_engine_run(user=user, text=text, today=city_today(),
                                                                      language=language)
        answer = model_answer or answer_compose(outcomes)
    turn = _turn_record(user=user, conversation_id=conversation_id, text=text, engine=engine, outcomes=outcomes,
                        answer=answer, fallback=fallback)
    if execute and any(o.status == PROPOSED for o in outcomes):
        confirmed = iter(copilot_confirm(user=user, conversation_id=turn.conversation_id).calls)
        outcomes = [next(confirmed) if o.status == PROPOSED else o for o in outcomes]
        with translation.override(language):
            answer = answer_compose(outcomes)  # the model's words were about proposals
    return Reply(conversation=turn.conversation_id, engine=engine, calls=outcomes, answer=answer,
                 links=links_of(outcomes), fallback_reason=fallback)


def _decide(*, user, call: Call, outcome: CallOutcome | None, reason: str = "") -> None:
    """Store what became of a proposal: the outcome of running it, or a refusal with `reason`."""
    if outcome is None:
        call.status, call.reason, call.summary = REFUSED, reason, reason
    else:
        call.status, call.result, call.reason = outcome.status, outcome.result, outcome.reason
        call.links, call.summary = outcome.links, outcome.summary
    call.decided_at = timezone.now()
    call.save(update_fields=["status", "result", "reason", "links", "summary", "decided_at"])


def _outcome(call: Call) -> CallOutcome:
    return CallOutcome(tool=call.tool, args=call.args, writes=call.writes, status=call.status, result=call.result,
                       reason=call.reason, links=call.links, summary=call.summary)


def _pending(*, user, conversation_id: int) -> tuple[Conversation, list[Call]]:
    conversation = _own(user=user, conversation_id=conversation_id)
    calls = list(Call.objects.select_for_update().select_related("turn")
                 .filter(turn__conversation=conversation, status=PROPOSED).order_by("pk"))
    if not calls:
        raise ConversationError(_("Conversation #%(id)d has no proposal waiting for confirmation.")
                                % {"id": conversation_id})
    return conversation, calls


def _reply(conversation: Conversation, calls: list[Call]) -> Reply:
    with translation.override(request_language(calls[0].turn.text)):
        outcomes = [_outcome(c) for c in calls]
        return Reply(conversation=conversation.pk, engine=conversation.engine, calls=outcomes,
                     answer=answer_compose(outcomes), links=links_of(outcomes))


@transaction.atomic
def copilot_confirm(*, user, conversation_id: int) -> Reply:
    """Run the conversation's pending proposals, and nothing else; an expired one is refused. The rows are
    locked, so a double click runs each once."""
    conversation, calls = _pending(user=user, conversation_id=conversation_id)
    now = timezone.now()
    with translation.override(request_language(calls[0].turn.text)):
        for call in calls:
            if call.expires_at is not None and call.expires_at <= now:
                _decide(user=user, call=call, outcome=None, reason=_("The proposal expired before it was "
                                                                     "confirmed; nothing was done."))
                _audit(user=user, call=call, action="copilot.expired", engine=conversation.engine)
                continue
            _audit(user=user, call=call, action="copilot.confirmed", engine=conversation.engine)
            _decide(user=user, call=call, outcome=call_execute(user=user, call=ToolCall(tool=call.tool,
                                                                                         args=call.args)))
            _audit(user=user, call=call, action=AUDIT_ACTIONS[call.status], engine=conversation.engine)
    return _reply(conversation, calls)


@transaction.atomic
def copilot_cancel(*, user, conversation_id: int) -> Reply:
    """Refuse the conversation's pending proposals at the user's word."""
    conversation, calls = _pending(user=user, conversation_id=conversation_id)
    with translation.override(request_language(calls[0].turn.text)):
        for call in calls:
            _decide(user=user, call=call, outcome=None, reason=_("Cancelled; nothing was done."))
            _audit(user=user, call=call, action="copilot.cancelled", engine=conversation.engine)
    return _reply(conversation, calls)
