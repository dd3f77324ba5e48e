"""Figures on the Statement page printed as the PDF prints them (grouped thousands, at most two decimals,
signed differences and money), so the page and the printout never disagree on a number."""
from __future__ import annotations

from django import template

from city_ops.results.pdf import money_text, number_text, signed_text, with_unit

register = template.Library()


@register.filter
def figure(value) -> str:
    return number_text(value)


@register.filter
def signed(value) -> str:
    return signed_text(value)


@register.filter
def figure_in(value, unit: str) -> str:
    """The figure with its unit, or a bare dash when there is no figure."""
    return with_unit(number_text(value), unit)


@register.filter
def signed_in(value, unit: str) -> str:
    return with_unit(signed_text(value), unit)


@register.filter
def money(value, currency: str) -> str:
    return money_text(value, currency)
